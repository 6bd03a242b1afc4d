"""Convolution straight from the formulas (docs/convolution.md), NumPy float64, loops over output pixels and kernel
offsets. Channels-last: ``x (N, *spatial, C_in)``, kernel ``(*K, C_in/groups, C_out)``.

- ``correlate``: ``O[i,j] = Σ_{m,n} I[i+m, j+n]·K[m,n] + B`` (the textbook's second equation; deep-learning
  "convolution").
- ``convolve``: ``O[i,j] = Σ_{m,n} I[i−m, j−n]·K[m,n] + B`` (the first equation; the true convolution).
- ``conv_transpose``: the scatter form, kernel ``(*K, C_in, C_out/groups)``.

Each pixel term is the §1.5 block product: a sum over the kernel offsets and the input channels of
the group. Padding is ``np.pad`` in torch's modes; stride ``S`` and dilation ``D`` place tap ``m`` of
output ``i`` at padded input ``S·i + D·m``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Union

import numpy as np

PaddingArg = Union[int, Sequence[int], Sequence[Sequence[int]]]
"""An int, one int per spatial dim, or one ``(low, high)`` pair per dim."""
_NP_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _tuple(value, n: int) -> tuple[int, ...]:
    return (int(value),) * n if np.isscalar(value) else tuple(int(v) for v in value)


def _pairs(padding: PaddingArg, n: int) -> list[tuple[int, int]]:
    if np.isscalar(padding):
        return [(int(padding), int(padding))] * n
    return [(int(p), int(p)) if np.isscalar(p) else (int(p[0]), int(p[1])) for p in padding]


def _prepare(x, kernel, padding, stride, dilation, padding_mode):
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    n = x.ndim - 2
    pad = [(0, 0)] + _pairs(padding, n) + [(0, 0)]
    xp = np.pad(x, pad, mode=_NP_MODES[padding_mode])
    return xp, kernel, n, _tuple(stride, n), _tuple(dilation, n)


def _sum_of_blocks(x, kernel, bias, padding, stride, dilation, groups, padding_mode, tap_index):
    """``O[b, i, c] = Σ_m Σ_k P[b, tap_index(i, m), k]·K[m, k, c] + B[c]`` over the group's channels."""
    xp, kernel, n, stride, dilation = _prepare(x, kernel, padding, stride, dilation, padding_mode)
    ksize = kernel.shape[:n]
    out_size = tuple((p - d * (k - 1) - 1) // s + 1 for p, k, s, d in zip(xp.shape[1:-1], ksize, stride, dilation))
    c_out = kernel.shape[-1]
    cig, cog = kernel.shape[-2], c_out // groups
    out = np.zeros((xp.shape[0], *out_size, c_out))
    for i in itertools.product(*(range(o) for o in out_size)):
        for m in itertools.product(*(range(k) for k in ksize)):
            src = tap_index(i, m, ksize, stride, dilation)
            for g in range(groups):
                block = xp[(slice(None), *src, slice(g * cig, (g + 1) * cig))]  # (N, C_in/G)
                out[(slice(None), *i, slice(g * cog, (g + 1) * cog))] += block @ kernel[m][:, g * cog : (g + 1) * cog]
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64)
    return out


def _plus(i, m, ksize, stride, dilation):
    return tuple(s * ii + d * mm for ii, mm, s, d in zip(i, m, stride, dilation))


def _minus(i, m, ksize, stride, dilation):
    # I[i' − m] with i' = S·i + D·(K − 1) the window's last position, so every tap is in range.
    return tuple(s * ii + d * (k - 1) - d * mm for ii, mm, k, s, d in zip(i, m, ksize, stride, dilation))


def correlate(
    x,
    kernel,
    bias=None,
    stride: int | Sequence[int] = 1,
    padding: PaddingArg = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Cross-correlation ``O[i] = Σ_m I[S·i + D·m]·K[m] + B`` of the padded input (1/2/3-D, float64).

    ``x (N, *I, C_in)``, ``kernel (*K, C_in/groups, C_out)``, ``bias (C_out,)`` → ``(N, *O, C_out)``;
    ``padding`` is an int, one int per dim or ``(low, high)`` pairs, filled per ``padding_mode``.
    """
    return _sum_of_blocks(x, kernel, bias, padding, stride, dilation, groups, padding_mode, _plus)


def convolve(
    x,
    kernel,
    bias=None,
    stride: int | Sequence[int] = 1,
    padding: PaddingArg = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """True convolution ``O[i] = Σ_m I[i' − D·m]·K[m] + B``, ``i' = S·i + D·(K − 1)``, of the padded input.

    Same shapes and arguments as ``correlate``; equal to ``correlate`` with the kernel reversed in space.
    """
    return _sum_of_blocks(x, kernel, bias, padding, stride, dilation, groups, padding_mode, _minus)


def conv_transpose(
    x,
    kernel,
    bias=None,
    stride: int | Sequence[int] = 1,
    padding: PaddingArg = 0,
    output_padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> np.ndarray:
    """Transposed convolution by scattering: input pixel ``i`` adds ``x[i]·K[m]`` to output ``S·i + D·m``.

    ``x (N, *I, C_in)``, ``kernel (*K, C_in, C_out/groups)`` → ``(N, *O, C_out)`` with
    ``O = (I − 1)·S − P_low − P_high + D·(K − 1) + output_padding + 1``: the full scatter of length
    ``(I − 1)·S + D·(K − 1) + 1`` is extended by ``output_padding`` zeros, then ``P_low``/``P_high``
    are cropped.
    """
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    n = x.ndim - 2
    stride, dilation = _tuple(stride, n), _tuple(dilation, n)
    out_pad, pairs = _tuple(output_padding, n), _pairs(padding, n)
    ksize = kernel.shape[:n]
    c_in, cog = kernel.shape[-2], kernel.shape[-1]
    cig = c_in // groups
    full = tuple(
        (i - 1) * s + d * (k - 1) + 1 + o for i, k, s, d, o in zip(x.shape[1:-1], ksize, stride, dilation, out_pad)
    )
    out = np.zeros((x.shape[0], *full, cog * groups))
    for i in itertools.product(*(range(s) for s in x.shape[1:-1])):
        for m in itertools.product(*(range(k) for k in ksize)):
            dst = _plus(i, m, ksize, stride, dilation)
            for g in range(groups):
                pixel = x[(slice(None), *i, slice(g * cig, (g + 1) * cig))]  # (N, C_in/G)
                out[(slice(None), *dst, slice(g * cog, (g + 1) * cog))] += pixel @ kernel[m][g * cig : (g + 1) * cig]
    crop = tuple(slice(lo, f - hi) for (lo, hi), f in zip(pairs, full))
    out = out[(slice(None), *crop, slice(None))]
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64)
    return out
