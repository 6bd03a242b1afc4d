"""Activation functions (docs/activations.md) straight from their formulas, elementwise NumPy float64."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from jcnn._types import FloatArray


def _map(f: Callable[[float], float], x: ArrayLike) -> FloatArray:
    a = np.asarray(x, dtype=np.float64)
    # np.vectorize(...)(a) and ndarray.copy() are Any in NumPy's stubs; the local says what they are.
    y: FloatArray = np.vectorize(f, otypes=[np.float64])(a) if a.size else a.copy()
    return y


def relu(x: ArrayLike) -> FloatArray:
    """``f(x) = max(0, x)``."""
    return _map(lambda v: max(0.0, v), x)


def relu6(x: ArrayLike) -> FloatArray:
    """``f(x) = min(max(0, x), 6)``."""
    return _map(lambda v: min(max(0.0, v), 6.0), x)


def hard_tanh(x: ArrayLike, min_val: float = -1.0, max_val: float = 1.0) -> FloatArray:
    """``f(x) = min(max(min_val, x), max_val)``."""
    return _map(lambda v: min(max(min_val, v), max_val), x)


def hard_sigmoid(x: ArrayLike) -> FloatArray:
    """``f(x) = min(max(x + 3, 0), 6) / 6``."""
    return _map(lambda v: min(max(v + 3.0, 0.0), 6.0) / 6.0, x)


def hard_swish(x: ArrayLike) -> FloatArray:
    """``f(x) = x · min(max(x + 3, 0), 6) / 6``."""
    return _map(lambda v: v * min(max(v + 3.0, 0.0), 6.0) / 6.0, x)


def leaky_relu(x: ArrayLike, negative_slope: float = 0.01) -> FloatArray:
    """``f(x) = x`` for ``x > 0``, else ``negative_slope·x``."""
    return _map(lambda v: v if v > 0 else negative_slope * v, x)


def prelu(x: ArrayLike, alpha: ArrayLike) -> FloatArray:
    """``f(x) = x`` for ``x > 0``, else ``alpha·x``; ``alpha`` a scalar or one per channel (last axis)."""
    x = np.asarray(x, dtype=np.float64)
    a = np.broadcast_to(np.asarray(alpha, dtype=np.float64).reshape(-1), x.shape[-1:])
    y: FloatArray = x.copy()
    for idx in np.ndindex(*x.shape):
        if x[idx] <= 0:
            y[idx] = a[idx[-1]] * x[idx]
    return y


def elu(x: ArrayLike, alpha: float = 1.0) -> FloatArray:
    """``f(x) = x`` for ``x > 0``, else ``alpha·(e^x − 1)``."""
    return _map(lambda v: v if v > 0 else alpha * math.expm1(v), x)


def sigmoid(x: ArrayLike) -> FloatArray:
    """``f(x) = 1 / (1 + e^−x)``, evaluated as ``e^x / (1 + e^x)`` for ``x < 0``."""
    return _map(lambda v: 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v)), x)


def tanh(x: ArrayLike) -> FloatArray:
    """``f(x) = (e^x − e^−x) / (e^x + e^−x)``, as ``sign(x)(1 − e^−2|x|)/(1 + e^−2|x|)``."""
    return _map(lambda v: math.copysign((1 - math.exp(-2 * abs(v))) / (1 + math.exp(-2 * abs(v))), v), x)


def silu(x: ArrayLike) -> FloatArray:
    """``f(x) = x·sigmoid(x)``."""
    return np.asarray(x, dtype=np.float64) * sigmoid(x)


def gelu(x: ArrayLike, approximate: bool = False) -> FloatArray:
    """``f(x) = x·Φ(x) = x/2·(1 + erf(x/√2))``, or ``x/2·(1 + tanh(√(2/π)(x + 0.044715x³)))``."""
    if approximate:
        return _map(lambda v: 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3))), x)
    return _map(lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2))), x)


def softplus(x: ArrayLike, beta: float = 1.0, threshold: float = 20.0) -> FloatArray:
    """``f(x) = log(1 + e^{βx})/β``, and ``x`` where ``βx > threshold`` (torch's linear switch)."""
    return _map(lambda v: v if beta * v > threshold else math.log1p(math.exp(beta * v)) / beta, x)


def softmax(x: ArrayLike, axis: int = -1) -> FloatArray:
    """``f(x)_i = e^{x_i − m} / Σ_j e^{x_j − m}`` with ``m = max_j x_j`` along ``axis``."""
    x = np.asarray(x, dtype=np.float64)
    e: FloatArray = np.exp(x - x.max(axis=axis, keepdims=True))
    total: FloatArray = e.sum(axis=axis, keepdims=True)
    return e / total


def log_softmax(x: ArrayLike, axis: int = -1) -> FloatArray:
    """``f(x)_i = (x_i − m) − log Σ_j e^{x_j − m}`` along ``axis``."""
    x = np.asarray(x, dtype=np.float64)
    shifted: FloatArray = x - x.max(axis=axis, keepdims=True)
    total: FloatArray = np.exp(shifted).sum(axis=axis, keepdims=True)
    return shifted - np.log(total)
