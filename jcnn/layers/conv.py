"""Convolution layers (seed §1): ``Conv`` and ``ConvTranspose`` over ``jcnn.ops.conv``, 1/2/3-D.

Shapes are channels-last, ``x (N, *spatial, C_in)``. The spatial rank is ``len(kernel_size)`` when
``kernel_size`` is a sequence, else the input's rank − 2 at ``init``. Defaults follow PyTorch:
``kaiming_uniform(a=√5)`` kernels (``U(±1/√fan_in)``) and ``U(±1/√fan_in)`` biases. Params are cast to
the input's floating dtype, so a bfloat16 input computes in bfloat16.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp

from jcnn import initializers as inits
from jcnn._types import Array, IntOrSeq, PaddingLike, Params, PRNGKey, Shape, State
from jcnn.layers._checks import check_int, check_int_or_seq, check_padding
from jcnn.layers.base import Layer, check_shape, infer_output_shape, make_layer
from jcnn.ops.conv import ALGORITHMS, conv, conv_transpose
from jcnn.ops.padding import PADDING_MODES, as_tuple


def _spatial_rank(name: str, kernel_size: IntOrSeq) -> int | None:
    """``len(kernel_size)`` for a sequence (checked to be 1, 2 or 3), ``None`` for an int."""
    check_int_or_seq(name, "kernel_size", kernel_size, 1)
    if isinstance(kernel_size, int):
        return None
    n = len(kernel_size)
    if n not in (1, 2, 3):
        raise ValueError(f"{name}: kernel_size needs 1, 2 or 3 entries (one per spatial dim), got {kernel_size!r}")
    return n


def _input_shape(name: str, input_shape: Any, n: int | None) -> Shape:
    layout = "(N, *spatial, C)"
    if n is None:
        return check_shape(name, input_shape, ndim=(3, 4, 5), what=f"{layout} with 1, 2 or 3 spatial dims")
    return check_shape(name, input_shape, ndim=n + 2, what=f"{layout} with {n} spatial dim(s), from kernel_size")


def _compute_dtype(x: Array, param: Any) -> Any:
    return x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else param.dtype


def _check_apply_input(name: str, x: Array, kernel: Array, c_in: int) -> None:
    n = kernel.ndim - 2
    if x.ndim != n + 2:
        raise ValueError(f"{name}: expected an input of rank {n + 2} (N, *spatial, C) for its {n}-D kernel "
                         f"{tuple(kernel.shape)}, got shape {tuple(x.shape)}")
    if x.shape[-1] != c_in:
        raise ValueError(f"{name}: channel mismatch: the layer was initialised for C_in={c_in} input channels "
                         f"(kernel {tuple(kernel.shape)}), got an input of shape {tuple(x.shape)}")


def _output_shape(name: str, apply: Any, params: Params, shape: Shape) -> Shape:
    try:
        return infer_output_shape(apply, params, {}, shape)
    except ValueError as err:
        raise ValueError(f"{name}: input shape {shape}: {err}") from None


def Conv(features: int, kernel_size: IntOrSeq, *, stride: IntOrSeq = 1, padding: PaddingLike = 0,
         dilation: IntOrSeq = 1, groups: int = 1, use_bias: bool = True, flip: bool = False,
         padding_mode: str = "zeros", kernel_init: inits.Initializer | None = None,
         bias_init: inits.Initializer | None = None, algorithm: str = "auto") -> Layer:
    """N-d convolution layer (``torch.nn.Conv{1,2,3}d``): ``y = conv(x, kernel) + bias``.

    ``x (N, *I, C_in)`` → ``(N, *O, features)``, ``O = floor((I + P_low + P_high − D·(K − 1) − 1)/S) + 1``.
    Params ``kernel (*K, C_in/groups, features)`` and ``bias (features,)``; ``groups`` must divide
    ``C_in`` and ``features``. ``flip=True`` is the true convolution; ``padding`` and ``padding_mode``
    take every form of :func:`jcnn.ops.conv`. Default init: ``U(±1/√fan_in)`` with
    ``fan_in = C_in/groups · prod(K)`` for both kernel and bias.
    """
    name = "Conv"
    check_int(name, "features", features, 1)
    n_fixed = _spatial_rank(name, kernel_size)
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

    def apply(params: Params, state: State, x: Array, *, train: bool,
              key: PRNGKey | None = None) -> tuple[Array, State]:
        kernel = params["kernel"]
        _check_apply_input(name, x, kernel, kernel.shape[-2] * groups)
        dtype = _compute_dtype(x, kernel)
        bias = params["bias"].astype(dtype) if use_bias else None
        y = conv(x.astype(dtype), kernel.astype(dtype), bias, stride=stride, padding=padding,
                 dilation=dilation, groups=groups, flip=flip, padding_mode=padding_mode, algorithm=algorithm)
        return y, state

    def init(key: PRNGKey, input_shape: Shape) -> tuple[Shape, Params, State]:
        shape = _input_shape(name, input_shape, n_fixed)
        n, c_in = len(shape) - 2, shape[-1]
        k = as_tuple(kernel_size, n, "kernel_size", name)
        if c_in % groups:
            raise ValueError(f"{name}: groups={groups} must divide the input channels C_in={c_in} "
                             f"(input shape {shape})")
        fan_in = c_in // groups * math.prod(k)
        k_kernel, k_bias = jax.random.split(key)
        params = {"kernel": (kernel_init or inits.torch_default_kernel())(k_kernel, (*k, c_in // groups, features))}
        if use_bias:
            params["bias"] = (bias_init or inits.fan_in_uniform(fan_in))(k_bias, (features,))
        return _output_shape(name, apply, params, shape), params, {}

    return make_layer("conv", init, apply)


def ConvTranspose(features: int, kernel_size: IntOrSeq, *, stride: IntOrSeq = 1,
                  padding: IntOrSeq | Sequence[tuple[int, int]] = 0, output_padding: IntOrSeq = 0,
                  dilation: IntOrSeq = 1, groups: int = 1, use_bias: bool = True,
                  kernel_init: inits.Initializer | None = None,
                  bias_init: inits.Initializer | None = None) -> Layer:
    """N-d transposed convolution layer (``torch.nn.ConvTranspose{1,2,3}d``), the gradient of ``Conv``
    w.r.t. its input: ``x (N, *I, C_in)`` → ``(N, *O, features)`` with
    ``O = (I − 1)·S − P_low − P_high + D·(K − 1) + output_padding + 1``.

    Params ``kernel (*K, C_in, features/groups)`` and ``bias (features,)``. Default init as torch, whose
    fan_in for a transposed weight ``(C_in, C_out/g, *K)`` comes from its dim 1:
    ``fan_in = features/groups · prod(K)`` for both kernel and bias.
    """
    name = "ConvTranspose"
    check_int(name, "features", features, 1)
    n_fixed = _spatial_rank(name, kernel_size)
    check_int_or_seq(name, "stride", stride, 1)
    check_int_or_seq(name, "dilation", dilation, 1)
    check_int_or_seq(name, "output_padding", output_padding, 0)
    check_int(name, "groups", groups, 1)
    check_padding(name, padding, strings=False)
    if features % groups:
        raise ValueError(f"{name}: groups={groups} must divide features={features}")

    def apply(params: Params, state: State, x: Array, *, train: bool,
              key: PRNGKey | None = None) -> tuple[Array, State]:
        kernel = params["kernel"]
        _check_apply_input(name, x, kernel, kernel.shape[-2])
        dtype = _compute_dtype(x, kernel)
        bias = params["bias"].astype(dtype) if use_bias else None
        y = conv_transpose(x.astype(dtype), kernel.astype(dtype), bias, stride=stride, padding=padding,
                           output_padding=output_padding, dilation=dilation, groups=groups)
        return y, state

    def init(key: PRNGKey, input_shape: Shape) -> tuple[Shape, Params, State]:
        shape = _input_shape(name, input_shape, n_fixed)
        n, c_in = len(shape) - 2, shape[-1]
        k = as_tuple(kernel_size, n, "kernel_size", name)
        if c_in % groups:
            raise ValueError(f"{name}: groups={groups} must divide the input channels C_in={c_in} "
                             f"(input shape {shape})")
        fan_in = features // groups * math.prod(k)
        k_kernel, k_bias = jax.random.split(key)
        kernel_fn = kernel_init or inits.torch_default_kernel(in_axis=-1, out_axis=-2)
        params = {"kernel": kernel_fn(k_kernel, (*k, c_in, features // groups))}
        if use_bias:
            params["bias"] = (bias_init or inits.fan_in_uniform(fan_in))(k_bias, (features,))
        return _output_shape(name, apply, params, shape), params, {}

    return make_layer("conv_transpose", init, apply)
