"""A table of a model's layers: output shape, parameters, state, multiply-accumulates and activation size.

Everything comes from one walk of the declared tree (:func:`jcnn.layers.structure.walk`): shapes from the
layers' shape rules, MACs from each leaf's rule (``Conv``: ``N·prod(O)·prod(K)·C_in/groups·C_out``,
``ConvTranspose``: ``N·prod(I)·prod(K)·C_in·C_out/groups``, ``Dense``: ``N·in·out``; other layers count
0, and a hand-written layer without a rule ``?``), parameter counts from ``init`` traced abstractly once
(no weight is drawn, so summarising a VGG-16 is cheap). A ``-1`` batch counts as one example, so the
totals of a zoo model at ``(-1, 224, 224, 3)`` are torchvision's per-image figures (which torchvision
labels "GFLOPS" but are MACs).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from jcnn._types import ShapeTree
from jcnn.inspection.paths import path_of
from jcnn.layers.base import Layer, abstract_init, is_shape
from jcnn.layers.structure import Node, walk


class Row(NamedTuple):
    """One printed layer: its path and name, kind, output shape, parameter and state element counts,
    MACs (``None`` if unknown) and output elements (a ``-1`` batch counted as 1)."""

    depth: int
    path: str
    name: str
    kind: str
    output_shape: Any
    params: int
    state: int
    macs: int | None
    activations: int


class Summary(NamedTuple):
    """What :func:`summary` returns: the rows and totals; ``str()``/``repr()`` is the printed table."""

    rows: list[Row]
    input_shape: Any
    params: int
    param_bytes: int
    state: int
    state_bytes: int
    macs: int
    unknown_macs: list[str]
    activation_bytes: int

    def table(self) -> str:
        """The printed table: one row per layer, then the totals."""
        header = ("Layer", "Kind", "Output shape", "Params", "State", "MACs", "Activations")
        body = [
            (
                "  " * r.depth + r.name,
                r.kind,
                _shape_text(r.output_shape),
                f"{r.params:,}",
                f"{r.state:,}",
                "?" if r.macs is None else f"{r.macs:,}",
                f"{r.activations:,}",
            )
            for r in self.rows
        ]
        widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]

        def line(row: tuple[str, ...]) -> str:
            cells = [row[i].ljust(widths[i]) if i < 3 else row[i].rjust(widths[i]) for i in range(len(row))]
            return "  ".join(cells).rstrip()

        rule = "-" * len(line(header))
        unknown = f" (+ ? for {len(self.unknown_macs)} layers without a MAC rule)" if self.unknown_macs else ""
        lines = (
            [line(header), rule]
            + [line(row) for row in body]
            + [
                rule,
                f"Input shape: {_shape_text(self.input_shape)}",
                f"Trainable params: {self.params:,} ({_size_text(self.param_bytes)})",
                f"State (non-trainable): {self.state:,} ({_size_text(self.state_bytes)})",
                f"MACs: {self.macs:,} ({self.macs / 1e9:.2f} G){unknown}",
                f"Activations (layer outputs, float32): {_size_text(self.activation_bytes)}",
            ]
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return self.table()


def _counts(tree: Any) -> tuple[dict[str, int], dict[str, int]]:
    """Elements and bytes under every path prefix of ``tree`` (``""`` is the whole tree)."""
    elements: dict[str, int] = {}
    nbytes: dict[str, int] = {}
    for keypath, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if not hasattr(leaf, "shape"):
            continue
        size = math.prod(leaf.shape)
        parts = path_of(keypath).split(".")
        for i in range(len(parts)):
            prefix = ".".join(parts[:i])
            elements[prefix] = elements.get(prefix, 0) + size
            nbytes[prefix] = nbytes.get(prefix, 0) + size * leaf.dtype.itemsize
    return elements, nbytes


def _elements(shape: Any) -> int:
    if shape is None:
        return 0
    if is_shape(shape):
        return math.prod(1 if (i == 0 and d == -1) else d for i, d in enumerate(shape))
    if isinstance(shape, dict):
        return sum(_elements(s) for s in shape.values())
    return sum(_elements(s) for s in shape)


def _subtree_macs(nodes: list[Node]) -> tuple[list[int | None], list[str]]:
    """MACs of every node (a combinator sums its leaves; unknown if any leaf is) and the unknown leaves."""
    macs: list[int | None] = [None] * len(nodes)
    unknown: list[str] = []
    for i in range(len(nodes) - 1, -1, -1):
        node = nodes[i]
        if node.is_leaf:
            value = node.layer.macs(node.input_shape, node.output_shape) if node.input_shape is not None else None
            if value is None:
                unknown.append(node.path or node.layer.kind)
            macs[i] = value
            continue
        total: int | None = 0
        for j in range(i + 1, len(nodes)):
            if nodes[j].depth <= node.depth:
                break
            if nodes[j].depth == node.depth + 1:
                child = macs[j]
                total = None if (total is None or child is None) else total + child
        macs[i] = total
    return macs, unknown


def analyze(model: Layer, input_shape: ShapeTree, *, name: str = "model") -> Summary:
    """The :class:`Summary` of ``model`` for ``input_shape`` (see the module docstring)."""
    if not isinstance(model, Layer):
        raise TypeError(f"summary: expected a jcnn Layer, got {type(model).__name__}")
    nodes = walk(model, input_shape)
    _, (params, state) = abstract_init(model, input_shape)
    p_elems, p_bytes = _counts(params)
    s_elems, s_bytes = _counts(state)
    macs, unknown = _subtree_macs(nodes)
    rows: list[Row] = []
    activation = 0
    for node, m in zip(nodes, macs):
        if node.is_leaf:
            activation += _elements(node.output_shape)
        # inline children (no name) share their parent's path and row: their children move up one level
        if node.depth > 0 and node.name is None:
            continue
        shown_depth = _shown_depth(node)
        rows.append(
            Row(
                shown_depth,
                node.path,
                node.name if node.name is not None else name,
                node.layer.kind,
                node.output_shape,
                p_elems.get(node.path, 0),
                s_elems.get(node.path, 0),
                m,
                _elements(node.output_shape),
            )
        )
    return Summary(
        rows,
        input_shape,
        p_elems.get("", 0),
        p_bytes.get("", 0),
        s_elems.get("", 0),
        s_bytes.get("", 0),
        macs[0] or 0,
        unknown,
        activation * 4,
    )


def _shown_depth(node: Node) -> int:
    """A node's depth counting only named ancestors (inline ones are not rows)."""
    if node.depth == 0:
        return 0
    return node.path.count(".") + 1


