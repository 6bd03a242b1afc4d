"""The Layer protocol (DESIGN.md §3): a pair of pure functions over parameter and state pytrees.

``init(key, input_shape) -> (output_shape, params, state)`` checks the full input shape (batch first,
possibly ``-1``) and builds the pytrees; ``apply(params, state, x, *, train, key=None) -> (y, new_state)``
is pure and never mutates.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from jcnn._types import Array, Params, PRNGKey, Shape, ShapeTree, State

InitFn = Callable[[PRNGKey, ShapeTree], "tuple[ShapeTree, Params, State]"]
ApplyFn = Callable[..., "tuple[Any, State]"]

# The batch size used to probe ``apply`` with ``jax.eval_shape`` when the batch is ``-1``.
_PROBE_BATCH = 1


class Layer(NamedTuple):
    """A layer: ``init(key, input_shape) -> (output_shape, params, state)`` and
    ``apply(params, state, x, *, train, key=None) -> (y, new_state)``.

    It unpacks like jax's stax pair (``init, apply = layer``). ``kind`` is the short name combinators use
    for default child names (``"conv"`` → ``"conv_0"``).
    """

    init: InitFn
    apply: ApplyFn

    @property
    def kind(self) -> str:
        return getattr(self.init, "jcnn_kind", "layer")

    @property
    def children(self) -> "tuple[tuple[str, Layer], ...]":
        """A combinator's ``(name, child)`` pairs in order (``()`` for a leaf layer); ``summary`` walks them."""
        return getattr(self.init, "jcnn_children", ())


class ReadyLayer(Layer):
    """A parameterless layer that is also its own constructor: ``Relu`` and ``Relu()`` are one Layer.

    DESIGN.md lets parameterless layers be ready values; calling one with no arguments returns it, so
    code written either way (``serial(Flatten, Relu)`` or ``serial(Flatten(), Relu())``) works.
    """

    __slots__ = ()

    def __call__(self) -> Layer:
        return self


def make_layer(kind: str, init: InitFn, apply: ApplyFn, *,
               children: "Sequence[tuple[str, Layer]]" = ()) -> Layer:
    """Build a :class:`Layer`, recording ``kind`` (e.g. ``"conv"``) for default child names and, for a
    combinator, its named ``children`` (read back by :attr:`Layer.children`)."""
    init.jcnn_kind = kind  # type: ignore[attr-defined]
    if children:
        init.jcnn_children = tuple(children)  # type: ignore[attr-defined]
    return Layer(init, apply)


def ready_layer(kind: str, init: InitFn, apply: ApplyFn) -> ReadyLayer:
    """Build a :class:`ReadyLayer` (a parameterless layer usable as a value or called with no arguments)."""
    init.jcnn_kind = kind  # type: ignore[attr-defined]
    return ReadyLayer(init, apply)


def check_shape(
    name: str,
    input_shape: Any,
    *,
    ndim: int | Sequence[int] | None = None,
    min_ndim: int | None = None,
    what: str = "",
) -> Shape:
    """Validate a single input shape at ``init``: a tuple of ints ``>= 1`` (batch may be ``-1``).

    ``ndim`` fixes the rank (one value or several allowed), ``min_ndim`` bounds it; ``what`` describes the
    expected layout in the error (e.g. ``"(N, *spatial, C)"``).
    """
    if not isinstance(input_shape, (tuple, list)) or not all(
        isinstance(d, (int,)) or hasattr(d, "__index__") for d in input_shape
    ):
        raise ValueError(f"{name}: expected one input shape (a tuple of ints), got {input_shape!r}")
    shape = tuple(int(d) for d in input_shape)
    layout = f" {what}" if what else ""
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if len(shape) not in allowed:
            raise ValueError(
                f"{name}: expected an input of rank {' or '.join(map(str, allowed))}{layout}, "
                f"got shape {shape} (rank {len(shape)})"
            )
    if min_ndim is not None and len(shape) < min_ndim:
        raise ValueError(
            f"{name}: expected an input of rank >= {min_ndim}{layout}, got shape {shape} (rank {len(shape)})"
        )
    if shape and not (shape[0] >= 1 or shape[0] == -1):
        raise ValueError(f"{name}: the batch dim must be >= 1 or -1, got shape {shape}")
    if any(d < 1 for d in shape[1:]):
        raise ValueError(f"{name}: every non-batch dim must be >= 1, got shape {shape}")
    return shape


def _concrete(shape: ShapeTree) -> Any:
    """Replace a ``-1`` batch with the probe batch, recursively over tuples of shapes."""
    if is_shape(shape):
        return tuple(_PROBE_BATCH if (i == 0 and d == -1) else d for i, d in enumerate(shape))
    return tuple(_concrete(s) for s in shape)


def _symbolic(shape: Any, had_unknown_batch: bool) -> Any:
    if is_shape(shape):
        if had_unknown_batch and shape and shape[0] == _PROBE_BATCH:
            return (-1,) + tuple(shape[1:])
        return tuple(shape)
    return tuple(_symbolic(s, had_unknown_batch) for s in shape)


def _has_unknown_batch(shape: ShapeTree) -> bool:
    if is_shape(shape):
        return bool(shape) and shape[0] == -1
    return any(_has_unknown_batch(s) for s in shape)


def is_shape(shape: Any) -> bool:
    """True for one shape (a tuple of ints), False for a tuple of shapes."""
    return isinstance(shape, (tuple, list)) and all(
        isinstance(d, int) or hasattr(d, "__index__") for d in shape
    )


def infer_output_shape(
    apply: ApplyFn, params: Params, state: State, input_shape: ShapeTree, dtype: Any = jnp.float32
) -> ShapeTree:
    """Output shape of ``apply`` by ``jax.eval_shape`` (no FLOPs): the one source of truth for shapes.

    A ``-1`` batch is probed with a concrete batch and reported back as ``-1``.
    """
    unknown = _has_unknown_batch(input_shape)
    concrete = _concrete(input_shape)

    def spec(s: Any) -> Any:
        if is_shape(s):
            return jax.ShapeDtypeStruct(tuple(s), dtype)
        return tuple(spec(t) for t in s)

    def run(p: Params, st: State, x: Any) -> Any:
        return apply(p, st, x, train=False)[0]

    out = jax.eval_shape(run, params, state, spec(concrete))
    shapes = jax.tree_util.tree_map(lambda a: tuple(a.shape), out)
    if isinstance(out, (tuple, list)):
        shapes = tuple(tuple(a.shape) for a in out)
    return _symbolic(shapes, unknown)


def split_key(key: PRNGKey | None, n: int) -> list[PRNGKey | None]:
    """``n`` independent keys from ``key`` (``None`` stays ``None`` for every child)."""
    if key is None:
        return [None] * n
    return list(jax.random.split(key, n))
