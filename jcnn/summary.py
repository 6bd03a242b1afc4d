"""A printed table of a model's layers: output shape, parameter count and state size of each.

Shapes and counts come from ``jax.eval_shape`` of each layer's ``init`` (no parameter is materialised, so
summarising a VGG-16 is cheap). Combinators (``serial``, ``parallel``, ``residual``) are expanded into
their named children, indented one level per nesting depth.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax

from jcnn._types import ShapeTree
from jcnn.layers.base import Layer


class _Row(NamedTuple):
    depth: int
    name: str
    kind: str
    output_shape: Any
    params: int
    state: int


def _count(tree: Any) -> tuple[int, int]:
    """``(elements, bytes)`` over the array leaves of ``tree``."""
    leaves = [leaf for leaf in jax.tree_util.tree_leaves(tree) if hasattr(leaf, "shape")]
    elements = sum(math.prod(leaf.shape) for leaf in leaves)
    nbytes = sum(math.prod(leaf.shape) * leaf.dtype.itemsize for leaf in leaves)
    return elements, nbytes


def _abstract_init(layer: Layer, input_shape: ShapeTree) -> tuple[ShapeTree, Any, Any]:
    """``layer.init`` under ``jax.eval_shape`` (params as ShapeDtypeStructs); a concrete init if tracing fails."""
    key = jax.random.PRNGKey(0)
    box: dict[str, Any] = {}

    def run(k: Any) -> tuple[Any, Any]:
        out, params, state = layer.init(k, input_shape)
        box["out"] = out
        return params, state

    try:
        params, state = jax.eval_shape(run, key)
        return box["out"], params, state
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError,
            jax.errors.TracerIntegerConversionError):
        return layer.init(key, input_shape)  # an init that needs concrete values (e.g. NumPy on params)


def _signature(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda a: (tuple(a.shape), str(a.dtype)), tree)


def _visit(layer: Layer, name: str, input_shape: ShapeTree, depth: int, rows: list[_Row]) -> ShapeTree:
    out, params, state = _abstract_init(layer, input_shape)
    rows.append(_Row(depth, name, layer.kind, out, _count(params)[0], _count(state)[0]))
    children = layer.children
    if children and layer.kind == "serial":
        shape = input_shape
        for child_name, child in children:
            shape = _visit(child, child_name, shape, depth + 1, rows)
    elif children and layer.kind == "parallel":
        for (child_name, child), shape in zip(children, input_shape):
            _visit(child, child_name, shape, depth + 1, rows)
    elif children and layer.kind == "residual":
        for child_name, child in children:
            _visit(child, child_name, input_shape, depth + 1, rows)
    elif children:
        _visit_unknown_wiring(children, input_shape, params, state, depth + 1, rows)
    return out


def _visit_unknown_wiring(children: Any, input_shape: ShapeTree, params: Any, state: Any, depth: int,
                          rows: list[_Row]) -> None:
    """Children of a combinator whose wiring summary does not know (e.g. a model's own block).

    Each child is fed the previous child's output (a chain) or else the block's input (a shortcut), and a
    guess is kept only when the child's params and state then have exactly the shapes the block built for
    it (its params are keyed by child names); otherwise the child's row shows its counts with shape ``?``.
    """
    previous: Any = input_shape
    for child_name, child in children:
        expected = None
        if isinstance(params, dict) and isinstance(state, dict) and child_name in params and child_name in state:
            expected = (_signature(params[child_name]), _signature(state[child_name]))
        found = None
        for guess in ([previous] if previous is not None else []) + [input_shape]:
            try:
                _, p, st = _abstract_init(child, guess)
            except (ValueError, TypeError):
                continue
            if expected is None or (_signature(p), _signature(st)) == expected:
                found = guess
                break
        if found is not None:
            previous = _visit(child, child_name, found, depth, rows)
        else:
            previous = None
            p = params.get(child_name) if isinstance(params, dict) else None
            st = state.get(child_name) if isinstance(state, dict) else None
            rows.append(_Row(depth, child_name, child.kind, None, _count(p)[0], _count(st)[0]))


def _shape_text(shape: Any) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, (tuple, list)) and shape and not all(isinstance(d, int) for d in shape):
        return "(" + ", ".join(_shape_text(s) for s in shape) + ")"
    return "(" + ", ".join("N" if (i == 0 and d == -1) else str(d) for i, d in enumerate(shape)) + ")"


def summary(model: Layer, input_shape: ShapeTree, *, print_fn: Callable[[str], Any] | None = print,
            name: str = "model") -> str:
    """Print (with ``print_fn``; ``None`` prints nothing) and return a table of ``model``'s layers.

    One row per layer, children of combinators indented under them and named by their child names, with
    the layer's kind, output shape (a ``-1`` batch shows as ``N``), parameter count and state size (a
    combinator's counts include its children's); then the totals: trainable params (and their bytes)
    and state elements (non-trainable, e.g. BatchNorm running statistics).
    """
    if not isinstance(model, Layer):
        raise TypeError(f"summary: expected a jcnn Layer, got {type(model).__name__}")
    rows: list[_Row] = []
    _visit(model, name, input_shape, 0, rows)
    _, params, state = _abstract_init(model, input_shape)
    n_params, param_bytes = _count(params)
    n_state, state_bytes = _count(state)

    header = ("Layer", "Kind", "Output shape", "Params", "State")
    table = [header] + [
        ("  " * r.depth + r.name, r.kind, _shape_text(r.output_shape), f"{r.params:,}", f"{r.state:,}")
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = [row[i].ljust(widths[i]) if i < 3 else row[i].rjust(widths[i]) for i in range(len(row))]
        return "  ".join(cells).rstrip()

    rule = "-" * len(line(header))
    lines = [line(header), rule] + [line(row) for row in table[1:]] + [
        rule,
        f"Input shape: {_shape_text(input_shape)}",
        f"Trainable params: {n_params:,} ({_size_text(param_bytes)})",
        f"State (non-trainable): {n_state:,} ({_size_text(state_bytes)})",
    ]
    text = "\n".join(lines)
    if print_fn is not None:
        print_fn(text)
    return text


def _size_text(nbytes: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} GiB"
