"""Combinators: layers made of layers, whose wiring is declared (docs/design.md §3).

Params and state of a combinator are dicts keyed by the child's name: given as a ``(name, layer)``
pair, else ``f"{layer.prefix}_{index}"`` (``"conv_0"``, ``"relu_1"``…). A child named ``None`` is
*inline*: its own params keys sit in the parent's dict (torchvision's ``BasicBlock`` keeps ``conv1``,
``bn1``, … and ``downsample`` side by side, so a ResNet block is ``residual(serial(...), proj,
block_name=None, shortcut_name="downsample", post=Relu)``). ``init`` and ``apply`` split their key so that
no two children share one; ``apply`` threads each child's new state back out. Every combinator declares
``wiring(input_shape) -> (output_shape, input shape of each child)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

import jax
import jax.numpy as jnp

from jcnn._types import Array, Params, PRNGKey, Shape, ShapeTree, State
from jcnn.layers.base import (
    Layer,
    apply_child,
    constructor,
    init_child,
    is_shape,
    make_layer,
    param_keys,
    ready_layer,
    split_key,
)

Child = Union[Layer, "tuple[str | None, Layer]"]

_FUNCTION_LAYERS = {
    "relu": "Relu",
    "relu6": "Relu6",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "silu": "Silu",
    "gelu": "Gelu",
    "elu": "Elu",
    "softplus": "Softplus",
    "softmax": "Softmax",
    "log_softmax": "LogSoftmax",
    "leaky_relu": "LeakyRelu",
    "hard_tanh": "HardTanh",
}


def _not_a_layer(child: Any, index: int, combinator: str) -> TypeError:
    name = getattr(child, "__name__", None)
    if callable(child) and getattr(child, "jcnn_constructor", False):
        hint = f"; {name} is a layer constructor: call it (e.g. {name}(...)) to get a Layer"
    elif callable(child) and name in _FUNCTION_LAYERS:
        module = getattr(child, "__module__", "") or ""
        hint = (
            f"; {module + '.' if module else ''}{name} is an array function, not a Layer: use the layer "
            f"jcnn.{_FUNCTION_LAYERS[name]}"
        )
    elif callable(child):
        hint = f"; {name or 'it'} is a plain function, not a Layer: build one with jcnn.layers.make_layer"
    else:
        hint = ""
    return TypeError(
        f"{combinator}: each child must be a Layer or a (name, Layer) pair, got {child!r} at position {index}{hint}"
    )


def named_children(
    children: Sequence[Child], combinator: str, *, allow_inline: bool = False
) -> list[tuple[str | None, Layer]]:
    """``(name, layer)`` pairs with default names ``f"{prefix}_{index}"``; names must be unique strings (or
    ``None`` for an inline combinator child when ``allow_inline``)."""
    named: list[tuple[str | None, Layer]] = []
    for index, child in enumerate(children):
        if isinstance(child, Layer):
            named.append((f"{child.prefix}_{index}", child))
        elif (
            isinstance(child, tuple)
            and len(child) == 2
            and isinstance(child[1], Layer)
            and (isinstance(child[0], str) or (child[0] is None and allow_inline))
        ):
            named.append((child[0], child[1]))
        else:
            raise _not_a_layer(child, index, combinator)
    if not named:
        raise ValueError(f"{combinator}: needs at least one child layer")
    names: list[str] = []
    for name, layer in named:
        if name is None:
            keys = param_keys(layer)
            if keys is None:
                raise ValueError(
                    f"{combinator}: an inline child (name None) must be a combinator whose params "
                    f"keys are its children's names, got {layer.kind}"
                )
            names += sorted(keys)
        else:
            names.append(name)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{combinator}: child names must be unique, got duplicates {duplicates}")
    return named


def _put(tree: dict[str, Any], name: str | None, value: Any) -> None:
    if name is None:
        tree.update(value)
    else:
        tree[name] = value


def _take(tree: Any, name: str | None, child: Layer) -> Any:
    if name is None:
        keys = param_keys(child) or set()
        return {k: tree[k] for k in keys if k in tree}
    return tree[name]


def _check_keys(combinator: str, named: Sequence[tuple[str | None, Layer]], params: Params, state: State) -> None:
    expected: set[str] = set()
    for name, child in named:
        expected |= {name} if name is not None else (param_keys(child) or set())
    for what, tree in (("params", params), ("state", state)):
        if not isinstance(tree, dict) or set(tree) != expected:
            got = sorted(tree) if isinstance(tree, dict) else type(tree).__name__
            raise TypeError(f"{combinator}: {what} must be a dict keyed by the children {sorted(expected)}, got {got}")


@constructor
def serial(*layers: Child) -> Layer:
    """Compose layers in order: ``y = f_n(… f_1(x))``.

    ``serial(Conv(8, 3), Relu, ("head", Dense(10)))`` → params ``{"conv_0": …, "relu_1": {}, "head": …}``.
    """
    named = named_children(layers, "serial")

    def wiring(input_shape: ShapeTree) -> tuple[ShapeTree, tuple[ShapeTree, ...]]:
        inputs, shape = [], input_shape
        for _, layer in named:
            inputs.append(shape)
            shape = layer.output_shape(shape)
        return shape, tuple(inputs)

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        params: dict[str, Any] = {}
        state: dict[str, Any] = {}
        shape = input_shape
        for (name, layer), k in zip(named, split_key(key, len(named))):
            shape, p, s = init_child(name, layer, k, shape)
            _put(params, name, p)
            _put(state, name, s)
        return shape, params, state

    def apply(params: Params, state: State, x: Any, *, train: bool, key: PRNGKey | None = None) -> tuple[Any, State]:
        _check_keys("serial", named, params, state)
        new_state: dict[str, Any] = {}
        for (name, layer), k in zip(named, split_key(key, len(named))):
            x, s = apply_child(
                name, layer, _take(params, name, layer), _take(state, name, layer), x, train=train, key=k
            )
            _put(new_state, name, s)
        return x, new_state

    return make_layer("serial", init, apply, children=named, wiring=wiring, host_init=True)


def _check_tuple(value: Any, n: int, what: str) -> tuple[ShapeTree, ...]:
    """``value`` as a tuple of ``n`` shape trees (parallel's input shape), else a ValueError."""
    if not isinstance(value, (tuple, list)) or len(value) != n or (what == "input shape" and is_shape(value)):
        raise ValueError(f"parallel: expected a tuple of {n} {what}s, one per child, got {value!r}")
    return tuple(value)


@constructor
def parallel(*layers: Child) -> Layer:
    """Apply layer ``i`` to input ``i``: a tuple of ``n`` inputs → a tuple of ``n`` outputs."""
    named = named_children(layers, "parallel")
    n = len(named)

    def wiring(input_shape: ShapeTree) -> tuple[ShapeTree, tuple[ShapeTree, ...]]:
        shapes = _check_tuple(input_shape, n, "input shape")
        return tuple(layer.output_shape(s) for (_, layer), s in zip(named, shapes)), shapes

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        inputs = _check_tuple(input_shape, n, "input shape")
        shapes, params, state = [], {}, {}
        for (name, layer), k, s in zip(named, split_key(key, n), inputs):
            out, params[name], state[name] = init_child(name, layer, k, s)
            shapes.append(out)
        return tuple(shapes), params, state

    def apply(params: Params, state: State, x: Any, *, train: bool, key: PRNGKey | None = None) -> tuple[Any, State]:
        _check_keys("parallel", named, params, state)
        if not isinstance(x, (tuple, list)) or len(x) != n:
            raise ValueError(f"parallel: expected a tuple of {n} inputs, one per child, got {type(x).__name__}")
        outs, new_state = [], {}
        for (name, layer), k, xi in zip(named, split_key(key, n), x):
            y, new_state[name] = apply_child(name, layer, params[name], state[name], xi, train=train, key=k)
            outs.append(y)
        return tuple(outs), new_state

    return make_layer("parallel", init, apply, children=named, wiring=wiring, host_init=True)


@constructor
def fan_out(num: int) -> Layer:
    """Copy one input into a tuple of ``num`` identical inputs (feed it to ``parallel``)."""
    if not isinstance(num, int) or isinstance(num, bool) or num < 1:
        raise ValueError(f"fan_out: num must be an int >= 1, got {num!r}")

    def shape(input_shape: ShapeTree) -> ShapeTree:
        return (input_shape,) * num

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        return shape(input_shape), {}, {}

    def apply(params: Params, state: State, x: Any, *, train: bool, key: PRNGKey | None = None) -> tuple[Any, State]:
        return (x,) * num, state

    return make_layer("fan_out", init, apply, shape=shape, host_init=True)


def _tuple_of_shapes(name: str, input_shape: Any) -> tuple[Shape, ...]:
    if not isinstance(input_shape, (tuple, list)) or is_shape(input_shape) or len(input_shape) < 1:
        raise ValueError(f"{name}: expected a tuple of input shapes (e.g. from fan_out/parallel), got {input_shape!r}")
    return tuple(tuple(s) for s in input_shape)


def _tuple_of_arrays(name: str, x: Any) -> tuple[Any, ...]:
    if not isinstance(x, (tuple, list)) or not x:
        raise ValueError(
            f"{name}: expected a non-empty tuple of arrays (e.g. from fan_out/parallel), got {type(x).__name__}"
        )
    return tuple(x)


@constructor
def concat(axis: int = -1) -> Layer:
    """Concatenate a tuple of arrays along ``axis`` (default: channels). Other dims must agree."""
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"concat: axis must be an int, got {axis!r}")

    def shape(input_shape: ShapeTree) -> ShapeTree:
        shapes = _tuple_of_shapes("concat", input_shape)
        ranks = {len(s) for s in shapes}
        if len(ranks) != 1:
            raise ValueError(f"concat: inputs must share one rank, got shapes {shapes}")
        rank = ranks.pop()
        if not -rank <= axis < rank:
            raise ValueError(f"concat: axis {axis} is out of range for rank-{rank} inputs {shapes}")
        a = axis % rank
        others = {tuple(d for i, d in enumerate(s) if i != a) for s in shapes}
        if len(others) != 1:
            raise ValueError(f"concat: inputs must agree on every dim but axis {axis}, got shapes {shapes}")
        out = list(shapes[0])
        out[a] = sum(s[a] for s in shapes) if a != 0 or all(s[0] != -1 for s in shapes) else -1
        return tuple(out)

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        return shape(input_shape), {}, {}

    def apply(params: Params, state: State, x: Any, *, train: bool, key: PRNGKey | None = None) -> tuple[Array, State]:
        return jnp.concatenate(_tuple_of_arrays("concat", x), axis=axis), state

    return make_layer("concat", init, apply, shape=shape, host_init=True)