def summary(
    model: Layer, input_shape: ShapeTree, *, print_fn: Callable[[str], Any] | None = None, name: str = "model"
) -> Summary | None:
    """A :class:`Summary` of ``model``'s layers for ``input_shape``: returned (it prints as the table in a
    REPL), or passed as text to ``print_fn`` (e.g. ``print``), which then returns ``None`` — never both.

    One row per layer, children of combinators indented under them and named by their child names, with
    the layer's kind, output shape (a ``-1`` batch shows as ``N``), parameter count, state size, MACs and
    output elements (a combinator's counts include its children's); then the totals.
    """
    result = analyze(model, input_shape, name=name)
    if print_fn is not None:
        print_fn(result.table())
        return None
    return result


def _shape_text(shape: Any) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, dict):
        return "{" + ", ".join(f"{k}: {_shape_text(v)}" for k, v in shape.items()) + "}"
    if isinstance(shape, (tuple, list)) and shape and not all(isinstance(d, int) for d in shape):
        return "(" + ", ".join(_shape_text(s) for s in shape) + ")"
    return "(" + ", ".join("N" if (i == 0 and d == -1) else str(d) for i, d in enumerate(shape)) + ")"


def _size_text(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} GiB"


__all__ = ["summary", "analyze", "Summary", "Row"]
