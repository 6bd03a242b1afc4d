"""Pooling written as loops over output cells and window taps (docs/pooling.md), NumPy float64.

Inputs are channels-last ``(N, *spatial, C)`` with any number of spatial dims. Padding is an int, one
int per dim, or one ``(low, high)`` pair per dim; padded cells are skipped by max (as ``-inf``) and
counted by average only with ``count_include_pad``. Rules for ``ceil_mode`` and divisors are torch's.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import TypeVar, Union, cast

import numpy as np
from numpy.typing import ArrayLike

from jcnn._types import FloatArray, IntOrSeq

_T = TypeVar("_T")
PoolPadding = Union[int, Sequence[Union[int, tuple[int, int]]]]
"""An int, one int per spatial dim, or one ``(low, high)`` pair per dim."""


def _per_dim(value: _T | Sequence[_T], n: int) -> tuple[_T, ...]:
    if isinstance(value, (tuple, list)):
        return tuple(value)
    return (cast(_T, value),) * n  # not a tuple or list: one value for every dim


def _pairs(padding: PoolPadding, n: int) -> list[tuple[int, int]]:
    entries: tuple[int | tuple[int, int], ...] = _per_dim(padding, n)
    return [p if isinstance(p, (tuple, list)) else (p, p) for p in entries]


def _out_len(i: int, k: int, s: int, lo: int, hi: int, d: int, ceil_mode: bool) -> int:
    span = i + lo + hi - d * (k - 1) - 1
    o = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (o - 1) * s >= i + lo:  # the last window must start inside input or low padding
        o -= 1
    return o


def _windowed(
    x: ArrayLike,
    window: IntOrSeq,
    stride: IntOrSeq | None,
    padding: PoolPadding,
    dilation: IntOrSeq,
    ceil_mode: bool,
    cell: Callable[[list[float], int, int], float],
) -> FloatArray:
    """Call ``cell(values, n_tap_positions_in_padded_input, n_taps)`` for each output cell."""
    xa = np.asarray(x, dtype=np.float64)
    n = xa.ndim - 2
    k = _per_dim(window, n)
    s = k if stride is None else _per_dim(stride, n)
    d = _per_dim(dilation, n)
    pads = _pairs(padding, n)
    sizes = xa.shape[1:-1]
    outs = [_out_len(sizes[a], k[a], s[a], *pads[a], d[a], ceil_mode) for a in range(n)]
    y = np.zeros((xa.shape[0], *outs, xa.shape[-1]))
    for b in range(xa.shape[0]):
        for c in range(xa.shape[-1]):
            for o in itertools.product(*(range(v) for v in outs)):
                values: list[float] = []
                in_padded = 0
                for tap in itertools.product(*(range(v) for v in k)):
                    pos = [o[a] * s[a] - pads[a][0] + tap[a] * d[a] for a in range(n)]
                    if all(-pads[a][0] <= pos[a] < sizes[a] + pads[a][1] for a in range(n)):
                        in_padded += 1
                    if all(0 <= pos[a] < sizes[a] for a in range(n)):
                        at = (b, *pos, c)
                        values.append(xa[at])
                out_at = (b, *o, c)
                y[out_at] = cell(values, in_padded, math.prod(k))
    return y


def max_pool(
    x: ArrayLike,
    window: IntOrSeq,
    stride: IntOrSeq | None = None,
    padding: PoolPadding = 0,
    dilation: IntOrSeq = 1,
    ceil_mode: bool = False,
) -> FloatArray:
    """``O[i] = max_k X[i·S − P_low + k·D]`` over the real (unpadded) cells of each window."""
    return _windowed(x, window, stride, padding, dilation, ceil_mode, lambda v, _p, _k: max(v))


def avg_pool(
    x: ArrayLike,
    window: IntOrSeq,
    stride: IntOrSeq | None = None,
    padding: PoolPadding = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> FloatArray:
    """``O[i] = Σ_k X[i·S − P_low + k] / d``: ``d`` counts the window's cells inside the padded input
    (``count_include_pad``) or inside the input; cells past the padded input are never counted."""
    return _windowed(
        x, window, stride, padding, 1, ceil_mode, lambda v, p, _k: sum(v) / (p if count_include_pad else len(v))
    )


def lp_pool(
    x: ArrayLike, p: float, window: IntOrSeq, stride: IntOrSeq | None = None, ceil_mode: bool = False
) -> FloatArray:
    """``O[i] = (Σ_k X[i·S + k]^p)^(1/p)``; as torch, a window clipped by ``ceil_mode`` is rescaled by
    ``window volume / cells`` (torch computes ``volume · mean(x^p)``)."""
    return _windowed(
        x, window, stride, 0, 1, ceil_mode, lambda v, _p, vol: (sum(t**p for t in v) * vol / len(v)) ** (1.0 / p)
    )


def global_avg_pool(x: ArrayLike) -> FloatArray:
    """``(N, *spatial, C) → (N, C)``: the mean over every spatial position."""
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape(x.shape[0], -1, x.shape[-1])
    return np.array([[sum(flat[b, :, c]) / flat.shape[1] for c in range(x.shape[-1])] for b in range(x.shape[0])])


def global_max_pool(x: ArrayLike) -> FloatArray:
    """``(N, *spatial, C) → (N, C)``: the max over every spatial position."""
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape(x.shape[0], -1, x.shape[-1])
    return np.array([[max(flat[b, :, c]) for c in range(x.shape[-1])] for b in range(x.shape[0])])


def adaptive_bins(size: int, out: int) -> list[tuple[int, int]]:
    """torch's adaptive bins: bin ``i`` is ``[floor(i·I/O), ceil((i+1)·I/O))``."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


def _adaptive(
    x: ArrayLike, output_size: int | Sequence[int | None], reduce: Callable[[FloatArray], float]
) -> FloatArray:
    xa = np.asarray(x, dtype=np.float64)
    n = xa.ndim - 2
    sizes: tuple[int | None, ...] = _per_dim(output_size, n)
    outs = [xa.shape[1 + a] if o is None else o for a, o in enumerate(sizes)]
    bins = [adaptive_bins(xa.shape[1 + a], outs[a]) for a in range(n)]
    y = np.zeros((xa.shape[0], *outs, xa.shape[-1]))
    for o in itertools.product(*(range(v) for v in outs)):
        box = tuple(slice(*bins[a][o[a]]) for a in range(n))
        for b in range(xa.shape[0]):
            for c in range(xa.shape[-1]):
                cells: tuple[int | slice, ...] = (b, *box, c)
                out_at = (b, *o, c)
                y[out_at] = reduce(xa[cells])
    return y


def adaptive_avg_pool(x: ArrayLike, output_size: int | Sequence[int | None]) -> FloatArray:
    """Mean over each of torch's adaptive bins (see :func:`adaptive_bins`)."""
    return _adaptive(x, output_size, lambda v: v.sum() / v.size)


def adaptive_max_pool(x: ArrayLike, output_size: int | Sequence[int | None]) -> FloatArray:
    """Max over each of torch's adaptive bins (see :func:`adaptive_bins`)."""
    return _adaptive(x, output_size, lambda v: v.max())
