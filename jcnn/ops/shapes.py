"""The output-size formula (docs/convolution.md), generalised with dilation, asymmetric padding and ceil mode."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union, cast, overload

from jcnn._types import PaddingLike
from jcnn.ops.padding import as_tuple, effective_kernel, is_int, normalize_padding

IntOrSeq = Union[int, Sequence[int]]
"""One int for every spatial dim, or one per dim."""


def _one(i: int, k: int, s: int, lo: int, hi: int, d: int, ceil_mode: bool) -> int:
    span = i + lo + hi - d * (k - 1) - 1
    if not ceil_mode:
        out = span // s + 1
    else:
        # torch: round up, then drop a last window that would start in the high padding. A window
        # larger than the padded input can still give one output here, as in torch.
        out = -(-span // s) + 1
        if (out - 1) * s >= i + lo:
            out -= 1
    if out <= 0:
        rounding = "ceil" if ceil_mode else "floor"
        raise ValueError(
            f"output_size: non-positive output size: {rounding}((I + P_low + P_high - D*(K - 1) - 1)/S) + 1 "
            f"with I={i}, P_low={lo}, P_high={hi}, D={d}, K={k}, S={s} gives "
            f"{rounding}(({i} + {lo} + {hi} - {d}*({k} - 1) - 1)/{s}) + 1 = {out} <= 0; "
            "the (dilated) kernel is larger than the padded input"
        )
    return out


@overload
def output_size(
    input_size: int, kernel: int, stride: int = 1, padding: PaddingLike = 0, dilation: int = 1, ceil_mode: bool = False
) -> int: ...
@overload
def output_size(
    input_size: Sequence[int],
    kernel: IntOrSeq,
    stride: IntOrSeq = 1,
    padding: PaddingLike = 0,
    dilation: IntOrSeq = 1,
    ceil_mode: bool = False,
) -> tuple[int, ...]: ...


def output_size(
    input_size: int | Sequence[int],
    kernel: IntOrSeq,
    stride: IntOrSeq = 1,
    padding: PaddingLike = 0,
    dilation: IntOrSeq = 1,
    ceil_mode: bool = False,
) -> int | tuple[int, ...]:
    """``O = floor((I + 2P − D·(K − 1) − 1)/S) + 1`` (docs/convolution.md; ``(I + 2P − K)/S + 1`` for D = 1).

    Scalar ``input_size`` → int; a sequence (one entry per spatial dim) → tuple, with the other
    arguments given once or per dim. ``padding`` takes every form of docs/design.md §2 ((low, high) pairs
    add ``P_low + P_high`` instead of ``2P``; "SAME" gives ``ceil(I/S)``). ``ceil_mode`` rounds up as
    torch does, dropping a last window that would start in the high padding. A non-positive result
    raises ``ValueError`` naming every term.
    """
    scalar = is_int(input_size)  # a Python or NumPy integer; is_int is a plain bool, so the casts name the case
    sizes = (int(cast(int, input_size)),) if scalar else tuple(int(v) for v in cast(Sequence[int], input_size))
    n = len(sizes)
    k = as_tuple(kernel, n, "kernel", "output_size")
    s = as_tuple(stride, n, "stride", "output_size")
    d = as_tuple(dilation, n, "dilation", "output_size")
    for i in sizes:
        if i < 1:
            raise ValueError(f"output_size: input size must be >= 1, got {input_size!r}")
    if scalar and isinstance(padding, (tuple, list)) and len(padding) == 2 and all(is_int(p) for p in padding):
        padding = (tuple(padding),)
    pairs = normalize_padding(padding, n, "output_size", input_spatial=sizes, window=effective_kernel(k, d), stride=s)
    out = tuple(_one(i, kk, ss, lo, hi, dd, ceil_mode) for i, kk, ss, (lo, hi), dd in zip(sizes, k, s, pairs, d))
    return out[0] if scalar else out
