"""Convolution layers (docs/convolution.md): ``Conv`` and ``ConvTranspose`` over ``jcnn.ops.conv``, 1/2/3-D.

Shapes are channels-last, ``x (N, *spatial, C_in)``. The spatial rank is ``len(kernel_size)`` when
``kernel_size`` is a sequence, else ``spatial_dims`` (default 2: an int kernel size means a 2-D conv, so
an MNIST batch without its channel axis is an error, not a 1-D conv over 28 channels). Defaults follow PyTorch:
``kaiming_uniform(a=√5)`` kernels (``U(±1/√fan_in)``) and ``U(±1/√fan_in)`` biases. Params are cast to
the input's floating dtype, so a bfloat16 input computes in bfloat16.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import jax.numpy as jnp

from jcnn import initializers as inits
from jcnn._types import Array, IntOrSeq, PaddingLike, Params, PRNGKey, Shape, ShapeTree, State
from jcnn.layers._checks import check_int, check_int_or_seq, check_padding
from jcnn.layers.base import Layer, check_shape, constructor, make_layer, split_key
from jcnn.ops.conv import ALGORITHMS, conv, conv_transpose
from jcnn.ops.padding import PADDING_MODES, as_tuple, normalize_padding
from jcnn.ops.shapes import output_size

_LAYOUTS = {1: "(N, L, C)", 2: "(N, H, W, C)", 3: "(N, D, H, W, C)"}


def spatial_rank(name: str, what: str, size: Any, spatial_dims: int | None) -> int:
    """The spatial rank of a conv/pool layer: ``len(size)`` for a sequence (1, 2 or 3 entries), else
    ``spatial_dims`` (default 2). A sequence and a ``spatial_dims`` that disagree are an error."""
    if spatial_dims is not None and (isinstance(spatial_dims, bool) or spatial_dims not in (1, 2, 3)):
        raise ValueError(f"{name}: spatial_dims must be 1, 2 or 3 (or None), got {spatial_dims!r}")
    if isinstance(size, int) or size is None:
        return 2 if spatial_dims is None else spatial_dims
    n = len(size)
    if n not in (1, 2, 3):
        raise ValueError(f"{name}: {what} needs 1, 2 or 3 entries (one per spatial dim), got {size!r}")
    if spatial_dims is not None and spatial_dims != n:
        raise ValueError(f"{name}: {what}={size!r} has {n} entries but spatial_dims={spatial_dims}")
    return n


def check_rank(name: str, input_shape: Any, n: int, what: str, size: Any) -> Shape:
    """A ``(N, *spatial, C)`` input shape with ``n`` spatial dims; for a rank mismatch with an int size the
    error says how to ask for another rank (and that images need their channel axis)."""
    if (
        isinstance(size, int)
        and isinstance(input_shape, (tuple, list))
        and len(input_shape) != n + 2
        and all(isinstance(d, int) for d in input_shape)
    ):
        shape = tuple(input_shape)
        raise ValueError(
            f"{name}: an int {what}={size} makes a {n}-D layer, which expects an input {_LAYOUTS[n]} of rank "
            f"{n + 2}, got shape {shape} (rank {len(shape)}); for another rank pass {what} as a tuple (e.g. "
            f"{what}={(size,) * max(1, len(shape) - 2)!r}) or spatial_dims=..., and if these are images without "
            f"a channel axis, reshape them to {shape + (1,)}"
        )
    return check_shape(name, input_shape, ndim=n + 2, what=_LAYOUTS[n])


def _compute_dtype(x: Array, param: Any) -> Any:
    return x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else param.dtype


def _check_apply_input(name: str, x: Array, kernel: Array, c_in: int) -> None:
    n = kernel.ndim - 2
    if x.ndim != n + 2:
        raise ValueError(
            f"{name}: expected an input of rank {n + 2} (N, *spatial, C) for its {n}-D kernel "
            f"{tuple(kernel.shape)}, got shape {tuple(x.shape)}"
        )
    if x.shape[-1] != c_in:
        raise ValueError(
            f"{name}: channel mismatch: the layer was initialised for C_in={c_in} input channels "
            f"(kernel {tuple(kernel.shape)}), got an input of shape {tuple(x.shape)}"
        )


def _check_mode_padding(
    name: str, shape: Shape, padding: PaddingLike, mode: str, k: tuple[int, ...], stride: IntOrSeq, dilation: IntOrSeq
) -> None:
    """torch's limits: reflect pads less than the size, circular at most the size (as ``pad_spatial``)."""
    n = len(k)
    strides, dil = as_tuple(stride, n, "stride", name), as_tuple(dilation, n, "dilation", name)
    pairs = normalize_padding(
        padding,
        n,
        name,
        input_spatial=shape[1:-1],
        window=tuple(d * (kk - 1) + 1 for kk, d in zip(k, dil)),
        stride=strides,
    )
    for size, (lo, hi) in zip(shape[1:-1], pairs):
        if (mode == "reflect" and max(lo, hi) >= size) or (mode == "circular" and max(lo, hi) > size):
            need = "< input size" if mode == "reflect" else "<= input size"
            raise ValueError(
                f"{name}: padding_mode={mode!r} needs padding {need}, got padding ({lo}, {hi}) for "
                f"spatial size {size} (input shape {shape})"
            )


