"""Activation layers (seed §3) over the element-wise ops of ``jcnn.ops.activations``.

Parameterless ones are ready :class:`ReadyLayer` values (``Relu`` and ``Relu()`` are the same layer);
those with arguments are constructors. Only :func:`PRelu` has params, ``{"alpha": (num_parameters,)}``.
Any input shape; the output has the input's shape and dtype.
"""

from __future__ import annotations

from typing import Any, Callable

import jax.numpy as jnp

from jcnn import initializers as inits
from jcnn._types import Array, Params, PRNGKey, ShapeTree, State
from jcnn.layers.base import Layer, ReadyLayer, check_shape, make_layer, ready_layer
from jcnn.ops import activations as A


def _shape_init(name: str) -> Callable[[PRNGKey, ShapeTree], "tuple[ShapeTree, Params, State]"]:
    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        return check_shape(name, input_shape), {}, {}

    return init


def _elementwise(name: str, kind: str, fn: Callable[[Array], Array], ready: bool) -> Layer:
    def apply(params: Params, state: State, x: Array, *, train: bool,
              key: PRNGKey | None = None) -> tuple[Array, State]:
        return fn(x), state

    return (ready_layer if ready else make_layer)(kind, _shape_init(name), apply)


Relu: ReadyLayer = _elementwise("Relu", "relu", A.relu, True)
"""``max(0, x)``."""
Relu6: ReadyLayer = _elementwise("Relu6", "relu6", A.relu6, True)
"""``min(max(0, x), 6)``."""
Sigmoid: ReadyLayer = _elementwise("Sigmoid", "sigmoid", A.sigmoid, True)
"""``1 / (1 + exp(−x))``."""
Tanh: ReadyLayer = _elementwise("Tanh", "tanh", A.tanh, True)
"""``tanh(x)``."""
Silu: ReadyLayer = _elementwise("Silu", "silu", A.silu, True)
"""``x · sigmoid(x)`` (swish)."""
HardTanh: ReadyLayer = _elementwise("HardTanh", "hard_tanh", A.hard_tanh, True)
"""``clip(x, −1, 1)``."""


def LeakyRelu(negative_slope: float = 0.01) -> Layer:
    """``x`` for ``x >= 0``, ``negative_slope · x`` otherwise."""
    return _elementwise("LeakyRelu", "leaky_relu", lambda x: A.leaky_relu(x, negative_slope), False)


def Elu(alpha: float = 1.0) -> Layer:
    """``x`` for ``x > 0``, ``alpha · (exp(x) − 1)`` otherwise."""
    return _elementwise("Elu", "elu", lambda x: A.elu(x, alpha), False)


def Gelu(approximate: bool = False) -> Layer:
    """``x · Φ(x)`` (``approximate=True``: the tanh form), as ``torch.nn.GELU``."""
    return _elementwise("Gelu", "gelu", lambda x: A.gelu(x, approximate), False)


def Softplus(beta: float = 1.0, threshold: float = 20.0) -> Layer:
    """``log(1 + exp(beta·x)) / beta``, linear where ``beta·x > threshold`` (as torch)."""
    return _elementwise("Softplus", "softplus", lambda x: A.softplus(x, beta, threshold), False)


def _check_axis(name: str, axis: int) -> None:
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"{name}: axis must be an int, got {axis!r}")


def _axis_init(name: str, axis: int) -> Callable[[PRNGKey, ShapeTree], "tuple[ShapeTree, Params, State]"]:
    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        shape = check_shape(name, input_shape, min_ndim=1)
        if not -len(shape) <= axis < len(shape):
            raise ValueError(f"{name}: axis {axis} is out of range for an input of shape {shape}")
        return shape, {}, {}

    return init


def Softmax(axis: int = -1) -> Layer:
    """``exp(x_i) / Σ_j exp(x_j)`` along ``axis`` (stable: the max is subtracted first)."""
    _check_axis("Softmax", axis)

    def apply(params: Params, state: State, x: Array, *, train: bool,
              key: PRNGKey | None = None) -> tuple[Array, State]:
        return A.softmax(x, axis=axis), state

    return make_layer("softmax", _axis_init("Softmax", axis), apply)


def LogSoftmax(axis: int = -1) -> Layer:
    """``x_i − log Σ_j exp(x_j)`` along ``axis``."""
    _check_axis("LogSoftmax", axis)

    def apply(params: Params, state: State, x: Array, *, train: bool,
              key: PRNGKey | None = None) -> tuple[Array, State]:
        return A.log_softmax(x, axis=axis), state

    return make_layer("log_softmax", _axis_init("LogSoftmax", axis), apply)


def PRelu(num_parameters: int = 1, init: float = 0.25) -> Layer:
    """``x`` for ``x >= 0``, ``alpha · x`` otherwise, with a learned ``alpha`` (as ``torch.nn.PReLU``).

    Params ``{"alpha": (num_parameters,)}`` filled with ``init``: one slope shared by every channel
    (``num_parameters=1``) or one per channel, which must equal the input's last (channel) dim ``C``.
    """
    if isinstance(num_parameters, bool) or not isinstance(num_parameters, int) or num_parameters < 1:
        raise ValueError(f"PRelu: num_parameters must be an int >= 1, got {num_parameters!r}")
    value = float(init)

    def init_fn(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        shape = check_shape("PRelu", input_shape, min_ndim=1, what="(N, ..., C)")
        channels = shape[-1] if len(shape) >= 2 else 1
        if num_parameters not in (1, channels):
            raise ValueError(
                f"PRelu: num_parameters={num_parameters} must be 1 (shared) or the channel count "
                f"C={channels} of the input shape {shape} (channels are the last axis)"
            )
        return shape, {"alpha": inits.constant(value)(key, (num_parameters,))}, {}

    def apply(params: Params, state: State, x: Array, *, train: bool,
              key: PRNGKey | None = None) -> tuple[Array, State]:
        alpha = params["alpha"]
        if x.ndim < 1 or alpha.ndim != 1 or alpha.shape[0] not in (1, x.shape[-1] if x.ndim >= 2 else 1):
            raise ValueError(
                f"PRelu: alpha of shape {tuple(alpha.shape)} does not fit the input's last (channel) "
                f"dim; got input shape {tuple(x.shape)}"
            )
        return A.prelu(x, alpha.astype(_float_dtype(x, alpha))), state

    return make_layer("prelu", init_fn, apply)


def _float_dtype(x: Array, param: Any) -> Any:
    return x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else param.dtype