@constructor
def add() -> Layer:
    """Sum a tuple of arrays of one shape (no broadcasting: shapes must be equal)."""

    def shape(input_shape: ShapeTree) -> ShapeTree:
        shapes = _tuple_of_shapes("add", input_shape)
        if len(set(shapes)) != 1:
            raise ValueError(f"add: every input must have the same shape, got {shapes}")
        return shapes[0]

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        return shape(input_shape), {}, {}

    def apply(params: Params, state: State, x: Any, *, train: bool, key: PRNGKey | None = None) -> tuple[Array, State]:
        xs = _tuple_of_arrays("add", x)
        if len({tuple(a.shape) for a in xs}) != 1:
            raise ValueError(f"add: every input must have the same shape, got {[tuple(a.shape) for a in xs]}")
        out = xs[0]
        for a in xs[1:]:
            out = out + a
        return out, state

    return make_layer("add", init, apply, shape=shape, host_init=True)


def _identity() -> Layer:
    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        return input_shape, {}, {}

    def apply(params: Params, state: State, x: Any, *, train: bool, key: PRNGKey | None = None) -> tuple[Any, State]:
        return x, state

    return ready_layer("Identity", init, apply, shape=lambda s: s)


Identity: Layer = _identity()
"""The identity layer: ``y = x``, no params, no state (a ready value; ``Identity()`` is the same layer)."""


