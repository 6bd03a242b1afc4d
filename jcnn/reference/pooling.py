"""Pooling written as loops over output cells and window taps (docs/pooling.md), NumPy float64.

Inputs are channels-last ``(N, *spatial, C)`` with any number of spatial dims. Padding is an int, one
int per dim, or one ``(low, high)`` pair per dim; padded cells are skipped by max (as ``-inf``) and
counted by average only with ``count_include_pad``. Rules for ``ceil_mode`` and divisors are torch's.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np


def _per_dim(value, n: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _pairs(padding, n: int) -> list[tuple[int, int]]:
    return [p if isinstance(p, (tuple, list)) else (p, p) for p in _per_dim(padding, n)]


def _out_len(i: int, k: int, s: int, lo: int, hi: int, d: int, ceil_mode: bool) -> int:
    span = i + lo + hi - d * (k - 1) - 1
    o = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (o - 1) * s >= i + lo:  # the last window must start inside input or low padding
        o -= 1
    return o


def _windowed(
    x: np.ndarray, window, stride, padding, dilation, ceil_mode: bool, cell: Callable[[list[float], int, int], float]
) -> np.ndarray:
    """Call ``cell(values, n_tap_positions_in_padded_input, n_taps)`` for each output cell."""
    x = np.asarray(x, dtype=np.float64)
    n = x.ndim - 2
    k = _per_dim(window, n)
    s = k if stride is None else _per_dim(stride, n)
    d = _per_dim(dilation, n)
    pads = _pairs(padding, n)
    sizes = x.shape[1:-1]
    outs = [_out_len(sizes[a], k[a], s[a], *pads[a], d[a], ceil_mode) for a in range(n)]
    y = np.zeros((x.shape[0], *outs, x.shape[-1]))
    for b in range(x.shape[0]):
        for c in range(x.shape[-1]):
            for o in itertools.product(*(range(v) for v in outs)):
                values, in_padded = [], 0
                for tap in itertools.product(*(range(v) for v in k)):
                    pos = [o[a] * s[a] - pads[a][0] + tap[a] * d[a] for a in range(n)]
                    if all(-pads[a][0] <= pos[a] < sizes[a] + pads[a][1] for a in range(n)):
                        in_padded += 1
                    if all(0 <= pos[a] < sizes[a] for a in range(n)):
                        values.append(x[(b, *pos, c)])
                y[(b, *o, c)] = cell(values, in_padded, math.prod(k))
    return y


def max_pool(x: np.ndarray, window, stride=None, padding=0, dilation=1, ceil_mode: bool = False) -> np.ndarray:
    """``O[i] = max_k X[i·S − P_low + k·D]`` over the real (unpadded) cells of each window."""
    return _windowed(x, window, stride, padding, dilation, ceil_mode, lambda v, _p, _k: max(v))


def avg_pool(
    x: np.ndarray, window, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True
) -> np.ndarray:
    """``O[i] = Σ_k X[i·S − P_low + k] / d``: ``d`` counts the window's cells inside the padded input
    (``count_include_pad``) or inside the input; cells past the padded input are never counted."""
    return _windowed(
        x, window, stride, padding, 1, ceil_mode, lambda v, p, _k: sum(v) / (p if count_include_pad else len(v))
    )


def lp_pool(x: np.ndarray, p: float, window, stride=None, ceil_mode: bool = False) -> np.ndarray:
    """``O[i] = (Σ_k X[i·S + k]^p)^(1/p)``; as torch, a window clipped by ``ceil_mode`` is rescaled by
    ``window volume / cells`` (torch computes ``volume · mean(x^p)``)."""
    return _windowed(
        x, window, stride, 0, 1, ceil_mode, lambda v, _p, vol: (sum(t**p for t in v) * vol / len(v)) ** (1.0 / p)
    )


def global_avg_pool(x: np.ndarray) -> np.ndarray:
    """``(N, *spatial, C) → (N, C)``: the mean over every spatial position."""
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape(x.shape[0], -1, x.shape[-1])
    return np.array([[sum(flat[b, :, c]) / flat.shape[1] for c in range(x.shape[-1])] for b in range(x.shape[0])])


def global_max_pool(x: np.ndarray) -> np.ndarray:
    """``(N, *spatial, C) → (N, C)``: the max over every spatial position."""
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape(x.shape[0], -1, x.shape[-1])
    return np.array([[max(flat[b, :, c]) for c in range(x.shape[-1])] for b in range(x.shape[0])])


def adaptive_bins(size: int, out: int) -> list[tuple[int, int]]:
    """torch's adaptive bins: bin ``i`` is ``[floor(i·I/O), ceil((i+1)·I/O))``."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


def _adaptive(x: np.ndarray, output_size, reduce: Callable[[np.ndarray], float]) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    n = x.ndim - 2
    outs = [x.shape[1 + a] if o is None else o for a, o in enumerate(_per_dim(output_size, n))]
    bins = [adaptive_bins(x.shape[1 + a], outs[a]) for a in range(n)]
    y = np.zeros((x.shape[0], *outs, x.shape[-1]))
    for o in itertools.product(*(range(v) for v in outs)):
        box = tuple(slice(*bins[a][o[a]]) for a in range(n))
        for b in range(x.shape[0]):
            for c in range(x.shape[-1]):
                y[(b, *o, c)] = reduce(x[(b, *box, c)])
    return y


def adaptive_avg_pool(x: np.ndarray, output_size: int | Sequence[int | None]) -> np.ndarray:
    """Mean over each of torch's adaptive bins (see :func:`adaptive_bins`)."""
    return _adaptive(x, output_size, lambda v: v.sum() / v.size)


def adaptive_max_pool(x: np.ndarray, output_size: int | Sequence[int | None]) -> np.ndarray:
    """Max over each of torch's adaptive bins (see :func:`adaptive_bins`)."""
    return _adaptive(x, output_size, lambda v: v.max())
