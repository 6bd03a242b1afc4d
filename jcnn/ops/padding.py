"""Argument normalisation and spatial padding shared by the convolution and pooling ops.

Arrays are channels-last, ``(N, *spatial, C)``; "spatial dims" are axes ``1 .. ndim-2``.
Padding accepts every form of docs/design.md §2: an int, one int per spatial dim, one ``(low, high)``
pair per spatial dim, or the strings ``"VALID"`` and ``"SAME"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, SupportsIndex, cast

import jax.numpy as jnp
from jax import lax

from jcnn._types import Array, IntOrSeq, PaddingLike

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
"""How padding is filled (torch's ``padding_mode`` names)."""
Pairs = tuple[tuple[int, int], ...]
"""One ``(low, high)`` padding pair per spatial dim."""


def as_tuple(value: IntOrSeq, n: int, name: str, op: str, *, minimum: int = 1) -> tuple[int, ...]:
    """``value`` as an ``n``-tuple of ints ``>= minimum``: an int is repeated, a sequence must have ``n`` entries."""
    if isinstance(value, bool):
        raise TypeError(f"{op}: {name} must be an int or a sequence of {n} ints, got the bool {value!r}")
    if isinstance(value, int) or (hasattr(value, "__index__") and not hasattr(value, "__len__")):
        out = (int(value),) * n
    else:
        try:
            out = tuple(int(v) for v in value)
        except TypeError:
            raise TypeError(f"{op}: {name} must be an int or a sequence of {n} ints, got {value!r}") from None
        if len(out) != n:
            raise ValueError(f"{op}: {name} needs one value per spatial dim ({n} for this input), got {value!r}")
    for v in out:
        if v < minimum:
            raise ValueError(f"{op}: every {name} must be >= {minimum}, got {value!r}")
    return out


def is_int(value: object) -> bool:
    """True for Python and NumPy integers (not bools, floats or sized objects)."""
    return not isinstance(value, bool) and hasattr(value, "__index__") and not hasattr(value, "__len__")


def effective_kernel(kernel: Sequence[int], dilation: Sequence[int]) -> tuple[int, ...]:
    """Extent of a dilated window: ``D·(K − 1) + 1`` per dim."""
    return tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))


def normalize_padding(
    padding: PaddingLike,
    n: int,
    op: str,
    *,
    input_spatial: Sequence[int] | None = None,
    window: Sequence[int] | None = None,
    stride: Sequence[int] | None = None,
) -> Pairs:
    """Padding in any form of docs/design.md §2 → one ``(low, high)`` pair per spatial dim.

    ``"SAME"`` needs ``input_spatial``, the effective (dilated) ``window`` and ``stride``; it pads so the
    output has ``ceil(I/S)`` elements, putting any odd pixel on the high side as XLA does.
    """
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0),) * n
        if mode == "SAME":
            if input_spatial is None or window is None or stride is None:
                raise ValueError(f"{op}: padding='SAME' needs the input size, window and stride")
            pairs = []
            for size, k, s in zip(input_spatial, window, stride):
                out = -(-size // s)
                total = max((out - 1) * s + k - size, 0)
                pairs.append((total // 2, total - total // 2))
            return tuple(pairs)
        raise ValueError(f"{op}: unknown padding string {padding!r}; expected 'VALID' or 'SAME'")
    if isinstance(padding, bool):
        raise TypeError(f"{op}: padding must be an int, a sequence or 'VALID'/'SAME', got {padding!r}")
    # is_int is a plain bool test, so the casts say what it established (or, past it, what list() tries).
    if is_int(padding):
        p = int(cast(SupportsIndex, padding))
        pairs_t: Pairs = ((p, p),) * n
    else:
        try:
            items: list[Any] = list(cast(Iterable[Any], padding))  # each entry is checked below
        except TypeError:
            raise TypeError(f"{op}: padding must be an int, a sequence or 'VALID'/'SAME', got {padding!r}") from None
        if len(items) != n:
            raise ValueError(f"{op}: padding needs one entry per spatial dim ({n} for this input), got {padding!r}")
        pairs_l = []
        for item in items:
            if is_int(item):
                pairs_l.append((int(item), int(item)))
            elif hasattr(item, "__len__") and len(item) == 2 and all(is_int(v) for v in item):
                pairs_l.append((int(item[0]), int(item[1])))
            else:
                raise ValueError(f"{op}: each padding entry must be an int or a (low, high) pair, got {item!r}")
        pairs_t = tuple(pairs_l)
    for lo, hi in pairs_t:
        if lo < 0 or hi < 0:
            raise ValueError(f"{op}: padding must be non-negative, got {padding!r}")
    return pairs_t


def pad_spatial(x: Array, pairs: Pairs, mode: str = "zeros", value: float = 0.0, op: str = "pad") -> Array:
    """Pad the spatial axes ``1 .. ndim-2`` of a channels-last ``x`` by ``pairs``.

    ``mode`` follows torch: ``zeros`` (the constant ``value``), ``reflect`` (mirror without repeating the
    edge; needs pad < size), ``replicate`` (repeat the edge) and ``circular`` (wrap; needs pad <= size).
    """
    if mode not in PADDING_MODES:
        raise ValueError(f"{op}: unknown padding_mode {mode!r}; expected one of {PADDING_MODES}")
    if all(lo == 0 and hi == 0 for lo, hi in pairs):
        return x
    if mode == "zeros":
        config = [(0, 0, 0)] + [(lo, hi, 0) for lo, hi in pairs] + [(0, 0, 0)]
        return lax.pad(x, jnp.asarray(value, x.dtype), config)
    for axis, (lo, hi) in enumerate(pairs, start=1):
        size = x.shape[axis]
        if mode == "reflect" and max(lo, hi) >= size:
            raise ValueError(
                f"{op}: padding_mode='reflect' needs padding < input size, got padding ({lo}, {hi}) "
                f"for spatial size {size}"
            )
        if mode == "circular" and max(lo, hi) > size:
            raise ValueError(
                f"{op}: padding_mode='circular' needs padding <= input size, got padding ({lo}, {hi}) "
                f"for spatial size {size}"
            )
        parts = []
        if lo:
            if mode == "reflect":
                parts.append(lax.rev(lax.slice_in_dim(x, 1, lo + 1, axis=axis), (axis,)))
            elif mode == "replicate":
                edge = lax.slice_in_dim(x, 0, 1, axis=axis)
                parts.append(jnp.concatenate([edge] * lo, axis=axis))
            else:
                parts.append(lax.slice_in_dim(x, size - lo, size, axis=axis))
        parts.append(x)
        if hi:
            if mode == "reflect":
                parts.append(lax.rev(lax.slice_in_dim(x, size - hi - 1, size - 1, axis=axis), (axis,)))
            elif mode == "replicate":
                edge = lax.slice_in_dim(x, size - 1, size, axis=axis)
                parts.append(jnp.concatenate([edge] * hi, axis=axis))
            else:
                parts.append(lax.slice_in_dim(x, 0, hi, axis=axis))
        x = lax.concatenate(parts, axis)
    return x
