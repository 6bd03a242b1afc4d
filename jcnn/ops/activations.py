"""Activation functions (docs/activations.md), elementwise unless stated, equal to torch's in value AND gradient.

Where torch's derivative at a kink is a convention (``relu'(0) = 0``, ``hard_tanh'(±1) = 0``,
``leaky_relu'(0) = slope``, ``elu'(0) = alpha``), the ``jnp.where`` branches below pick the same side.
Every function keeps the input's dtype (Python-scalar constants are weakly typed); the smooth ones
compute float16/bfloat16 inputs in float32, as torch does on CPU, so ``exp`` and ``x³`` cannot overflow
midway.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jcnn._types import Array


def _float32_inside(fn: Callable[..., Array]) -> Callable[..., Array]:
    """Run ``fn`` in float32 for half-precision inputs and cast the result back; reject non-float inputs
    with an error naming ``fn`` (torch raises for these too, and lax would name its own primitive)."""

    @functools.wraps(fn)
    def wrapped(x: Array, *args: Any, **kwargs: Any) -> Array:
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise ValueError(
                f"{fn.__name__}: expected a floating-point input, got dtype {x.dtype}; cast it "
                "first (x.astype(jnp.float32))"
            )
        if x.dtype in (jnp.float16, jnp.bfloat16):
            return fn(x.astype(jnp.float32), *args, **kwargs).astype(x.dtype)
        return fn(x, *args, **kwargs)

    return wrapped


def relu(x: Array) -> Array:
    """``max(0, x)``; gradient 1 for ``x > 0``, else 0 (also at 0, as torch)."""
    return jnp.where(x > 0, x, 0)


def hard_tanh(x: Array, min_val: float = -1.0, max_val: float = 1.0) -> Array:
    """``clip(x, min_val, max_val)``; gradient 1 strictly inside, 0 at and beyond the edges (torch)."""
    if min_val > max_val:
        raise ValueError(f"hard_tanh: min_val must be <= max_val, got min_val={min_val}, max_val={max_val}")
    return jnp.where(x <= min_val, min_val, jnp.where(x >= max_val, max_val, x))


def relu6(x: Array) -> Array:
    """``min(max(0, x), 6)`` = ``hard_tanh(x, 0, 6)``; gradient 0 at 0 and 6 (torch)."""
    return hard_tanh(x, 0.0, 6.0)


def hard_sigmoid(x: Array) -> Array:
    """``relu6(x + 3) / 6`` (``torch.nn.functional.hardsigmoid``): 0 for ``x <= −3``, 1 for ``x >= 3``,
    ``(x + 3)/6`` between; gradient ``1/6`` strictly inside, 0 at and beyond ``±3`` (torch)."""
    return jnp.where(x <= -3, 0, jnp.where(x >= 3, 1, (x + 3) / 6))


def hard_swish(x: Array) -> Array:
    """``x · relu6(x + 3) / 6`` (``torch.nn.functional.hardswish``, MobileNet v3): 0 for ``x <= −3``, ``x`` for
    ``x >= 3``, ``x·(x + 3)/6`` between; gradient ``x/3 + 1/2`` strictly inside, 0 at ``−3`` and 1 at ``3``
    (torch's convention at the kinks)."""
    return jnp.where(x <= -3, 0, jnp.where(x >= 3, x, x * (x + 3) / 6))


def leaky_relu(x: Array, negative_slope: float = 0.01) -> Array:
    """``x`` for ``x > 0``, else ``negative_slope·x``; gradient at 0 is ``negative_slope`` (torch)."""
    return jnp.where(x > 0, x, x * negative_slope)


def prelu(x: Array, alpha: Array | float) -> Array:
    """``x`` for ``x > 0``, else ``alpha·x``, with a learnable ``alpha``.

    ``alpha`` is a scalar (shape ``()`` or ``(1,)``) or one value per channel, shape ``(C,)`` for
    ``x (..., C)`` (channels-last: torch's per-channel weight on its channel axis).
    """
    a = jnp.asarray(alpha)
    channels = x.shape[-1] if x.ndim else 1
    if a.ndim > 1 or (a.ndim == 1 and a.shape[0] not in (1, channels)):
        raise ValueError(
            f"prelu: alpha must be a scalar, shape (1,), or shape (C,) = ({channels},) for an input of "
            f"shape {tuple(x.shape)} (channels last), got alpha of shape {tuple(a.shape)}"
        )
    return jnp.where(x > 0, x, a.reshape(a.shape if a.shape != (1,) else ()).astype(x.dtype) * x)


@jax.custom_jvp
def _expm1(x: Array) -> Array:
    return jnp.expm1(x)


# d/dx expm1(x) = exp(x). JAX's own rule computes it as expm1(x) + 1, which rounds to 0 in float32 for
# x < -17 (and loses digits from x ≈ -8): elu's gradient for very negative inputs needs the exp.
_expm1.defjvp(lambda primals, tangents: (jnp.expm1(primals[0]), jnp.exp(primals[0]) * tangents[0]))


@_float32_inside
def elu(x: Array, alpha: float = 1.0) -> Array:
    """``x`` for ``x > 0``, else ``alpha·(exp(x) − 1)``; gradient ``alpha·exp(x)`` for ``x <= 0`` (also
    at 0, as torch), computed as the exponential itself so it keeps full precision for ``x << 0``."""
    negative = jnp.where(x > 0, 0, x)  # keeps expm1 away from overflow on the unused branch
    return jnp.where(x > 0, x, alpha * _expm1(negative))


@_float32_inside
def sigmoid(x: Array) -> Array:
    """``1 / (1 + exp(−x))``, computed without overflow for large ``|x|``."""
    return lax.logistic(x)


@_float32_inside
def tanh(x: Array) -> Array:
    """``(e^x − e^−x) / (e^x + e^−x)``."""
    return jnp.tanh(x)


@_float32_inside
def silu(x: Array) -> Array:
    """``x·sigmoid(x)`` (swish)."""
    return x * lax.logistic(x)


@_float32_inside
def gelu(x: Array, approximate: bool = False) -> Array:
    """``x·Φ(x) = x/2·(1 + erf(x/√2))``, computed as ``x/2·erfc(−x/√2)`` (no cancellation for x << 0,
    where ``1 + erf`` loses every digit from x ≈ −4 and is 0 below −5.5, in torch too);
    ``approximate=True`` is torch's ``approximate='tanh'``: ``x/2·(1 + tanh(√(2/π)·(x + 0.044715·x³)))``."""
    if approximate:
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
        # 1 + tanh(u) = 2·sigmoid(2u), without the cancellation that zeroes the gradient for x << 0
        return x * lax.logistic(2 * inner)
    return 0.5 * x * lax.erfc(x * (-1 / math.sqrt(2.0)))


@_float32_inside
def softplus(x: Array, beta: float = 1.0, threshold: float = 20.0) -> Array:
    """``log(1 + exp(β·x))/β``, or ``x`` where ``β·x > threshold`` (torch's switch; gradient 1 there)."""
    if beta == 0:
        raise ValueError(f"softplus: beta must be non-zero, got beta={beta}")
    bx = x * beta
    above = bx > threshold
    return jnp.where(above, x, jnp.log1p(jnp.exp(jnp.where(above, 0, bx))) / beta)


def _check_axis(x: Array, axis: int, op: str) -> int:
    if not -x.ndim <= axis < x.ndim or x.ndim == 0:
        raise ValueError(f"{op}: axis {axis} is out of range for an input of shape {tuple(x.shape)}")
    return axis % x.ndim


@_float32_inside
def softmax(x: Array, axis: int = -1) -> Array:
    """``exp(x_i − m) / Σ_j exp(x_j − m)`` along ``axis``, with ``m = max_j x_j`` (stable at any scale)."""
    axis = _check_axis(x, axis, "softmax")
    if x.shape[axis] == 0:
        return x  # nothing to normalise: the empty array, as torch
    shifted = x - lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    e = jnp.exp(shifted)
    return e / jnp.sum(e, axis=axis, keepdims=True)


@_float32_inside
def log_softmax(x: Array, axis: int = -1) -> Array:
    """``(x_i − m) − log Σ_j exp(x_j − m)`` along ``axis`` (never ``log(softmax)``)."""
    axis = _check_axis(x, axis, "log_softmax")
    if x.shape[axis] == 0:
        return x
    shifted = x - lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))
