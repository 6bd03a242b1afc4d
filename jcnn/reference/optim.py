"""The textbook optimizer updates (docs/optimizers.md), one NumPy float64 step each, written as the books write them.

``w`` is a parameter array, ``g = ∂L/∂w`` its gradient, ``lr`` the learning rate η. Each function returns
the new parameters and the new buffers; nothing is mutated. How each maps onto ``torch.optim`` (and so
onto :mod:`jcnn.optim`) is checked in ``tests/reference/test_reference_optim.py``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from jcnn._types import FloatArray


def _f64(*xs: ArrayLike) -> list[FloatArray]:
    return [np.asarray(x, dtype=np.float64) for x in xs]


def sgd_step(w: ArrayLike, g: ArrayLike, lr: float) -> FloatArray:
    """``W ← W − η·∂L/∂W``."""
    w, g = _f64(w, g)
    return w - lr * g


def momentum_step(w: ArrayLike, v: ArrayLike, g: ArrayLike, lr: float, alpha: float) -> tuple[FloatArray, FloatArray]:
    """``v ← α·v − η·∂L/∂W``; ``W ← W + v`` (``v`` starts at 0).

    torch's ``SGD(lr=η, momentum=α)`` keeps ``b = −v/η`` instead: ``b ← α·b + g``, ``W ← W − η·b``.
    """
    w, v, g = _f64(w, v, g)
    v = alpha * v - lr * g
    return w + v, v


def adagrad_step(
    w: ArrayLike, h: ArrayLike, g: ArrayLike, lr: float, eps: float = 1e-10
) -> tuple[FloatArray, FloatArray]:
    """``h ← h + ∂L/∂W ⊙ ∂L/∂W``; ``W ← W − η·(∂L/∂W) / (√h + ε)`` (``h`` starts at 0)."""
    w, h, g = _f64(w, h, g)
    h = h + g * g
    return w - lr * g / (np.sqrt(h) + eps), h


def rmsprop_step(
    w: ArrayLike, h: ArrayLike, g: ArrayLike, lr: float, rho: float = 0.99, eps: float = 1e-8
) -> tuple[FloatArray, FloatArray]:
    """``h ← ρ·h + (1 − ρ)·∂L/∂W ⊙ ∂L/∂W``; ``W ← W − η·(∂L/∂W) / (√h + ε)``."""
    w, h, g = _f64(w, h, g)
    h = rho * h + (1.0 - rho) * g * g
    return w - lr * g / (np.sqrt(h) + eps), h


def adam_step(
    w: ArrayLike,
    m: ArrayLike,
    v: ArrayLike,
    g: ArrayLike,
    t: int,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Kingma & Ba, step ``t = 1, 2, …``: ``m ← β₁m + (1−β₁)g``, ``v ← β₂v + (1−β₂)g⊙g``,
    ``m̂ = m/(1−β₁ᵗ)``, ``v̂ = v/(1−β₂ᵗ)``, ``W ← W − η·m̂/(√v̂ + ε)``."""
    w, m, v, g = _f64(w, m, v, g)
    m = beta1 * m + (1.0 - beta1) * g
    v = beta2 * v + (1.0 - beta2) * g * g
    m_hat = m / (1.0 - beta1**t)
    v_hat = v / (1.0 - beta2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
