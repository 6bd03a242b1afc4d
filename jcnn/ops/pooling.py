"""Pooling (docs/pooling.md) on channels-last arrays ``(N, *spatial, C)`` with 1, 2 or 3 spatial dims.

Windowed pools are one ``lax.reduce_window`` each; semantics follow ``torch.nn.functional``
(``max_pool{1,2,3}d``, ``avg_pool{1,2,3}d``, ``lp_pool{1,2,3}d``, ``adaptive_{avg,max}_pool{1,2,3}d``).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Protocol, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jcnn._types import Array, IntOrSeq, PaddingLike
from jcnn.ops.padding import Pairs, as_tuple, effective_kernel, normalize_padding
from jcnn.ops.shapes import output_size

AdaptiveSize = Union[int, None, Sequence[int | None]]
"""An adaptive pool's output size: one int, or one per spatial dim; ``None`` keeps that dim."""


class _Shaped(Protocol):
    """What the geometry reads of an input: an array's, or a :class:`_ShapeOnly`'s, ``shape`` and ``ndim``."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def ndim(self) -> int: ...


def _spatial_dims(x: _Shaped, op: str) -> int:
    if x.ndim not in (3, 4, 5):
        raise ValueError(
            f"{op}: expected a channels-last input (N, *spatial, C) with 1 to 3 spatial dims "
            f"(rank 3, 4 or 5), got shape {tuple(x.shape)} (rank {x.ndim})"
        )
    return x.ndim - 2


class _Geometry:
    """Window, stride, dilation, padding and output size of one pooling call, all per spatial dim."""

    def __init__(
        self,
        x: _Shaped,
        window: IntOrSeq,
        stride: IntOrSeq | None,
        padding: PaddingLike,
        dilation: IntOrSeq,
        ceil_mode: bool,
        op: str,
    ) -> None:
        n = _spatial_dims(x, op)
        self.spatial = tuple(int(v) for v in x.shape[1:-1])
        self.window = as_tuple(window, n, "window", op)
        self.stride = self.window if stride is None else as_tuple(stride, n, "stride", op)
        self.dilation = as_tuple(dilation, n, "dilation", op)
        self.pairs: Pairs = normalize_padding(
            padding,
            n,
            op,
            input_spatial=self.spatial,
            window=effective_kernel(self.window, self.dilation),
            stride=self.stride,
        )
        for (lo, hi), k in zip(self.pairs, self.window):
            # torch's rule for explicit padding; "SAME" pads at most what its windows need
            if not isinstance(padding, str) and max(lo, hi) > k // 2:
                raise ValueError(
                    f"{op}: padding must be at most half of the window on each side (torch's rule, so "
                    f"that no window lies entirely in the padding), got padding {padding!r} for "
                    f"window {self.window}"
                )
        self.out = output_size(self.spatial, self.window, self.stride, self.pairs, self.dilation, ceil_mode)

    def reduce_padding(self) -> list[tuple[int, int]]:
        """``reduce_window`` padding for the batch, spatial and channel axes.

        The high side grows where ``ceil_mode`` needs a last window that runs past the padded input.
        """
        pads = [(0, 0)]
        for i, k, s, (lo, hi), o in zip(
            self.spatial, effective_kernel(self.window, self.dilation), self.stride, self.pairs, self.out
        ):
            needed = (o - 1) * s + k
            pads.append((lo, max(hi, needed - lo - i)))
        return pads + [(0, 0)]

    def reduce(self, x: Array, init: float | int, computation: Callable[[Array, Array], Array]) -> Array:
        out: Array = lax.reduce_window(
            x,
            np.array(init, dtype=x.dtype),
            computation,
            window_dimensions=(1, *self.window, 1),
            window_strides=(1, *self.stride, 1),
            padding=self.reduce_padding(),
            window_dilation=(1, *self.dilation, 1),
        )
        return out


def _lowest(dtype: jnp.dtype) -> float | int:
    if jnp.issubdtype(dtype, jnp.floating):
        return -np.inf
    if jnp.issubdtype(dtype, jnp.integer):
        return int(jnp.iinfo(dtype).min)  # type: ignore[no-untyped-call]  # jnp.iinfo (ml_dtypes.iinfo) is unannotated; np.iinfo lacks int4
    raise ValueError(f"max_pool: expected a float or integer input, got dtype {dtype}")


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _max_pool_taps_vjp(
    x: Array, window: tuple[int, ...], stride: tuple[int, ...], pads: tuple[tuple[int, int], ...]
) -> Array:
    """``reduce_window`` max of a float ``x`` (no dilation), differentiated tap by tap: see ``_max_pool_bwd``."""
    y: Array = lax.reduce_window(x, np.array(-np.inf, x.dtype), lax.max, (1, *window, 1), (1, *stride, 1), pads)
    return y


def _max_pool_fwd(
    x: Array, window: tuple[int, ...], stride: tuple[int, ...], pads: tuple[tuple[int, int], ...]
) -> tuple[Array, tuple[Array, Array]]:
    y = _max_pool_taps_vjp(x, window, stride, pads)
    return y, (x, y)


def _max_pool_bwd(
    window: tuple[int, ...],
    stride: tuple[int, ...],
    pads: tuple[tuple[int, int], ...],
    residuals: tuple[Array, Array],
    g: Array,
) -> tuple[Array]:
    """``∂x = Σ_m scatter_m(g · [x_m = y and no earlier tap of the window was]))``: for each window tap ``m``
    (row-major order) the strided slice ``x_m`` of the padded input that it reads; the first maximal tap of a
    window takes the gradient, as in torch; the scatter is the slice's transpose (a pad with ``S − 1``
    interior zeros, written per phase). Elementwise work that XLA fuses, instead of ``select_and_scatter`` (which XLA's CPU
    backend expands into an arg-max ``reduce_window`` over index tuples and a scatter: ~20× the forward's
    time on ResNet's 3×3/2 stem pool, benchmarks/PROFILE.md)."""
    x, y = residuals
    padded = lax.pad(x, np.array(-np.inf, x.dtype), [(lo, hi, 0) for lo, hi in pads])
    out = y.shape[1:-1]
    taken = jnp.zeros(y.shape, bool)
    zero = np.array(0, g.dtype)
    # Polyphase scatter: tap m lands on positions S·i + m, i.e. on phase m mod S of each dim at offset
    # m // S, so each phase is a sum of plainly padded terms and the phases interleave by a reshape.
    phase_shape = tuple(-(-p // s) for p, s in zip(padded.shape[1:-1], stride))
    phases: dict[tuple[int, ...], Array] = {}
    for tap in itertools.product(*(range(k) for k in window)):
        limit = (x.shape[0], *(t + (o - 1) * s + 1 for t, o, s in zip(tap, out, stride)), x.shape[-1])
        xm = lax.slice(padded, (0, *tap, 0), limit, (1, *stride, 1))
        sel = (xm == y) & ~taken
        taken = taken | sel
        shift = [(t // s, q - t // s - o, 0) for t, s, q, o in zip(tap, stride, phase_shape, out)]
        term = lax.pad(jnp.where(sel, g, zero), zero, [(0, 0, 0), *shift, (0, 0, 0)])
        phase = tuple(t % s for t, s in zip(tap, stride))
        phases[phase] = term if phase not in phases else phases[phase] + term
    full_shape = (x.shape[0], *phase_shape, x.shape[-1])
    grid = [phases.get(r, jnp.zeros(full_shape, g.dtype)) for r in itertools.product(*(range(s) for s in stride))]
    n = len(stride)
    total = jnp.stack(grid).reshape(*stride, *full_shape)
    # (S_1..S_n, N, Q_1..Q_n, C) -> (N, Q_1, S_1, ..., Q_n, S_n, C) -> (N, Q_1·S_1, ..., C)
    order = [n] + [a for d in range(n) for a in (n + 1 + d, d)] + [2 * n + 1]
    total = jnp.transpose(total, order).reshape(x.shape[0], *(q * s for q, s in zip(phase_shape, stride)), x.shape[-1])
    lows = tuple(lo for lo, _ in pads)
    return (lax.slice(total, lows, tuple(lo + d for lo, d in zip(lows, x.shape))),)


_max_pool_taps_vjp.defvjp(_max_pool_fwd, _max_pool_bwd)


def max_pool(
    x: Array,
    window: IntOrSeq,
    stride: IntOrSeq | None = None,
    padding: PaddingLike = 0,
    dilation: IntOrSeq = 1,
    ceil_mode: bool = False,
) -> Array:
    """``O[n, i, c] = max_{k} X_pad[n, i·S + k·D, c]`` over each window, as ``F.max_pool{1,2,3}d``.

    ``x (N, *spatial, C)`` → ``(N, *out, C)`` with ``out`` from :func:`jcnn.ops.output_size`.
    ``stride`` defaults to ``window``; padding is ``-inf`` and, unless ``"SAME"``, at most half the
    window per side (torch's rule). The gradient of each window goes to its first maximal tap (torch's
    rule for ties); for a float input without dilation through a ``jax.custom_vjp`` (no
    ``select_and_scatter``), so ``jax.jvp`` of it raises.
    """
    geo = _Geometry(x, window, stride, padding, dilation, ceil_mode, "max_pool")
    if all(d == 1 for d in geo.dilation):
        if jnp.issubdtype(x.dtype, jnp.floating):
            return _max_pool_taps_vjp(x, geo.window, geo.stride, tuple(map(tuple, geo.reduce_padding())))
        return geo.reduce(x, _lowest(x.dtype), lax.max)
    # JAX has no VJP for a window-dilated reduce_window max: take the max over the stacked window taps.
    padded = lax.pad(x, np.array(_lowest(x.dtype), dtype=x.dtype), [(lo, hi, 0) for lo, hi in geo.reduce_padding()])
    taps = []
    for tap in itertools.product(*(range(k) for k in geo.window)):
        start = (0, *(t * d for t, d in zip(tap, geo.dilation)), 0)
        limit = (x.shape[0], *(b + (o - 1) * s + 1 for b, o, s in zip(start[1:], geo.out, geo.stride)), x.shape[-1])
        taps.append(lax.slice(padded, start, limit, (1, *geo.stride, 1)))
    stacked = jnp.stack(taps)
    # the first maximal tap in window order takes the gradient, as in torch
    first = jnp.argmax(stacked, axis=0)[None]
    return jnp.take_along_axis(stacked, first, axis=0)[0]


def _avg_divisor(geo: _Geometry, count_include_pad: bool) -> np.ndarray:
    """torch's divisor per output cell, shape ``(1, *out, 1)``.

    Per dim: a window spans ``[o·S − P_low, min(o·S − P_low + K, I + P_high))``; cells past the padded
    input (from ``ceil_mode``) are never counted, padded cells only with ``count_include_pad``.
    """
    divisor = np.ones((), dtype=np.float64)
    for i, k, s, (lo, hi), o in zip(geo.spatial, geo.window, geo.stride, geo.pairs, geo.out):
        start = np.arange(o) * s - lo
        end = np.minimum(start + k, i + hi)
        if count_include_pad:
            count = end - start
        else:
            count = np.minimum(end, i) - np.maximum(start, 0)
        divisor = np.multiply.outer(divisor, count.astype(np.float64))
    return divisor[None, ..., None]


def avg_pool(
    x: Array,
    window: IntOrSeq,
    stride: IntOrSeq | None = None,
    padding: PaddingLike = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Array:
    """``O[n, i, c] = Σ_{k} X_pad[n, i·S + k, c] / d_i``, as ``F.avg_pool{1,2,3}d``.

    ``x (N, *spatial, C)`` → ``(N, *out, C)``. The divisor ``d_i`` is the window size clipped to the
    padded input (``ceil_mode`` windows that run past it are clipped), or with
    ``count_include_pad=False`` the number of real input cells. With ``padding="SAME"`` and
    ``count_include_pad=False`` this is TensorFlow's SAME average pool.
    """
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"avg_pool: expected a floating-point input, got dtype {x.dtype}")
    geo = _Geometry(x, window, stride, padding, 1, ceil_mode, "avg_pool")
    total = geo.reduce(x, 0, lax.add)
    return total / _avg_divisor(geo, count_include_pad).astype(x.dtype)


def lp_pool(x: Array, p: float, window: IntOrSeq, stride: IntOrSeq | None = None, ceil_mode: bool = False) -> Array:
    """Power-average pool ``O = (Σ_{window} x^p)^(1/p)``, as ``F.lp_pool{1,2,3}d`` (no padding).

    p = 1 is sum pooling, p = 2 the L2 pool, ``p = inf`` is :func:`max_pool`. As torch, it computes
    ``(K · avg_pool(x^p))^(1/p)`` with ``K`` the window volume, so a ``ceil_mode`` window clipped at the
    border is rescaled to a full window. ``x (N, *spatial, C)`` → ``(N, *out, C)``.
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not p > 0:
        raise ValueError(f"lp_pool: p must be a positive number (the norm's power), got {p!r}")
    if not jnp.issubdtype(jnp.result_type(x), jnp.floating):
        raise ValueError(f"lp_pool: expected a floating-point input, got dtype {jnp.result_type(x)}")
    if math.isinf(p):
        return max_pool(x, window, stride, ceil_mode=ceil_mode)
    geo = _Geometry(x, window, stride, 0, 1, ceil_mode, "lp_pool")
    mean = avg_pool(x**p, geo.window, geo.stride, 0, ceil_mode)
    # torch's sign(s)·relu(|s|): equal to s, but with a zero gradient where s == 0.
    mean = jnp.sign(mean) * jnp.abs(mean)
    return (mean * math.prod(geo.window)) ** (1.0 / p)


def global_avg_pool(x: Array) -> Array:
    """Mean over all spatial positions: ``(N, *spatial, C)`` → ``(N, C)``."""
    n = _spatial_dims(x, "global_avg_pool")
    return jnp.mean(x, axis=tuple(range(1, n + 1)))


def global_max_pool(x: Array) -> Array:
    """Max over all spatial positions: ``(N, *spatial, C)`` → ``(N, C)``."""
    n = _spatial_dims(x, "global_max_pool")
    return jnp.max(x, axis=tuple(range(1, n + 1)))


def _adaptive_sizes(x: _Shaped, output_size: AdaptiveSize, op: str) -> tuple[int, ...]:
    n = _spatial_dims(x, op)
    if output_size is None or not isinstance(output_size, (tuple, list)):
        items = [output_size] * n
    else:
        items = list(output_size)
    if len(items) != n:
        raise ValueError(f"{op}: output_size needs one entry per spatial dim ({n} for this input), got {output_size!r}")
    sizes = []
    for item, size in zip(items, x.shape[1:-1]):
        if item is None:
            item = size
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            raise ValueError(
                f"{op}: output_size entries must be ints >= 1 (or None to keep the input size), got {output_size!r}"
            )
        sizes.append(item)
    return tuple(sizes)


def _adaptive(x: Array, output_size: AdaptiveSize, op: str, reduce: Callable[..., Array]) -> Array:
    """Bin ``i`` of ``O`` over an axis of length ``I`` is ``[floor(i·I/O), ceil((i+1)·I/O))``.

    Mean and max over a box are nested means/maxes over its sides, so the axes are pooled one at a time.
    """
    for axis, o in enumerate(_adaptive_sizes(x, output_size, op), start=1):
        i = x.shape[axis]
        if i % o == 0:
            shape = x.shape[:axis] + (o, i // o) + x.shape[axis + 1 :]
            x = reduce(x.reshape(shape), axis=axis + 1)
            continue
        cells = []
        for j in range(o):
            start, end = (j * i) // o, -(-((j + 1) * i) // o)
            cells.append(reduce(lax.slice_in_dim(x, start, end, axis=axis), axis=axis, keepdims=True))
        x = lax.concatenate(cells, axis)
    return x


def adaptive_avg_pool(x: Array, output_size: AdaptiveSize) -> Array:
    """Average over torch's adaptive bins, as ``F.adaptive_avg_pool{1,2,3}d``.

    ``x (N, *spatial, C)`` → ``(N, *output_size, C)``; bin ``i`` of an axis of length ``I`` covers
    ``[floor(i·I/O), ceil((i+1)·I/O))``. ``output_size`` is an int, one int per dim, or None for a dim
    to keep its size.
    """
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"adaptive_avg_pool: expected a floating-point input, got dtype {x.dtype}")
    return _adaptive(x, output_size, "adaptive_avg_pool", jnp.mean)


def adaptive_max_pool(x: Array, output_size: AdaptiveSize) -> Array:
    """Max over torch's adaptive bins, as ``F.adaptive_max_pool{1,2,3}d`` (see :func:`adaptive_avg_pool`)."""
    return _adaptive(x, output_size, "adaptive_max_pool", jnp.max)


class _ShapeOnly:
    """Stands in for an array where only ``shape``/``ndim`` are read (shape rules of the pooling layers)."""

    def __init__(self, shape: Sequence[int]) -> None:
        self.shape = tuple(shape)
        self.ndim = len(self.shape)


def pool_output_shape(
    input_shape: Sequence[int],
    window: IntOrSeq,
    stride: IntOrSeq | None = None,
    padding: PaddingLike = 0,
    dilation: IntOrSeq = 1,
    ceil_mode: bool = False,
    op: str = "pool",
) -> tuple[int, ...]:
    """``(N, *O, C)`` of a windowed pool (max/avg/lp) of an ``(N, *I, C)`` input, from the same geometry
    the ops use (``O`` by :func:`jcnn.ops.output_size`, torch's padding and ceil-mode rules). A ``-1``
    batch is kept."""
    geo = _Geometry(_ShapeOnly(input_shape), window, stride, padding, dilation, ceil_mode, op)
    return (input_shape[0], *geo.out, input_shape[-1])


def adaptive_output_shape(
    input_shape: Sequence[int], output_size: AdaptiveSize, op: str = "adaptive_pool"
) -> tuple[int, ...]:
    """``(N, *output_size, C)`` of an adaptive pool of ``(N, *I, C)`` (``None`` entries keep ``I``)."""
    return (input_shape[0], *_adaptive_sizes(_ShapeOnly(input_shape), output_size, op), input_shape[-1])
