"""One walk over a layer's declared tree, shared by ``summary``, ``interop.torch``, ``plots`` and
``jcnn.intermediates``.

:func:`walk` visits every layer in pre-order (a ``serial``'s children in execution order) and gives each
its dotted path (the params path: ``"layer1.0.conv1"``), depth, input and output shape. Shapes come from
the declared rules (:meth:`Layer.output_shape`, :meth:`Layer.wiring`): no tracing and no FLOPs. Only a
hand-written combinator that declares no wiring is traced once (``jax.eval_shape`` of its ``apply``,
recording the input shape each child is called with through ``apply_child``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from jcnn._types import ShapeTree
from jcnn.layers.base import _CTX, Layer, _shape_struct, abstract_init, as_shape_tree, is_shape


class Node(NamedTuple):
    """One layer in a walk. ``path`` is ``""`` for the root; an inline child (``name`` None) shares its
    parent's path. Shapes are ``None`` when the walk was given no input shape."""

    path: str
    name: str | None
    layer: Layer
    depth: int
    input_shape: ShapeTree | None
    output_shape: ShapeTree | None

    @property
    def is_leaf(self) -> bool:
        """True for a layer without children."""
        return not self.layer.children


def child_path(path: str, name: str | None) -> str:
    """The path of child ``name`` of the layer at ``path`` (an inline child, ``None``, shares it)."""
    if name is None:
        return path
    return f"{path}.{name}" if path else name


def walk(layer: Layer, input_shape: ShapeTree | None = None) -> list[Node]:
    """Every layer of ``layer``'s tree in pre-order, with shapes for ``input_shape`` (or ``None``)."""
    if not isinstance(layer, Layer):
        raise TypeError(f"walk: expected a jcnn Layer, got {type(layer).__name__}")
    nodes: list[Node] = []

    def visit(node: Layer, path: str, name: str | None, depth: int, shape: Any) -> None:
        out = node.output_shape(shape) if shape is not None else None
        nodes.append(Node(path, name, node, depth, shape, out))
        if not node.children:
            return
        inputs: Any = None
        if shape is not None:
            wired = node.wiring(shape)
            inputs = wired[1] if wired is not None else _traced_child_inputs(node, path, shape)
        for i, (child_name, child) in enumerate(node.children):
            visit(child, child_path(path, child_name), child_name, depth + 1, inputs[i] if inputs is not None else None)

    visit(layer, "", None, 0, as_shape_tree(input_shape) if input_shape is not None else None)
    return nodes


class _InputRecorder:
    """A capture that keeps the input shape each direct child of one combinator was called with."""

    def __init__(self) -> None:
        self.inputs: dict[str, Any] = {}

    def record(self, path: str, value: Any) -> None:
        pass

    def record_input(self, path: str, value: Any) -> None:
        self.inputs.setdefault(path, jax.tree_util.tree_map(lambda a: tuple(a.shape), value))


def _traced_child_inputs(layer: Layer, path: str, shape: ShapeTree) -> list[Any]:
    """The children's input shapes of a combinator without a declared wiring: one ``jax.eval_shape`` of its
    ``apply``; a child it does not call through ``apply_child`` gets ``None``."""
    _, (params, state) = abstract_init(layer, shape)
    spec = _spec(shape)
    recorder = _InputRecorder()
    previous, saved_path = _CTX.capture, list(_CTX.path)
    _CTX.capture, _CTX.path[:] = recorder, []
    try:
        jax.eval_shape(lambda p, s, x: layer.apply(p, s, x, train=False)[0], params, state, spec)
    finally:
        _CTX.capture, _CTX.path[:] = previous, saved_path
    found = []
    for name, _ in layer.children:
        value = recorder.inputs.get(name) if name is not None else None
        if value is not None and shape_has_unknown_batch(shape):
            value = _unknown_batch(value)
        found.append(value)
    return found


def shape_has_unknown_batch(shape: Any) -> bool:
    if is_shape(shape):
        return bool(shape) and shape[0] == -1
    return any(shape_has_unknown_batch(s) for s in shape)


def _unknown_batch(shape: Any) -> Any:
    if is_shape(shape):
        return (-1,) + tuple(shape[1:]) if shape and shape[0] == 1 else tuple(shape)
    return tuple(_unknown_batch(s) for s in shape)


def _spec(shape: Any) -> Any:
    import jax.numpy as jnp

    if is_shape(shape):
        return _shape_struct(tuple(1 if (i == 0 and d == -1) else d for i, d in enumerate(shape)), jnp.float32)
    return tuple(_spec(s) for s in shape)


def layer_paths(layer: Layer) -> list[str]:
    """The dotted path of every named layer in ``layer``'s tree (the root ``""`` excluded), pre-order."""
    seen: dict[str, None] = {}
    for node in walk(layer):
        if node.path:
            seen.setdefault(node.path)
    return list(seen)


__all__ = ["Node", "walk", "layer_paths", "child_path"]
