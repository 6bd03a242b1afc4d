"""Fully connected layer (docs/fully_connected.md): ``y = x·W + b`` on the last axis."""

from __future__ import annotations

import math
from typing import Any, cast

import jax.numpy as jnp
from jax import lax

from jcnn import initializers as inits
from jcnn._types import Array, Params, PRNGKey, Shape, ShapeTree, State
from jcnn.layers.base import Layer, check_shape, constructor, make_layer, split_key


@constructor
def Dense(
    features: int,
    *,
    use_bias: bool = True,
    kernel_init: inits.Initializer | None = None,
    bias_init: inits.Initializer | None = None,
) -> Layer:
    """``y = x·W + b`` over the last axis, any leading axes (as ``torch.nn.Linear``).

    Shapes: ``x (..., in)`` → ``y (..., features)``; params ``kernel (in, features)``, ``bias (features,)``.
    Defaults are torch's: ``W ~ U(±1/sqrt(in))``, ``b ~ U(±1/sqrt(in))``. The params are cast to the
    input's floating dtype, so a bfloat16 input computes in bfloat16. MACs ``prod(leading)·in·features``.
    """
    if not isinstance(features, int) or isinstance(features, bool) or features < 1:
        raise ValueError(f"Dense: features must be an int >= 1, got {features!r}")

    def shape_rule(input_shape: ShapeTree) -> Shape:
        shape = check_shape("Dense", input_shape, min_ndim=1, what="(..., in_features)")
        if shape[-1] < 1:
            raise ValueError(
                f"Dense: the last dim of the input shape is in_features and must be >= 1, got shape "
                f"{shape}; for a batch of vectors give (N, in_features), e.g. (-1, {features})"
            )
        return shape[:-1] + (features,)

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[Shape, Params, State]:
        out = shape_rule(input_shape)
        fan_in = cast(Shape, input_shape)[-1]  # shape_rule checked it is one shape
        k_kernel, k_bias = split_key(key, 2)
        params = {"kernel": (kernel_init or inits.torch_default_kernel())(k_kernel, (fan_in, features))}
        if use_bias:
            params["bias"] = (bias_init or inits.fan_in_uniform(fan_in))(k_bias, (features,))
        return out, params, {}

    def macs(input_shape: Shape, output_shape: Shape) -> int:
        return math.prod(input_shape[:-1]) * input_shape[-1] * features

    def apply(
        params: Params, state: State, x: Array, *, train: bool, key: PRNGKey | None = None
    ) -> tuple[Array, State]:
        kernel = params["kernel"]
        if x.ndim < 1 or x.shape[-1] != kernel.shape[0]:
            raise ValueError(
                f"Dense: expected an input whose last dim is {kernel.shape[0]} (the kernel's in_features), "
                f"got shape {tuple(x.shape)}"
            )
        dtype = _compute_dtype(x, kernel)
        y = lax.dot_general(x.astype(dtype), kernel.astype(dtype), (((x.ndim - 1,), (0,)), ((), ())))
        if use_bias:
            y = y + params["bias"].astype(dtype)
        return y, state

    return make_layer("Dense", init, apply, shape=shape_rule, macs=macs, host_init=True)


def _compute_dtype(x: Array, param: Any) -> Any:
    """The input's dtype when it is floating (params follow the activations), else the param's."""
    return x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else param.dtype