@constructor
def Conv(
    features: int,
    kernel_size: IntOrSeq,
    *,
    stride: IntOrSeq = 1,
    padding: PaddingLike = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
    use_bias: bool = True,
    flip: bool = False,
    padding_mode: str = "zeros",
    kernel_init: inits.Initializer | None = None,
    bias_init: inits.Initializer | None = None,
    algorithm: str = "auto",
    spatial_dims: int | None = None,
) -> Layer:
    """N-d convolution layer (``torch.nn.Conv{1,2,3}d``): ``y = conv(x, kernel) + bias``.

    ``x (N, *I, C_in)`` → ``(N, *O, features)``, ``O = floor((I + P_low + P_high − D·(K − 1) − 1)/S) + 1``.
    Params ``kernel (*K, C_in/groups, features)`` and ``bias (features,)``; ``groups`` must divide
    ``C_in`` and ``features``. ``flip=True`` is the true convolution; ``padding`` and ``padding_mode``
    take every form of :func:`jcnn.ops.conv`. Default init: ``U(±1/√fan_in)`` with
    ``fan_in = C_in/groups · prod(K)`` for both kernel and bias. An int ``kernel_size`` is a 2-D conv
    unless ``spatial_dims`` says otherwise. MACs ``N·prod(O)·prod(K)·C_in/groups·features``.
    """
    name = "Conv"
    check_int(name, "features", features, 1)
    check_int_or_seq(name, "kernel_size", kernel_size, 1)
    n = spatial_rank(name, "kernel_size", kernel_size, spatial_dims)
    check_int_or_seq(name, "stride", stride, 1)
    check_int_or_seq(name, "dilation", dilation, 1)
    check_int(name, "groups", groups, 1)
    check_padding(name, padding, strings=True)
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"{name}: unknown padding_mode {padding_mode!r}; expected one of {PADDING_MODES}")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"{name}: unknown algorithm {algorithm!r}; expected one of {ALGORITHMS}")
    if features % groups:
        raise ValueError(f"{name}: groups={groups} must divide features={features}")

    def apply(
        params: Params, state: State, x: Array, *, train: bool, key: PRNGKey | None = None
    ) -> tuple[Array, State]:
        kernel = params["kernel"]
        _check_apply_input(name, x, kernel, kernel.shape[-2] * groups)
        dtype = _compute_dtype(x, kernel)
        bias = params["bias"].astype(dtype) if use_bias else None
        y = conv(
            x.astype(dtype),
            kernel.astype(dtype),
            bias,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            flip=flip,
            padding_mode=padding_mode,
            algorithm=algorithm,
        )
        return y, state

    k = as_tuple(kernel_size, n, "kernel_size", name)

    def shape_rule(input_shape: ShapeTree) -> Shape:
        shape = check_rank(name, input_shape, n, "kernel_size", kernel_size)
        c_in = shape[-1]
        if c_in % groups:
            raise ValueError(
                f"{name}: groups={groups} must divide the input channels C_in={c_in} (input shape {shape})"
            )
        try:
            out = output_size(shape[1:-1], k, stride, padding, dilation)
        except ValueError as err:
            raise ValueError(f"{name}: input shape {shape}: {err}") from None
        if padding_mode in ("reflect", "circular"):
            _check_mode_padding(name, shape, padding, padding_mode, k, stride, dilation)
        return (shape[0], *out, features)

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[Shape, Params, State]:
        out = shape_rule(input_shape)
        c_in = cast(Shape, input_shape)[-1]  # shape_rule checked it is one shape
        fan_in = c_in // groups * math.prod(k)
        k_kernel, k_bias = split_key(key, 2)
        params = {"kernel": (kernel_init or inits.torch_default_kernel())(k_kernel, (*k, c_in // groups, features))}
        if use_bias:
            params["bias"] = (bias_init or inits.fan_in_uniform(fan_in))(k_bias, (features,))
        return out, params, {}

    def macs(input_shape: Shape, output_shape: Shape) -> int:
        return math.prod(output_shape[:-1]) * math.prod(k) * (input_shape[-1] // groups) * features

    return make_layer("Conv", init, apply, shape=shape_rule, macs=macs, host_init=True)


@constructor
def ConvTranspose(
    features: int,
    kernel_size: IntOrSeq,
    *,
    stride: IntOrSeq = 1,
    padding: IntOrSeq | Sequence[tuple[int, int]] = 0,
    output_padding: IntOrSeq = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
    use_bias: bool = True,
    kernel_init: inits.Initializer | None = None,
    bias_init: inits.Initializer | None = None,
    spatial_dims: int | None = None,
) -> Layer:
    """N-d transposed convolution layer (``torch.nn.ConvTranspose{1,2,3}d``), the gradient of ``Conv``
    w.r.t. its input: ``x (N, *I, C_in)`` → ``(N, *O, features)`` with
    ``O = (I − 1)·S − P_low − P_high + D·(K − 1) + output_padding + 1``.

    Params ``kernel (*K, C_in, features/groups)`` and ``bias (features,)``. Default init as torch, whose
    fan_in for a transposed weight ``(C_in, C_out/g, *K)`` comes from its dim 1:
    ``fan_in = features/groups · prod(K)`` for both kernel and bias. An int ``kernel_size`` is 2-D unless
    ``spatial_dims`` says otherwise. MACs ``N·prod(I)·prod(K)·C_in·features/groups``.
    """
    name = "ConvTranspose"
    check_int(name, "features", features, 1)
    check_int_or_seq(name, "kernel_size", kernel_size, 1)
    n = spatial_rank(name, "kernel_size", kernel_size, spatial_dims)
    check_int_or_seq(name, "stride", stride, 1)
    check_int_or_seq(name, "dilation", dilation, 1)
    check_int_or_seq(name, "output_padding", output_padding, 0)
    check_int(name, "groups", groups, 1)
    check_padding(name, padding, strings=False)
    if features % groups:
        raise ValueError(f"{name}: groups={groups} must divide features={features}")

    def apply(
        params: Params, state: State, x: Array, *, train: bool, key: PRNGKey | None = None
    ) -> tuple[Array, State]:
        kernel = params["kernel"]
        _check_apply_input(name, x, kernel, kernel.shape[-2])
        dtype = _compute_dtype(x, kernel)
        bias = params["bias"].astype(dtype) if use_bias else None
        y = conv_transpose(
            x.astype(dtype),
            kernel.astype(dtype),
            bias,
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            dilation=dilation,
            groups=groups,
        )
        return y, state

    k = as_tuple(kernel_size, n, "kernel_size", name)
    strides = as_tuple(stride, n, "stride", name)
    dil = as_tuple(dilation, n, "dilation", name)
    out_pad = as_tuple(output_padding, n, "output_padding", name, minimum=0)
    pairs = normalize_padding(padding, n, name)
    for o, st, d in zip(out_pad, strides, dil):
        if o >= max(st, d):
            raise ValueError(
                f"{name}: output_padding must be smaller than either stride or dilation, got "
                f"output_padding={output_padding!r}, stride={stride!r}, dilation={dilation!r}"
            )

    def shape_rule(input_shape: ShapeTree) -> Shape:
        shape = check_rank(name, input_shape, n, "kernel_size", kernel_size)
        c_in = shape[-1]
        if c_in % groups:
            raise ValueError(
                f"{name}: groups={groups} must divide the input channels C_in={c_in} (input shape {shape})"
            )
        out = []
        for i, kk, st, (lo, hi), d, o in zip(shape[1:-1], k, strides, pairs, dil, out_pad):
            size = (i - 1) * st - lo - hi + d * (kk - 1) + o + 1
            if size < 1:
                raise ValueError(
                    f"{name}: input shape {shape}: non-positive output size: (I - 1)*S - P_low - P_high + "
                    f"D*(K - 1) + output_padding + 1 with I={i}, S={st}, P_low={lo}, P_high={hi}, D={d}, "
                    f"K={kk}, output_padding={o} gives {size}; reduce the padding"
                )
            out.append(size)
        return (shape[0], *out, features)

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[Shape, Params, State]:
        out = shape_rule(input_shape)
        c_in = cast(Shape, input_shape)[-1]  # shape_rule checked it is one shape
        fan_in = features // groups * math.prod(k)
        k_kernel, k_bias = split_key(key, 2)
        kernel_fn = kernel_init or inits.torch_default_kernel(in_axis=-1, out_axis=-2)
        params = {"kernel": kernel_fn(k_kernel, (*k, c_in, features // groups))}
        if use_bias:
            params["bias"] = (bias_init or inits.fan_in_uniform(fan_in))(k_bias, (features,))
        return out, params, {}

    def macs(input_shape: Shape, output_shape: Shape) -> int:
        return math.prod(input_shape[:-1]) * math.prod(k) * input_shape[-1] * (features // groups)

    return make_layer("ConvTranspose", init, apply, shape=shape_rule, macs=macs, host_init=True)
