"""Convolution and transposed convolution on channels-last arrays, for 1, 2 and 3 spatial dims.

Shapes (``n`` spatial dims): ``x (N, *spatial, C_in)``; ``conv`` kernel ``(*K, C_in // groups, C_out)``
(HWIO); ``conv_transpose`` kernel ``(*K, C_in, C_out // groups)``; bias ``(C_out,)``.
Group ``g`` reads input channels ``[g·C_in/G, (g+1)·C_in/G)`` and writes output channels
``[g·C_out/G, (g+1)·C_out/G)``, as torch and XLA do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from jcnn._types import Array, IntOrSeq, PaddingLike
from jcnn.ops.conv_grad import conv_matmul_grad
from jcnn.ops.conv_grad import conv_xla as _conv_xla
from jcnn.ops.conv_grad import dimension_numbers as _dimension_numbers
from jcnn.ops.conv_grad import taps as _taps
from jcnn.ops.padding import PADDING_MODES, Pairs, as_tuple, effective_kernel, is_int, normalize_padding, pad_spatial
from jcnn.ops.shapes import output_size

_ConvImpl = Callable[[Array, Array, tuple[int, ...], Pairs, tuple[int, ...], int], Array]
"""``(x, kernel, strides, pairs, dilation, groups) -> y``: one convolution algorithm."""

ALGORITHMS = ("auto", "xla", "im2col", "direct", "spectral", "matmul_grad")
"""The lowerings :func:`conv` accepts as ``algorithm``."""


def _check_inputs(op: str, x: Array, kernel: Array, groups: int, what_kernel: str) -> int:
    """Check the ranks of ``x`` and ``kernel`` and ``groups``; return the number of spatial dims."""
    if x.ndim not in (3, 4, 5):
        raise ValueError(
            f"{op}: x must be channels-last (N, *spatial, C) with 1, 2 or 3 spatial dims "
            f"(rank 3, 4 or 5), got shape {tuple(x.shape)}"
        )
    n = x.ndim - 2
    if kernel.ndim != n + 2:
        raise ValueError(
            f"{op}: kernel must have rank {n + 2} {what_kernel} for an input with {n} spatial dim(s) "
            f"{tuple(x.shape)}, got kernel shape {tuple(kernel.shape)}"
        )
    if not is_int(groups) or groups < 1:
        raise ValueError(f"{op}: groups must be an int >= 1, got {groups!r}")
    return n


def _check_bias(op: str, bias: Array | None, c_out: int) -> None:
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise ValueError(f"{op}: bias must have shape (C_out,) = ({c_out},), got {tuple(bias.shape)}")


def _promote(x: Array, kernel: Array, bias: Array | None) -> tuple[Array, Array, Array | None]:
    dtype = jnp.promote_types(x.dtype, kernel.dtype)
    return x.astype(dtype), kernel.astype(dtype), None if bias is None else bias.astype(dtype)


def _conv_im2col(
    x: Array, kernel: Array, strides: tuple[int, ...], pairs: Pairs, dilation: tuple[int, ...], groups: int
) -> Array:
    """The block view (docs/convolution.md): every output pixel is one patch block ``(*K, C_in)`` dotted with the kernel
    block ``(*K, C_in, C_out)``. Patches are strided slices (one per kernel offset); groups are a batch
    dim of a single ``dot_general``."""
    n = x.ndim - 2
    x = pad_spatial(x, pairs)
    ksize = kernel.shape[:n]
    out = output_size(x.shape[1:-1], ksize, strides, 0, dilation)
    batch = x.shape[0]
    patches = [tap for _, tap in _taps(x, ksize, strides, dilation)]
    cg, c_out = kernel.shape[-2], kernel.shape[-1]
    # (N, *O, prod K, G, C_in/G) · (prod K, C_in/G, G, C_out/G) → (G, N, *O, C_out/G)
    lhs = jnp.stack(patches, axis=n + 1).reshape(batch, *out, len(patches), groups, cg)
    rhs = kernel.reshape(len(patches), cg, groups, c_out // groups)
    y = lax.dot_general(lhs, rhs, (((n + 1, n + 3), (0, 1)), ((n + 2,), (2,))))
    return jnp.moveaxis(y, 0, -2).reshape(batch, *out, c_out)


def _conv_direct(
    x: Array, kernel: Array, strides: tuple[int, ...], pairs: Pairs, dilation: tuple[int, ...], groups: int
) -> Array:
    """Direct summation over kernel taps, ``O = Σ_m slice_m(I) ⊛ K[m]``: for a depthwise conv
    (``groups == C_in``) each tap is an elementwise product with ``K[m, 0, :]`` (output channel ``o``
    reads input channel ``o // (C_out/C_in)``), so the whole conv and its gradients fuse into a few
    elementwise loops; otherwise each tap is a ``dot_general`` over the group's channels. Half-precision
    inputs accumulate in float32."""
    n = x.ndim - 2
    ksize = tuple(kernel.shape[:n])
    acc = jnp.promote_types(x.dtype, jnp.float32)
    xp = pad_spatial(x, pairs).astype(acc)
    w = kernel.astype(acc)
    c_in, c_out = x.shape[-1], kernel.shape[-1]
    depthwise = groups == c_in
    if depthwise and c_out != c_in:
        xp = jnp.repeat(xp, c_out // c_in, axis=-1)
    cg = kernel.shape[-2]
    y: Array | None = None
    for offset, tap in _taps(xp, ksize, strides, dilation):
        if depthwise:
            term = tap * w[offset][0]
        else:
            # (N, *O, G, C_in/G) · (C_in/G, G, C_out/G) → (G, N, *O, C_out/G)
            lhs = tap.reshape(*tap.shape[:-1], groups, cg)
            rhs = w[offset].reshape(cg, groups, c_out // groups)
            term = jnp.moveaxis(lax.dot_general(lhs, rhs, (((n + 2,), (0,)), ((n + 1,), (1,)))), 0, -2)
            term = term.reshape(*tap.shape[:-1], c_out)
        y = term if y is None else y + term
    assert y is not None  # a kernel has at least one tap
    return y.astype(x.dtype)


def _conv_spectral(
    x: Array, kernel: Array, strides: tuple[int, ...], pairs: Pairs, dilation: tuple[int, ...], groups: int
) -> Array:
    """Cross-correlation through the spectrum: ``O = irfftn(rfftn(I) · conj(rfftn(K)))`` on the padded
    input's grid (its first ``I − D·(K−1)`` positions per dim have no wrap-around), summed over each
    group's input channels per frequency, then subsampled by the stride. The kernel is dilated by
    inserting zeros. Computed in at least float32 (XLA's FFT has no half precision)."""
    n = x.ndim - 2
    acc = jnp.promote_types(x.dtype, jnp.float32)
    xp = pad_spatial(x, pairs).astype(acc)
    w = kernel.astype(acc)
    if any(d > 1 for d in dilation):
        zero = jnp.zeros((), acc)
        w = lax.pad(w, zero, tuple((0, 0, d - 1) for d in dilation) + ((0, 0, 0), (0, 0, 0)))
    grid = xp.shape[1:-1]
    axes = tuple(range(1, n + 1))
    fx = jnp.fft.rfftn(xp, s=grid, axes=axes)
    fw = jnp.conj(jnp.fft.rfftn(w, s=grid, axes=tuple(range(n))))
    cg, c_out = kernel.shape[-2], kernel.shape[-1]
    fx = fx.reshape(*fx.shape[:-1], groups, cg)
    fw = fw.reshape(*fw.shape[:-2], cg, groups, c_out // groups)
    prod = jnp.einsum("n...gc,...cgk->n...gk", fx, fw).reshape(*fx.shape[:-2], c_out)
    full = jnp.fft.irfftn(prod, s=grid, axes=axes)
    out = output_size(grid, w.shape[:n], strides, 0, 1)
    limit = (full.shape[0],) + tuple((o - 1) * s + 1 for o, s in zip(out, strides)) + (c_out,)
    return lax.slice(full, (0,) * (n + 2), limit, (1,) + strides + (1,)).astype(x.dtype)


def _auto_algorithm(
    x: Array, kernel: Array, out: tuple[int, ...], strides: tuple[int, ...], dilation: tuple[int, ...], groups: int
) -> str:
    """The lowering measured fastest for the backend and shape (benchmarks/CONV.md, PROFILE.md). On CPU:

    - depthwise (``groups == C_in``): ``"direct"``, 4–30× faster forward+backward than XLA's grouped conv;
    - a 1×1 kernel, or at most 4 output positions (ResNet's last stages on small images): ``"im2col"``,
      one matmul; XLA's conv measured 1.7–18× slower there;
    - stride 1, no dilation, ≥ 5 taps per dim, ``C_in·C_out ≤ 128`` and a batch of ≥ 8 (LeNet-5 training):
      ``"spectral"`` (FFT); at batch 1 the transforms cost more than they save;
    - any other ungrouped conv: ``"matmul_grad"``, XLA's convolution with the kernel gradient as matmuls
      (XLA's kernel-gradient convolution measured 1.5–4× slower);
    - otherwise, and on every other backend, ``"xla"``.
    """
    if jax.default_backend() != "cpu":
        return "xla"
    n = x.ndim - 2
    c_in, c_out = x.shape[-1], kernel.shape[-1]
    ksize = kernel.shape[:n]
    if groups > 1 and groups == c_in:
        return "direct"
    if groups == 1 and (all(k == 1 for k in ksize) or math.prod(out) <= 4):
        return "im2col"
    if (
        groups == 1
        and all(s == 1 for s in strides)
        and all(d == 1 for d in dilation)
        and all(k >= 5 for k in ksize)
        and c_in * c_out <= 128
        and isinstance(x.shape[0], int)
        and x.shape[0] >= 8
    ):
        return "spectral"
    if groups == 1:
        return "matmul_grad"
    return "xla"


def conv(
    x: Array,
    kernel: Array,
    bias: Array | None = None,
    *,
    stride: IntOrSeq = 1,
    padding: PaddingLike = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
    flip: bool = False,
    padding_mode: str = "zeros",
    algorithm: str = "auto",
) -> Array:
    """N-d convolution of a channels-last batch, as ``torch.nn.functional.conv{1,2,3}d``.

    ``x (N, *I, C_in)``, ``kernel (*K, C_in/groups, C_out)``, ``bias (C_out,)`` → ``(N, *O, C_out)`` with
    ``O = floor((I + P_low + P_high − D·(K − 1) − 1)/S) + 1``. Computes the cross-correlation
    ``O[i, j, c] = Σ_{m, n, k} I[S·i + D·m, S·j + D·n, k]·K[m, n, k, c] + B[c]`` of the padded input
    (docs/convolution.md: ``O[i,j] = Σ I[i+m, j+n]·K[m,n] + B``); ``flip=True`` reverses the kernel's spatial axes,
    giving the true convolution ``Σ I[i−m, j−n]·K[m,n]``. ``padding`` takes every docs/design.md §2 form,
    filled per ``padding_mode`` (``zeros | reflect | replicate | circular``). Computation and output are
    in ``promote_types(x.dtype, kernel.dtype)``.

    ``algorithm``: ``"xla"`` (``lax.conv_general_dilated``), ``"im2col"`` (strided patch slices and one
    ``dot_general``), ``"direct"`` (a sum over kernel taps of strided slices times the tap: elementwise
    for depthwise convs, one ``dot_general`` per tap otherwise), ``"spectral"`` (products of FFT spectra),
    ``"matmul_grad"`` (XLA's forward pass and input gradient, the kernel gradient as per-tap matmuls:
    :mod:`jcnn.ops.conv_grad`), or ``"auto"``: on CPU ``"direct"`` for depthwise convs, ``"im2col"`` for
    1×1 kernels and outputs of at most 4 positions, ``"spectral"`` for stride-1 undilated convs with ≥ 5
    taps per dim, ``C_in·C_out ≤ 128`` and a batch of ≥ 8, ``"matmul_grad"`` for other ungrouped convs,
    ``"xla"`` otherwise and on other backends (benchmarks/CONV.md). ``"matmul_grad"`` (so ``"auto"`` on
    CPU, mostly) is a ``jax.custom_vjp``: ``jax.grad`` works, ``jax.jvp`` raises; use ``"xla"`` for
    forward-mode differentiation.
    """
    op = "conv"
    x, kernel = jnp.asarray(x), jnp.asarray(kernel)
    bias = None if bias is None else jnp.asarray(bias)
    n = _check_inputs(op, x, kernel, groups, "(*spatial, C_in/groups, C_out)")
    groups = int(groups)
    if algorithm not in ALGORITHMS:
        raise ValueError(f"{op}: unknown algorithm {algorithm!r}; expected one of {ALGORITHMS}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"{op}: unknown padding_mode {padding_mode!r}; expected one of {PADDING_MODES}")
    c_in, c_out = x.shape[-1], kernel.shape[-1]
    if c_in % groups or c_out % groups:
        raise ValueError(f"{op}: groups={groups} must divide both C_in={c_in} and C_out={c_out}")
    if kernel.shape[-2] * groups != c_in:
        raise ValueError(
            f"{op}: channel mismatch: x has C_in={c_in} channels but kernel {tuple(kernel.shape)} expects "
            f"kernel.shape[-2]·groups = {kernel.shape[-2]}·{groups} = {kernel.shape[-2] * groups}"
        )
    _check_bias(op, bias, c_out)
    strides = as_tuple(stride, n, "stride", op)
    dil = as_tuple(dilation, n, "dilation", op)
    ksize = tuple(kernel.shape[:n])
    pairs = normalize_padding(
        padding, n, op, input_spatial=x.shape[1:-1], window=effective_kernel(ksize, dil), stride=strides
    )
    try:
        out = output_size(x.shape[1:-1], ksize, strides, pairs, dil)
    except ValueError as err:
        raise ValueError(f"{op}: input {tuple(x.shape)} with kernel {tuple(kernel.shape)}: {err}") from None

    x, kernel, bias = _promote(x, kernel, bias)
    if flip:
        kernel = lax.rev(kernel, tuple(range(n)))
    if padding_mode != "zeros":
        x = pad_spatial(x, pairs, padding_mode, op=op)
        pairs = ((0, 0),) * n
    if algorithm == "auto":
        algorithm = _auto_algorithm(x, kernel, out, strides, dil, groups)
    impls: dict[str, _ConvImpl] = {
        "xla": _conv_xla,
        "im2col": _conv_im2col,
        "direct": _conv_direct,
        "spectral": _conv_spectral,
        "matmul_grad": conv_matmul_grad,
    }
    y = impls[algorithm](x, kernel, strides, pairs, dil, groups)
    return y if bias is None else y + bias


def conv_transpose(
    x: Array,
    kernel: Array,
    bias: Array | None = None,
    *,
    stride: IntOrSeq = 1,
    padding: IntOrSeq | Sequence[tuple[int, int]] = 0,
    output_padding: IntOrSeq = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
) -> Array:
    """Transposed convolution, as ``torch.nn.functional.conv_transpose{1,2,3}d`` (channels-last).

    ``x (N, *I, C_in)``, ``kernel (*K, C_in, C_out/groups)``, ``bias (C_out,)`` → ``(N, *O, C_out)`` with
    ``O = (I − 1)·S − P_low − P_high + D·(K − 1) + output_padding + 1`` (``2P`` for an int padding).
    Scatter form: each input pixel adds ``x[i]·K[m]`` to output ``S·i + D·m − P_low``. It is the gradient
    of ``conv`` w.r.t. its input, computed as a ``conv`` of the stride-dilated input with the flipped
    kernel, padded ``D·(K − 1) − P_low`` low and ``D·(K − 1) − P_high + output_padding`` high.
    ``output_padding`` must be smaller than ``stride`` or ``dilation`` (torch's rule); ``padding`` is an
    int, one int per dim or ``(low, high)`` pairs (no ``"SAME"``/``"VALID"``).
    """
    op = "conv_transpose"
    x, kernel = jnp.asarray(x), jnp.asarray(kernel)
    bias = None if bias is None else jnp.asarray(bias)
    n = _check_inputs(op, x, kernel, groups, "(*spatial, C_in, C_out/groups)")
    groups = int(groups)
    c_in = x.shape[-1]
    if kernel.shape[-2] != c_in:
        raise ValueError(
            f"{op}: channel mismatch: x has C_in={c_in} channels but kernel {tuple(kernel.shape)} has "
            f"kernel.shape[-2]={kernel.shape[-2]}"
        )
    if c_in % groups:
        raise ValueError(f"{op}: groups={groups} must divide C_in={c_in}")
    c_out = kernel.shape[-1] * groups
    _check_bias(op, bias, c_out)
    if isinstance(padding, str):
        raise ValueError(
            f"{op}: padding must be an int, one int per spatial dim or (low, high) pairs, got {padding!r}; "
            "'SAME'/'VALID' are not defined for a transposed convolution"
        )
    pairs = normalize_padding(padding, n, op)
    strides = as_tuple(stride, n, "stride", op)
    dil = as_tuple(dilation, n, "dilation", op)
    out_pad = as_tuple(output_padding, n, "output_padding", op, minimum=0)
    for o, s, d in zip(out_pad, strides, dil):
        if o >= max(s, d):
            raise ValueError(
                f"{op}: output_padding must be smaller than either stride or dilation, got "
                f"output_padding={output_padding!r}, stride={stride!r}, dilation={dilation!r}"
            )
    ksize = tuple(kernel.shape[:n])
    for i, k, s, (lo, hi), d, o in zip(x.shape[1:-1], ksize, strides, pairs, dil, out_pad):
        size = (i - 1) * s - lo - hi + d * (k - 1) + o + 1
        if size < 1:
            raise ValueError(
                f"{op}: non-positive output size: (I - 1)*S - P_low - P_high + D*(K - 1) + "
                f"output_padding + 1 with I={i}, S={s}, P_low={lo}, P_high={hi}, D={d}, K={k}, "
                f"output_padding={o} gives {size}; reduce the padding"
            )

    x, kernel, bias = _promote(x, kernel, bias)
    cig = c_in // groups
    # (*K, G·C_in/G, C_out/G) → (*K, C_in/G, G·C_out/G): the layout feature_group_count expects.
    w = kernel.reshape(*ksize, groups, cig, c_out // groups)
    w = jnp.swapaxes(w, n, n + 1).reshape(*ksize, cig, c_out)
    w = lax.rev(w, tuple(range(n)))
    conv_pad = tuple((d * (k - 1) - lo, d * (k - 1) - hi + o) for k, d, (lo, hi), o in zip(ksize, dil, pairs, out_pad))
    y = lax.conv_general_dilated(
        x,
        w,
        window_strides=(1,) * n,
        padding=conv_pad,
        lhs_dilation=strides,
        rhs_dilation=dil,
        dimension_numbers=_dimension_numbers(n),
        feature_group_count=groups,
    )
    return y if bias is None else y + bias
