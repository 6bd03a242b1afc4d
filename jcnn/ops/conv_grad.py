"""A convolution whose backward pass is written out: ``conv(..., algorithm="matmul_grad")``.

The forward pass and the input gradient are XLA's convolution (``lax.conv_general_dilated`` and its
transpose), which XLA's CPU backend runs near its matmul rate. XLA computes the kernel gradient as one
more convolution whose window is the whole feature map and whose output is the ``K`` taps: the shape a
convolution library is worst at (benchmarks/PROFILE.md: about half of a ResNet-18 training step at 224²).
Here it is matmuls instead, from the formula (``n`` spatial dims, ``x_p`` the padded input,
``g = ∂L/∂y``)::

    ∂L/∂K[m, c, o] = Σ_{b, i} x_p[b, S·i + D·m, c] · g[b, i, o]   for every tap m of the kernel

one ``gᵀ·x_m`` product per tap, where ``x_m`` is the strided slice of ``x_p`` that tap ``m`` reads, and
``g`` is transposed once for all taps. Over a batch of several images the products run over chunks of
the batch (``lax.scan``), so that each chunk's slices are still in cache when they are multiplied. With
few input channels or small maps the taps are stacked instead (im2col, transposed) and multiplied at
once. Groups are a batch dimension of every product. Half-precision inputs accumulate in float32.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator

import jax
import jax.numpy as jnp
from jax import lax

from jcnn._types import Array
from jcnn.ops.padding import Pairs, pad_spatial
from jcnn.ops.shapes import output_size

_SPATIAL_NAMES = {1: "W", 2: "HW", 3: "DHW"}


def dimension_numbers(n: int) -> tuple[str, str, str]:
    """Channels-last dimension numbers for ``n`` spatial dims, e.g. ``("NHWC", "HWIO", "NHWC")``."""
    s = _SPATIAL_NAMES[n]
    return f"N{s}C", f"{s}IO", f"N{s}C"


def conv_xla(
    x: Array, kernel: Array, strides: tuple[int, ...], pairs: Pairs, dilation: tuple[int, ...], groups: int
) -> Array:
    """``lax.conv_general_dilated`` on channels-last ``x`` and an HWIO ``kernel``."""
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=strides,
        padding=pairs,
        rhs_dilation=dilation,
        dimension_numbers=dimension_numbers(x.ndim - 2),
        feature_group_count=groups,
    )


def taps(
    x: Array, ksize: tuple[int, ...], strides: tuple[int, ...], dilation: tuple[int, ...], axis: int = 1
) -> Iterator[tuple[tuple[int, ...], Array]]:
    """``(offset, slice)`` per kernel tap: ``x[..., S·i + D·m, ...]`` for every output ``i``, the spatial
    dims of the (padded) ``x`` starting at ``axis``."""
    n = len(ksize)
    spatial = x.shape[axis : axis + n]
    out = output_size(spatial, ksize, strides, 0, dilation)
    for offset in itertools.product(*(range(k) for k in ksize)):
        start = [0] * x.ndim
        limit = list(x.shape)
        step = [1] * x.ndim
        for d, (m, dil, o, s) in enumerate(zip(offset, dilation, out, strides)):
            start[axis + d] = m * dil
            limit[axis + d] = m * dil + (o - 1) * s + 1
            step[axis + d] = s
        yield offset, lax.slice(x, tuple(start), tuple(limit), tuple(step))


def _chunks(batch: int, rows: int) -> int:
    """How many batch chunks the per-tap products run over: 4 (else 2) equal chunks when the batch
    divides and each chunk keeps at least 512 rows (``rows`` = output positions of the whole batch)."""
    for c in (4, 2):
        if batch % c == 0 and rows // c >= 512:
            return c
    return 1


def _stack_taps(c_in_group: int, out_positions: int) -> bool:
    """im2col (taps stacked, one product) for few input channels per group or small maps: measured faster
    there (ResNet's 3-channel 7×7 stem, 7×7 maps), the per-tap products elsewhere (benchmarks/PROFILE.md)."""
    return c_in_group < 16 or out_positions <= 64


def kernel_gradient(
    x: Array,
    g: Array,
    ksize: tuple[int, ...],
    strides: tuple[int, ...],
    pairs: Pairs,
    dilation: tuple[int, ...],
    groups: int,
) -> Array:
    """``∂L/∂K`` ``(*K, C_in/G, C_out)`` of ``conv(x, K)`` given ``g = ∂L/∂y`` ``(N, *O, C_out)``, in float32
    or wider (the caller casts)."""
    acc = jnp.promote_types(x.dtype, jnp.float32)
    batch, out = x.shape[0], g.shape[1:-1]
    c_in, c_out = x.shape[-1], g.shape[-1]
    cg, og = c_in // groups, c_out // groups
    ntaps = math.prod(ksize)
    dims = (((2,), (0,)), ((0,), (1,)))  # gᵀ (G, og, M) · x_m (M, G, cg) -> (G, og, cg)

    if _stack_taps(cg, math.prod(out)):
        # im2col, transposed: xᵀ once (C_in, N, *I), the tap slices stacked (taps, G, cg, N·O), one product.
        xt = jnp.moveaxis(pad_spatial(x, pairs), -1, 0)
        cols = jnp.stack([t for _, t in taps(xt, ksize, strides, dilation, axis=2)])
        cols = cols.reshape(ntaps, groups, cg, -1)
        gm = g.reshape(-1, groups, og)
        dw = lax.dot_general(cols, gm, (((3,), (0,)), ((1,), (1,))), preferred_element_type=acc)
        # (G, taps, cg, og) -> (*K, cg, G·og)
        dw = jnp.transpose(dw, (1, 2, 0, 3))
        return dw.reshape(*ksize, cg, c_out)

    def per_chunk(xc: Array, gc: Array) -> Array:
        xp = pad_spatial(xc, pairs)
        gt = jnp.transpose(gc.reshape(-1, groups, og), (1, 2, 0))
        parts = [
            lax.dot_general(gt, t.reshape(-1, groups, cg), dims, preferred_element_type=acc)
            for _, t in taps(xp, ksize, strides, dilation)
        ]
        return jnp.stack(parts)  # (taps, G, og, cg)

    chunks = _chunks(batch, batch * math.prod(out))
    if chunks == 1:
        dw = per_chunk(x, g)
    else:
        xs = x.reshape(chunks, batch // chunks, *x.shape[1:])
        gs = g.reshape(chunks, batch // chunks, *g.shape[1:])

        def body(total: Array, xg: tuple[Array, Array]) -> tuple[Array, None]:
            return total + per_chunk(*xg), None

        dw, _ = lax.scan(body, jnp.zeros((ntaps, groups, og, cg), acc), (xs, gs))
    # (taps, G, og, cg) -> (*K, cg, G·og)
    return jnp.transpose(dw, (0, 3, 1, 2)).reshape(*ksize, cg, c_out)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def conv_matmul_grad(
    x: Array, kernel: Array, strides: tuple[int, ...], pairs: Pairs, dilation: tuple[int, ...], groups: int
) -> Array:
    """XLA's convolution, differentiated with the kernel gradient of :func:`kernel_gradient` (reverse
    mode; ``jax.jvp`` of it raises, as for every ``custom_vjp``: use ``algorithm="xla"`` there)."""
    return conv_xla(x, kernel, strides, pairs, dilation, groups)


def _fwd(
    x: Array, kernel: Array, strides: tuple[int, ...], pairs: Pairs, dilation: tuple[int, ...], groups: int
) -> tuple[Array, tuple[Array, Array]]:
    return conv_xla(x, kernel, strides, pairs, dilation, groups), (x, kernel)


def _bwd(
    strides: tuple[int, ...],
    pairs: Pairs,
    dilation: tuple[int, ...],
    groups: int,
    residuals: tuple[Array, Array],
    g: Array,
) -> tuple[Array, Array]:
    x, kernel = residuals
    with jax.named_scope("jcnn_conv_d_input"):
        _, vjp = jax.vjp(lambda x_: conv_xla(x_, kernel, strides, pairs, dilation, groups), x)
        (dx,) = vjp(g)
    with jax.named_scope("jcnn_conv_d_kernel"):
        ksize = tuple(kernel.shape[: x.ndim - 2])
        dk = kernel_gradient(x, g, ksize, strides, pairs, dilation, groups).astype(kernel.dtype)
    return dx, dk


conv_matmul_grad.defvjp(_fwd, _bwd)
