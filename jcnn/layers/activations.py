"""Activation layers (docs/activations.md) over the element-wise ops of ``jcnn.ops.activations``.

Parameterless ones are ready :class:`ReadyLayer` values (``Relu`` and ``Relu()`` are the same layer);
those with arguments are constructors. Only :func:`PRelu` has params, ``{"alpha": (num_parameters,)}``.
Any input shape; the output has the input's shape and dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, overload

import jax.numpy as jnp

from jcnn import initializers as inits
from jcnn._types import Array, Params, PRNGKey, ShapeTree, State
from jcnn.layers.base import Layer, ReadyLayer, check_shape, constructor, make_layer, ready_layer
from jcnn.ops import activations as A


def _same_shape(name: str) -> Callable[[ShapeTree], ShapeTree]:
    def shape(input_shape: ShapeTree) -> ShapeTree:
        return check_shape(name, input_shape)

    return shape


@overload
def elementwise(name: str, fn: Callable[[Array], Array], *, ready: Literal[True], hint: str = "") -> ReadyLayer: ...
@overload
def elementwise(name: str, fn: Callable[[Array], Array], *, ready: bool = False, hint: str = "") -> Layer: ...
def elementwise(name: str, fn: Callable[[Array], Array], *, ready: bool = False, hint: str = "") -> Layer:
    """A parameterless layer ``y = fn(x)`` of any shape (kind ``name``); ``ready`` makes a :class:`ReadyLayer`."""
    shape = _same_shape(name)

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        return shape(input_shape), {}, {}

    def apply(
        params: Params, state: State, x: Array, *, train: bool, key: PRNGKey | None = None
    ) -> tuple[Array, State]:
        return fn(x), state

    if ready:
        return ready_layer(name, init, apply, shape=shape, hint=hint)
    return make_layer(name, init, apply, shape=shape, host_init=True)


Relu: ReadyLayer = elementwise(
    "Relu",
    A.relu,
    ready=True,
    hint="; for a negative slope use LeakyRelu(negative_slope)",
)
"""``max(0, x)``."""
Relu6: ReadyLayer = elementwise("Relu6", A.relu6, ready=True)
"""``min(max(0, x), 6)``."""
Sigmoid: ReadyLayer = elementwise("Sigmoid", A.sigmoid, ready=True)
"""``1 / (1 + exp(−x))``."""
Tanh: ReadyLayer = elementwise("Tanh", A.tanh, ready=True)
"""``tanh(x)``."""
Silu: ReadyLayer = elementwise("Silu", A.silu, ready=True)
"""``x · sigmoid(x)`` (swish)."""
HardTanh: ReadyLayer = elementwise("HardTanh", A.hard_tanh, ready=True)
"""``clip(x, −1, 1)``."""

HardSigmoid: ReadyLayer = elementwise("HardSigmoid", A.hard_sigmoid, ready=True)
"""``relu6(x + 3) / 6`` (``torch.nn.Hardsigmoid``)."""
HardSwish: ReadyLayer = elementwise("HardSwish", A.hard_swish, ready=True)
"""``x · relu6(x + 3) / 6`` (``torch.nn.Hardswish``)."""


@constructor
def LeakyRelu(negative_slope: float = 0.01) -> Layer:
    """``x`` for ``x >= 0``, ``negative_slope · x`` otherwise."""
    return elementwise("LeakyRelu", lambda x: A.leaky_relu(x, negative_slope))


@constructor
def Elu(alpha: float = 1.0) -> Layer:
    """``x`` for ``x > 0``, ``alpha · (exp(x) − 1)`` otherwise."""
    return elementwise("Elu", lambda x: A.elu(x, alpha))


@constructor
def Gelu(approximate: bool = False) -> Layer:
    """``x · Φ(x)`` (``approximate=True``: the tanh form), as ``torch.nn.GELU``."""
    return elementwise("Gelu", lambda x: A.gelu(x, approximate))


@constructor
def Softplus(beta: float = 1.0, threshold: float = 20.0) -> Layer:
    """``log(1 + exp(beta·x)) / beta``, linear where ``beta·x > threshold`` (as torch)."""
    return elementwise("Softplus", lambda x: A.softplus(x, beta, threshold))


def _check_axis(name: str, axis: int) -> None:
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"{name}: axis must be an int, got {axis!r}")


def _along_axis(name: str, axis: int, fn: Callable[[Array], Array]) -> Layer:
    def shape(input_shape: ShapeTree) -> ShapeTree:
        checked = check_shape(name, input_shape, min_ndim=1)
        if not -len(checked) <= axis < len(checked):
            raise ValueError(f"{name}: axis {axis} is out of range for an input of shape {checked}")
        return checked

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        return shape(input_shape), {}, {}

    def apply(
        params: Params, state: State, x: Array, *, train: bool, key: PRNGKey | None = None
    ) -> tuple[Array, State]:
        return fn(x), state

    return make_layer(name, init, apply, shape=shape, host_init=True)


@constructor
def Softmax(axis: int = -1) -> Layer:
    """``exp(x_i) / Σ_j exp(x_j)`` along ``axis`` (stable: the max is subtracted first)."""
    _check_axis("Softmax", axis)
    return _along_axis("Softmax", axis, lambda x: A.softmax(x, axis=axis))


@constructor
def LogSoftmax(axis: int = -1) -> Layer:
    """``x_i − log Σ_j exp(x_j)`` along ``axis``."""
    _check_axis("LogSoftmax", axis)
    return _along_axis("LogSoftmax", axis, lambda x: A.log_softmax(x, axis=axis))


@constructor
def PRelu(num_parameters: int = 1, init: float = 0.25) -> Layer:
    """``x`` for ``x >= 0``, ``alpha · x`` otherwise, with a learned ``alpha`` (as ``torch.nn.PReLU``).

    Params ``{"alpha": (num_parameters,)}`` filled with ``init``: one slope shared by every channel
    (``num_parameters=1``) or one per channel, which must equal the input's last (channel) dim ``C``.
    """
    if isinstance(num_parameters, bool) or not isinstance(num_parameters, int) or num_parameters < 1:
        raise ValueError(f"PRelu: num_parameters must be an int >= 1, got {num_parameters!r}")
    value = float(init)

    def shape_rule(input_shape: ShapeTree) -> ShapeTree:
        shape = check_shape("PRelu", input_shape, min_ndim=1, what="(N, ..., C)")
        channels = shape[-1] if len(shape) >= 2 else 1
        if num_parameters not in (1, channels):
            raise ValueError(
                f"PRelu: num_parameters={num_parameters} must be 1 (shared) or the channel count "
                f"C={channels} of the input shape {shape} (channels are the last axis)"
            )
        return shape

    def init_fn(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        return shape_rule(input_shape), {"alpha": inits.constant(value)(key, (num_parameters,))}, {}

    def apply(
        params: Params, state: State, x: Array, *, train: bool, key: PRNGKey | None = None
    ) -> tuple[Array, State]:
        alpha = params["alpha"]
        if x.ndim < 1 or alpha.ndim != 1 or alpha.shape[0] not in (1, x.shape[-1] if x.ndim >= 2 else 1):
            raise ValueError(
                f"PRelu: alpha of shape {tuple(alpha.shape)} does not fit the input's last (channel) "
                f"dim; got input shape {tuple(x.shape)}"
            )
        return A.prelu(x, alpha.astype(_float_dtype(x, alpha))), state

    return make_layer("PRelu", init_fn, apply, shape=shape_rule, host_init=True)


def _float_dtype(x: Array, param: Any) -> Any:
    return x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else param.dtype
