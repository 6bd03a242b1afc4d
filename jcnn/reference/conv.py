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
from collections.abc import Callable, Iterable, Sequence
from typing import Literal, Union

import numpy as np
from numpy.typing import ArrayLike

from jcnn._types import FloatArray, IntOrSeq

PaddingArg = Union[int, Sequence[int], Sequence[Sequence[int]]]
"""An int, one int per spatial dim, or one ``(low, high)`` pair per dim."""
_Index = tuple[int, ...]
_TapIndex = Callable[[_Index, _Index, _Index, _Index, _Index], _Index]
"""``(i, m, ksize, stride, dilation)`` → the padded-input position that tap ``m`` of output ``i`` reads."""
_Cells = tuple[Union[int, slice], ...]
_NpMode = Literal["constant", "reflect", "edge", "wrap"]
_NP_MODES: dict[str, _NpMode] = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


# A scalar is told from a sequence by iterability: ints, floats and NumPy scalars are not iterable (the
# split np.isscalar makes for these arguments), and the type checker narrows on it.
def _tuple(value: IntOrSeq, n: int) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, Iterable) else (int(value),) * n


def _pairs(padding: PaddingArg, n: int) -> list[tuple[int, int]]:
    if not isinstance(padding, Iterable):
        return [(int(padding), int(padding))] * n
    return [(int(p[0]), int(p[1])) if isinstance(p, Iterable) else (int(p), int(p)) for p in padding]


def _prepare(
    x: ArrayLike, kernel: ArrayLike, padding: PaddingArg, stride: IntOrSeq, dilation: IntOrSeq, padding_mode: str
) -> tuple[FloatArray, FloatArray, int, tuple[int, ...], tuple[int, ...]]:
    xa = np.asarray(x, dtype=np.float64)
    n = xa.ndim - 2
    pad = [(0, 0)] + _pairs(padding, n) + [(0, 0)]
    xp = np.pad(xa, pad, mode=_NP_MODES[padding_mode])
    return xp, np.asarray(kernel, dtype=np.float64), n, _tuple(stride, n), _tuple(dilation, n)


def _sum_of_blocks(
    x: ArrayLike,
    kernel: ArrayLike,
    bias: ArrayLike | None,
    padding: PaddingArg,
    stride: IntOrSeq,
    dilation: IntOrSeq,
    groups: int,
    padding_mode: str,
    tap_index: _TapIndex,
) -> FloatArray:
    """``O[b, i, c] = Σ_m Σ_k P[b, tap_index(i, m), k]·K[m, k, c] + B[c]`` over the group's channels."""
    xp, w, n, strides, dilations = _prepare(x, kernel, padding, stride, dilation, padding_mode)
    ksize = w.shape[:n]
    out_size = tuple((p - d * (k - 1) - 1) // s + 1 for p, k, s, d in zip(xp.shape[1:-1], ksize, strides, dilations))
    c_out = w.shape[-1]
    cig, cog = w.shape[-2], c_out // groups
    out = np.zeros((xp.shape[0], *out_size, c_out))
    for i in itertools.product(*(range(o) for o in out_size)):
        for m in itertools.product(*(range(k) for k in ksize)):
            src = tap_index(i, m, ksize, strides, dilations)
            for g in range(groups):
                src_cells: _Cells = (slice(None), *src, slice(g * cig, (g + 1) * cig))
                out_cells: _Cells = (slice(None), *i, slice(g * cog, (g + 1) * cog))
                out[out_cells] += xp[src_cells] @ w[m][:, g * cog : (g + 1) * cog]  # (N, C_in/G) @ (C_in/G, C_out/G)
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64)
    return out


def _plus(i: _Index, m: _Index, ksize: _Index, stride: _Index, dilation: _Index) -> _Index:
    return tuple(s * ii + d * mm for ii, mm, s, d in zip(i, m, stride, dilation))


