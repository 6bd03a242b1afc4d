"""Combinators: layers made of layers (DESIGN.md §3).

Params and state of a combinator are dicts keyed by the child's name: given as a ``(name, layer)``
pair, else ``f"{layer.kind}_{index}"`` (``"conv_0"``, ``"relu_1"``…). ``init`` and ``apply`` split
their key so that no two children share one; ``apply`` threads each child's new state back out.
"""

from __future__ import annotations

from typing import Any, Sequence, Union

import jax.numpy as jnp

from jcnn._types import Array, Params, PRNGKey, ShapeTree, State
from jcnn.layers.base import Layer, is_shape, make_layer, ready_layer, split_key

Child = Union[Layer, "tuple[str, Layer]"]


def _named(children: Sequence[Child], combinator: str) -> list[tuple[str, Layer]]:
    named: list[tuple[str, Layer]] = []
    for index, child in enumerate(children):
        if isinstance(child, Layer):
            named.append((f"{child.kind}_{index}", child))
        elif (isinstance(child, tuple) and len(child) == 2 and isinstance(child[0], str)
              and isinstance(child[1], Layer)):
            named.append((child[0], child[1]))
        else:
            hint = ""
            if callable(child) and not isinstance(child, tuple):
                hint = f"; {getattr(child, '__name__', 'it')} is a constructor: call it to get a Layer"
            raise TypeError(
                f"{combinator}: each child must be a Layer or a (name, Layer) pair, got {child!r} "
                f"at position {index}{hint}"
            )
    names = [n for n, _ in named]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{combinator}: child names must be unique, got duplicates {duplicates}")
    if not named:
        raise ValueError(f"{combinator}: needs at least one child layer")
    return named


def _check_params(combinator: str, names: Sequence[str], params: Params, state: State) -> None:
    for what, tree in (("params", params), ("state", state)):
        if not isinstance(tree, dict) or set(tree) != set(names):
            got = sorted(tree) if isinstance(tree, dict) else type(tree).__name__
            raise TypeError(
                f"{combinator}: {what} must be a dict keyed by the children {sorted(names)}, got {got}"
            )


def serial(*layers: Child) -> Layer:
    """Compose layers in order: ``y = f_n(… f_1(x))``.

    ``serial(Conv(8, 3), Relu, ("head", Dense(10)))`` → params ``{"conv_0": …, "relu_1": {}, "head": …}``.
    """
    named = _named(layers, "serial")
    names = [n for n, _ in named]

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        params, state = {}, {}
        shape = input_shape
        for (name, layer), k in zip(named, split_key(key, len(named))):
            shape, params[name], state[name] = layer.init(k, shape)
        return shape, params, state

    def apply(params: Params, state: State, x: Any, *, train: bool,
              key: PRNGKey | None = None) -> tuple[Any, State]:
        _check_params("serial", names, params, state)
        new_state = {}
        for (name, layer), k in zip(named, split_key(key, len(named))):
            x, new_state[name] = layer.apply(params[name], state[name], x, train=train, key=k)
        return x, new_state

    return make_layer("serial", init, apply, children=named)


def parallel(*layers: Child) -> Layer:
    """Apply layer ``i`` to input ``i``: a tuple of ``n`` inputs → a tuple of ``n`` outputs."""
    named = _named(layers, "parallel")
    names = [n for n, _ in named]
    n = len(named)

    def _check_tuple(value: Any, what: str) -> None:
        if not isinstance(value, (tuple, list)) or len(value) != n or (what == "input shape" and is_shape(value)):
            raise ValueError(f"parallel: expected a tuple of {n} {what}s, one per child, got {value!r}")

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        _check_tuple(input_shape, "input shape")
        shapes, params, state = [], {}, {}
        for (name, layer), k, s in zip(named, split_key(key, n), input_shape):
            out, params[name], state[name] = layer.init(k, s)
            shapes.append(out)
        return tuple(shapes), params, state

    def apply(params: Params, state: State, x: Any, *, train: bool,
              key: PRNGKey | None = None) -> tuple[Any, State]:
        _check_params("parallel", names, params, state)
        if not isinstance(x, (tuple, list)) or len(x) != n:
            raise ValueError(f"parallel: expected a tuple of {n} inputs, one per child, got {type(x).__name__}")
        outs, new_state = [], {}
        for (name, layer), k, xi in zip(named, split_key(key, n), x):
            y, new_state[name] = layer.apply(params[name], state[name], xi, train=train, key=k)
            outs.append(y)
        return tuple(outs), new_state

    return make_layer("parallel", init, apply, children=named)


