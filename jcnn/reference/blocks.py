"""The modern-CNN blocks from their formulas, NumPy float64: stochastic depth with a given keep mask,
squeeze-and-excitation, layer scale."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from jcnn._types import FloatArray
from jcnn.reference.activations import relu, sigmoid


def stochastic_depth(x: ArrayLike, keep: ArrayLike, p: float) -> FloatArray:
    """``y[n, …] = x[n, …] · keep[n] / (1 − p)`` (``keep`` broadcast from ``(N, 1, …)`` or ``(1, …)``);
    ``p = 1`` gives zeros."""
    x = np.asarray(x, dtype=np.float64)
    mask: FloatArray = np.broadcast_to(np.asarray(keep, dtype=np.float64), x.shape)
    if p >= 1.0:
        return np.zeros_like(x)
    return x * mask / (1.0 - p)


def _matrix(w: ArrayLike) -> FloatArray:
    """``w`` as a float64 ``(in, out)`` matrix: its last two axes (a ``(1, 1, in, out)`` 1×1 kernel too)."""
    a = np.asarray(w, dtype=np.float64)
    return a.reshape(a.shape[-2:])


def squeeze_excitation(
    x: ArrayLike,
    w1: ArrayLike,
    b1: ArrayLike,
    w2: ArrayLike,
    b2: ArrayLike,
    activation: Callable[[FloatArray], FloatArray] = relu,
    scale_activation: Callable[[FloatArray], FloatArray] = sigmoid,
) -> FloatArray:
    """For each example ``n`` and channel ``c``: ``s_c = mean over positions of x[n, …, c]``,
    ``h_j = δ(Σ_c s_c·W₁[c, j] + b₁[j])``, ``g_c = σ(Σ_j h_j·W₂[j, c] + b₂[c])``, ``y[n, …, c] = g_c·x[n, …, c]``."""
    x = np.asarray(x, dtype=np.float64)
    w1, w2 = _matrix(w1), _matrix(w2)
    b1, b2 = np.asarray(b1, dtype=np.float64), np.asarray(b2, dtype=np.float64)
    y = np.empty_like(x)
    for n in range(x.shape[0]):
        flat = x[n].reshape(-1, x.shape[-1])
        s = np.array([sum(flat[:, c]) / flat.shape[0] for c in range(x.shape[-1])])
        h = activation(np.array([sum(s[c] * w1[c, j] for c in range(len(s))) + b1[j] for j in range(w1.shape[1])]))
        g = scale_activation(
            np.array([sum(h[j] * w2[j, c] for j in range(len(h))) + b2[c] for c in range(w2.shape[1])])
        )
        y[n] = x[n] * g
    return y


def layer_scale(x: ArrayLike, gamma: ArrayLike) -> FloatArray:
    """``y[…, c] = γ_c · x[…, c]`` (ConvNeXt's per-channel layer scale)."""
    x = np.asarray(x, dtype=np.float64)
    return x * np.asarray(gamma, dtype=np.float64).reshape(-1)
