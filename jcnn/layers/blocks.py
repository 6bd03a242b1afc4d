"""Blocks of the modern CNNs: squeeze-and-excitation (torchvision's ``SqueezeExcitation``) and layer scale
(ConvNeXt's per-channel γ), channels-last.

``SqueezeExcitation`` is a combinator of named children laid out as torchvision's module
(``avgpool``, ``fc1``, ``activation``, ``fc2``, ``scale_activation``), so its params are ``{"fc1": {"kernel",
"bias"}, "fc2": …}`` and map onto ``….fc1.weight`` / ``….fc2.bias``. ``LayerScale``'s single param
``scale`` has the input's rank without the batch, ``(1, …, 1, C)``, so that it exports as torchvision's
``layer_scale`` parameter of shape ``(C, 1, 1)`` (:mod:`jcnn.interop.torch` writes it under the layer's own
path, torch keeping a layer scale as a bare ``nn.Parameter``).
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp

from jcnn import initializers as inits
from jcnn._types import Array, Params, PRNGKey, ShapeTree, State
from jcnn.layers.activations import Relu, Sigmoid
from jcnn.layers.base import Layer, apply_child, check_shape, constructor, init_child, make_layer, split_key
from jcnn.layers.conv import Conv
from jcnn.layers.pooling import AdaptiveAvgPool


def _check_channels(name: str, what: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: {what} must be an int >= 1, got {value!r}")


@constructor
def SqueezeExcitation(
    channels: int,
    squeeze_channels: int,
    *,
    activation: Layer = Relu,
    scale_activation: Layer = Sigmoid,
    spatial_dims: int = 2,
    kernel_init: inits.Initializer | None = None,
    bias_init: inits.Initializer | None = None,
) -> Layer:
    """Squeeze-and-excitation as ``torchvision.ops.SqueezeExcitation(channels, squeeze_channels)``:
    ``y = x · σ(fc2(δ(fc1(avgpool(x)))))`` with ``avgpool`` to one position, ``fc1``/``fc2`` 1×1 convs with
    bias (``channels → squeeze_channels → channels``), ``δ = activation``, ``σ = scale_activation``
    (MobileNet v3: ``HardSigmoid``). ``x (N, *spatial, channels)`` → same shape. ``kernel_init`` /
    ``bias_init`` go to both convs (default torch's). MACs ``2·channels·squeeze_channels`` per example.
    See :func:`jcnn.ops.squeeze_excitation` for the op.
    """
    name = "SqueezeExcitation"
    _check_channels(name, "channels", channels)
    _check_channels(name, "squeeze_channels", squeeze_channels)
    for what, layer in (("activation", activation), ("scale_activation", scale_activation)):
        if not isinstance(layer, Layer):
            raise TypeError(f"{name}: {what} must be a Layer (e.g. jcnn.Relu), got {type(layer).__name__}")
    ones = (1,) * spatial_dims
    conv_kw = {"kernel_init": kernel_init, "bias_init": bias_init}
    named = (
        ("avgpool", AdaptiveAvgPool(1, spatial_dims=spatial_dims)),
        ("fc1", Conv(squeeze_channels, ones, **conv_kw)),
        ("activation", activation),
        ("fc2", Conv(channels, ones, **conv_kw)),
        ("scale_activation", scale_activation),
    )

    def check(input_shape: ShapeTree) -> ShapeTree:
        shape = check_shape(name, input_shape, ndim=spatial_dims + 2, what="(N, *spatial, C)")
        if shape[-1] != channels:
            raise ValueError(f"{name}: expected {channels} input channels (channels={channels}), got shape {shape}")
        return shape

    def wiring(input_shape: ShapeTree) -> tuple[ShapeTree, tuple[ShapeTree, ...]]:
        shape = check(input_shape)
        inputs, current = [], shape
        for _, layer in named:
            inputs.append(current)
            current = layer.output_shape(current)
        return shape, tuple(inputs)

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        shape = check(input_shape)
        params: dict[str, Any] = {}
        state: dict[str, Any] = {}
        current = shape
        for (child, layer), k in zip(named, split_key(key, len(named))):
            current, params[child], state[child] = init_child(child, layer, k, current)
        return shape, params, state

    def apply(
        params: Params, state: State, x: Array, *, train: bool, key: PRNGKey | None = None
    ) -> tuple[Array, State]:
        if x.ndim != spatial_dims + 2 or x.shape[-1] != channels:
            raise ValueError(f"{name}: expected an input (N, *spatial, {channels}), got shape {tuple(x.shape)}")
        scale, new_state = x, {}
        for (child, layer), k in zip(named, split_key(key, len(named))):
            scale, new_state[child] = apply_child(child, layer, params[child], state[child], scale, train=train, key=k)
        return scale * x, new_state

    return make_layer(name, init, apply, children=named, wiring=wiring, host_init=True)


@constructor
def LayerScale(init_value: float = 1e-6) -> Layer:
    """Per-channel scale (ConvNeXt, CaiT): ``y[…, c] = γ_c · x[…, c]`` with ``γ`` learned, initialised to
    ``init_value``. ``x (N, …, C)`` → same shape; params ``{"scale": (1, …, 1, C)}`` (the input's rank
    without the batch: it broadcasts against ``x`` and exports as torch's ``(C, 1, 1)``). No state."""
    if isinstance(init_value, bool) or not isinstance(init_value, (int, float)) or not math.isfinite(init_value):
        raise ValueError(f"LayerScale: init_value must be a finite number, got {init_value!r}")
    value = float(init_value)

    def shape(input_shape: ShapeTree) -> ShapeTree:
        return check_shape("LayerScale", input_shape, min_ndim=2, what="(N, ..., C)")

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        checked = shape(input_shape)
        gamma = (1,) * (len(checked) - 2) + (checked[-1],)
        return checked, {"scale": inits.constant(value)(key, gamma)}, {}

    def apply(
        params: Params, state: State, x: Array, *, train: bool, key: PRNGKey | None = None
    ) -> tuple[Array, State]:
        gamma = params["scale"]
        if x.ndim != gamma.ndim + 1 or x.shape[-1] != gamma.shape[-1]:
            raise ValueError(
                f"LayerScale: scale of shape {tuple(gamma.shape)} does not fit an input of shape "
                f"{tuple(x.shape)}; expected (N, ..., {gamma.shape[-1]}) of rank {gamma.ndim + 1}"
            )
        dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else gamma.dtype
        return gamma.astype(dtype) * x.astype(dtype), state

    return make_layer("LayerScale", init, apply, shape=shape, host_init=True)


__all__ = ["SqueezeExcitation", "LayerScale"]