def fan_out(num: int) -> Layer:
    """Copy one input into a tuple of ``num`` identical inputs (feed it to ``parallel``)."""
    if not isinstance(num, int) or num < 1:
        raise ValueError(f"fan_out: num must be an int >= 1, got {num!r}")

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        return (input_shape,) * num, {}, {}

    def apply(params: Params, state: State, x: Any, *, train: bool,
              key: PRNGKey | None = None) -> tuple[Any, State]:
        return (x,) * num, state

    return make_layer("fan_out", init, apply)


def _tuple_of_shapes(name: str, input_shape: ShapeTree) -> tuple:
    if not isinstance(input_shape, (tuple, list)) or is_shape(input_shape) or len(input_shape) < 1:
        raise ValueError(f"{name}: expected a tuple of input shapes (e.g. from fan_out/parallel), got {input_shape!r}")
    return tuple(tuple(s) for s in input_shape)


def _tuple_of_arrays(name: str, x: Any) -> tuple:
    if not isinstance(x, (tuple, list)) or not x:
        raise ValueError(f"{name}: expected a non-empty tuple of arrays (e.g. from fan_out/parallel), got {type(x).__name__}")
    return tuple(x)


def concat(axis: int = -1) -> Layer:
    """Concatenate a tuple of arrays along ``axis`` (default: channels). Other dims must agree."""

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
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
        return tuple(out), {}, {}

    def apply(params: Params, state: State, x: Any, *, train: bool,
              key: PRNGKey | None = None) -> tuple[Array, State]:
        return jnp.concatenate(_tuple_of_arrays("concat", x), axis=axis), state

    return make_layer("concat", init, apply)


def add() -> Layer:
    """Sum a tuple of arrays of one shape (no broadcasting: shapes must be equal)."""

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        shapes = _tuple_of_shapes("add", input_shape)
        if len(set(shapes)) != 1:
            raise ValueError(f"add: every input must have the same shape, got {shapes}")
        return shapes[0], {}, {}

    def apply(params: Params, state: State, x: Any, *, train: bool,
              key: PRNGKey | None = None) -> tuple[Array, State]:
        xs = _tuple_of_arrays("add", x)
        if len({tuple(a.shape) for a in xs}) != 1:
            raise ValueError(f"add: every input must have the same shape, got {[tuple(a.shape) for a in xs]}")
        out = xs[0]
        for a in xs[1:]:
            out = out + a
        return out, state

    return make_layer("add", init, apply)


def _identity() -> Layer:
    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        return input_shape, {}, {}

    def apply(params: Params, state: State, x: Any, *, train: bool,
              key: PRNGKey | None = None) -> tuple[Any, State]:
        return x, state

    return ready_layer("identity", init, apply)


Identity: Layer = _identity()
"""The identity layer: ``y = x``, no params, no state (a ready value; ``Identity()`` is the same layer)."""


def residual(block: Layer, shortcut: Layer = Identity, *, block_name: str = "block",
             shortcut_name: str = "shortcut") -> Layer:
    """``y = block(x) + shortcut(x)``; the two outputs must have the same shape.

    Params and state are ``{block_name: …, shortcut_name: …}``.
    """
    if not isinstance(block, Layer) or not isinstance(shortcut, Layer):
        raise TypeError("residual: block and shortcut must be Layers")
    if block_name == shortcut_name:
        raise ValueError(f"residual: block_name and shortcut_name must differ, both are {block_name!r}")
    names = [block_name, shortcut_name]

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        kb, ks = split_key(key, 2)
        out_b, pb, sb = block.init(kb, input_shape)
        out_s, ps, ss = shortcut.init(ks, input_shape)
        if tuple(out_b) != tuple(out_s):
            raise ValueError(
                f"residual: the block's output shape {tuple(out_b)} differs from the shortcut's "
                f"{tuple(out_s)} for input {input_shape}; give a projection shortcut "
                "(e.g. a 1x1 Conv with the block's stride)"
            )
        return out_b, {block_name: pb, shortcut_name: ps}, {block_name: sb, shortcut_name: ss}

    def apply(params: Params, state: State, x: Any, *, train: bool,
              key: PRNGKey | None = None) -> tuple[Any, State]:
        _check_params("residual", names, params, state)
        kb, ks = split_key(key, 2)
        yb, sb = block.apply(params[block_name], state[block_name], x, train=train, key=kb)
        ys, ss = shortcut.apply(params[shortcut_name], state[shortcut_name], x, train=train, key=ks)
        if yb.shape != ys.shape:
            raise ValueError(f"residual: block output {yb.shape} and shortcut output {ys.shape} differ")
        return yb + ys, {block_name: sb, shortcut_name: ss}

    return make_layer("residual", init, apply, children=((block_name, block), (shortcut_name, shortcut)))


__all__ = ["serial", "parallel", "fan_out", "concat", "add", "residual", "Identity"]