@constructor
def residual(
    block: Layer,
    shortcut: Layer = Identity,
    *,
    block_name: str | None = "block",
    shortcut_name: str | None = "shortcut",
    post: Layer | None = None,
) -> Layer:
    """``y = post(block(x) + shortcut(x))`` (``post`` defaults to the identity); the two branch outputs must
    have the same shape.

    Params and state are ``{block_name: …, shortcut_name: …}``. A ``None`` name puts that branch's params
    at this level: ``block_name=None`` (the block must be a combinator, e.g. ``serial``) spreads its
    children's params beside the shortcut's, and ``shortcut_name=None`` with the parameterless ``Identity``
    leaves no key at all — torchvision's ``BasicBlock`` keys. ``post`` must be parameterless (e.g. ``Relu``).
    """
    for what, layer in (("block", block), ("shortcut", shortcut)):
        if not isinstance(layer, Layer):
            raise TypeError(f"residual: {what} must be a Layer, got {type(layer).__name__}")
    if post is not None and not isinstance(post, Layer):
        raise TypeError(f"residual: post must be a Layer or None, got {type(post).__name__}")
    if shortcut_name is None and param_keys(shortcut) is None and shortcut is not Identity:
        raise ValueError("residual: shortcut_name=None needs the Identity shortcut or a combinator shortcut")
    if block_name is not None and block_name == shortcut_name:
        raise ValueError(f"residual: block_name and shortcut_name must differ, both are {block_name!r}")
    branches = [(block_name, block)] + (
        [] if (shortcut_name is None and shortcut is Identity) else [(shortcut_name, shortcut)]
    )
    named = named_children(branches, "residual", allow_inline=True)

    def branch_shapes(input_shape: ShapeTree) -> tuple[ShapeTree, ShapeTree]:
        out_b = block.output_shape(input_shape)
        out_s = shortcut.output_shape(input_shape)
        if tuple(out_b) != tuple(out_s):
            raise ValueError(
                f"residual: the block's output shape {tuple(out_b)} differs from the shortcut's "
                f"{tuple(out_s)} for input {input_shape}; give a projection shortcut "
                "(e.g. a 1x1 Conv with the block's stride)"
            )
        return out_b, out_s

    def wiring(input_shape: ShapeTree) -> tuple[ShapeTree, tuple[ShapeTree, ...]]:
        out, _ = branch_shapes(input_shape)
        if post is not None:
            out = post.output_shape(out)
        return out, (input_shape,) * len(named)

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        keys = split_key(key, 3 if post is not None else 2)
        params: dict[str, Any] = {}
        state: dict[str, Any] = {}
        out_b, pb, sb = init_child(block_name, block, keys[0], input_shape)
        _put(params, block_name, pb)
        _put(state, block_name, sb)
        out_s = input_shape
        if len(named) == 2:
            out_s, ps, ss = init_child(shortcut_name, shortcut, keys[1], input_shape)
            _put(params, shortcut_name, ps)
            _put(state, shortcut_name, ss)
        if tuple(out_b) != tuple(out_s):
            branch_shapes(input_shape)  # raises the message
        out = out_b
        if post is not None:
            out, pp, sp = post.init(keys[2], out_b)
            if jax.tree_util.tree_leaves(pp) or jax.tree_util.tree_leaves(sp):
                raise ValueError(f"residual: post must be parameterless, {post.kind} has params or state")
        return out, params, state

    def apply(params: Params, state: State, x: Any, *, train: bool, key: PRNGKey | None = None) -> tuple[Any, State]:
        _check_keys("residual", named, params, state)
        keys = split_key(key, 3 if post is not None else 2)
        new_state: dict[str, Any] = {}
        yb, sb = apply_child(
            block_name,
            block,
            _take(params, block_name, block),
            _take(state, block_name, block),
            x,
            train=train,
            key=keys[0],
        )
        _put(new_state, block_name, sb)
        if len(named) == 2:
            ys, ss = apply_child(
                shortcut_name,
                shortcut,
                _take(params, shortcut_name, shortcut),
                _take(state, shortcut_name, shortcut),
                x,
                train=train,
                key=keys[1],
            )
            _put(new_state, shortcut_name, ss)
        else:
            ys = x
        if yb.shape != ys.shape:
            raise ValueError(f"residual: block output {yb.shape} and shortcut output {ys.shape} differ")
        y = yb + ys
        if post is not None:
            y, _ = post.apply({}, {}, y, train=train, key=keys[2])
        return y, new_state

    return make_layer("residual", init, apply, children=named, wiring=wiring, host_init=True)


__all__ = ["serial", "parallel", "fan_out", "concat", "add", "residual", "Identity"]