def _minus(i: _Index, m: _Index, ksize: _Index, stride: _Index, dilation: _Index) -> _Index:
    # I[i' − m] with i' = S·i + D·(K − 1) the window's last position, so every tap is in range.
    return tuple(s * ii + d * (k - 1) - d * mm for ii, mm, k, s, d in zip(i, m, ksize, stride, dilation))


def correlate(
    x: ArrayLike,
    kernel: ArrayLike,
    bias: ArrayLike | None = None,
    stride: int | Sequence[int] = 1,
    padding: PaddingArg = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> FloatArray:
    """Cross-correlation ``O[i] = Σ_m I[S·i + D·m]·K[m] + B`` of the padded input (1/2/3-D, float64).

    ``x (N, *I, C_in)``, ``kernel (*K, C_in/groups, C_out)``, ``bias (C_out,)`` → ``(N, *O, C_out)``;
    ``padding`` is an int, one int per dim or ``(low, high)`` pairs, filled per ``padding_mode``.
    """
    return _sum_of_blocks(x, kernel, bias, padding, stride, dilation, groups, padding_mode, _plus)


def convolve(
    x: ArrayLike,
    kernel: ArrayLike,
    bias: ArrayLike | None = None,
    stride: int | Sequence[int] = 1,
    padding: PaddingArg = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> FloatArray:
    """True convolution ``O[i] = Σ_m I[i' − D·m]·K[m] + B``, ``i' = S·i + D·(K − 1)``, of the padded input.

    Same shapes and arguments as ``correlate``; equal to ``correlate`` with the kernel reversed in space.
    """
    return _sum_of_blocks(x, kernel, bias, padding, stride, dilation, groups, padding_mode, _minus)


def conv_transpose(
    x: ArrayLike,
    kernel: ArrayLike,
    bias: ArrayLike | None = None,
    stride: int | Sequence[int] = 1,
    padding: PaddingArg = 0,
    output_padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> FloatArray:
    """Transposed convolution by scattering: input pixel ``i`` adds ``x[i]·K[m]`` to output ``S·i + D·m``.

    ``x (N, *I, C_in)``, ``kernel (*K, C_in, C_out/groups)`` → ``(N, *O, C_out)`` with
    ``O = (I − 1)·S − P_low − P_high + D·(K − 1) + output_padding + 1``: the full scatter of length
    ``(I − 1)·S + D·(K − 1) + 1`` is extended by ``output_padding`` zeros, then ``P_low``/``P_high``
    are cropped.
    """
    xa = np.asarray(x, dtype=np.float64)
    w = np.asarray(kernel, dtype=np.float64)
    n = xa.ndim - 2
    strides, dilations = _tuple(stride, n), _tuple(dilation, n)
    out_pad, pairs = _tuple(output_padding, n), _pairs(padding, n)
    ksize = w.shape[:n]
    c_in, cog = w.shape[-2], w.shape[-1]
    cig = c_in // groups
    full = tuple(
        (i - 1) * s + d * (k - 1) + 1 + o for i, k, s, d, o in zip(xa.shape[1:-1], ksize, strides, dilations, out_pad)
    )
    out = np.zeros((xa.shape[0], *full, cog * groups))
    for i in itertools.product(*(range(s) for s in xa.shape[1:-1])):
        for m in itertools.product(*(range(k) for k in ksize)):
            dst = _plus(i, m, ksize, strides, dilations)
            for g in range(groups):
                in_cells: _Cells = (slice(None), *i, slice(g * cig, (g + 1) * cig))
                dst_cells: _Cells = (slice(None), *dst, slice(g * cog, (g + 1) * cog))
                out[dst_cells] += xa[in_cells] @ w[m][g * cig : (g + 1) * cig]  # (N, C_in/G) @ (C_in/G, C_out/G)
    crop = (slice(None), *(slice(lo, f - hi) for (lo, hi), f in zip(pairs, full)), slice(None))
    out = out[crop]
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64)
    return out
