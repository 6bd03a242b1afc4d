"""Loss functions (docs/losses.md) straight from their formulas: NumPy float64, one example at a time.

Each returns the per-example (or per-element) losses, the ``reduction="none"`` of :mod:`jcnn.losses`.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from jcnn._types import FloatArray


def softmax(a: ArrayLike) -> FloatArray:
    """``yₖ = exp(aₖ − max a) / Σⱼ exp(aⱼ − max a)`` over the last axis (the shift changes nothing but
    the range)."""
    a = np.asarray(a, dtype=np.float64)
    e: FloatArray = np.exp(a - a.max(axis=-1, keepdims=True))
    total: FloatArray = e.sum(axis=-1, keepdims=True)
    return e / total


def cross_entropy(y: ArrayLike, t: ArrayLike) -> FloatArray:
    """``E = −Σₖ tₖ·log yₖ`` for probabilities ``y (..., C)`` and targets ``t (..., C)`` (one-hot or soft)."""
    y, t = np.asarray(y, dtype=np.float64), np.asarray(t, dtype=np.float64)
    out = np.zeros(y.shape[:-1])
    for idx in np.ndindex(*y.shape[:-1]):
        out[idx] = -sum(t[idx][k] * math.log(y[idx][k]) for k in range(y.shape[-1]) if t[idx][k] != 0)
    return out


def one_hot(labels: ArrayLike, n_classes: int, label_smoothing: float = 0.0) -> FloatArray:
    """``t = (1 − ε)·onehot(label) + ε/C``."""
    labels = np.asarray(labels)
    t = np.zeros(labels.shape + (n_classes,))
    for idx in np.ndindex(*labels.shape):
        t[idx][labels[idx]] = 1.0
    return (1.0 - label_smoothing) * t + label_smoothing / n_classes


def sum_of_squares(y: ArrayLike, t: ArrayLike) -> float:
    """The textbook sum-of-squares error ``E = ½·Σₖ (yₖ − tₖ)²`` over all elements."""
    y, t = np.asarray(y, dtype=np.float64), np.asarray(t, dtype=np.float64)
    return 0.5 * float(np.sum((y - t) ** 2))


def binary_cross_entropy(p: ArrayLike, t: ArrayLike) -> FloatArray:
    """``E = −(t·log p + (1 − t)·log(1 − p))`` element by element."""
    p, t = np.asarray(p, dtype=np.float64), np.asarray(t, dtype=np.float64)
    out = np.zeros(p.shape)
    for idx in np.ndindex(*p.shape):
        pos = t[idx] * math.log(p[idx]) if t[idx] != 0 else 0.0
        neg = (1.0 - t[idx]) * math.log(1.0 - p[idx]) if t[idx] != 1 else 0.0
        out[idx] = -(pos + neg)
    return out


def huber(y: ArrayLike, t: ArrayLike, delta: float = 1.0) -> FloatArray:
    """``½d²`` for ``|d| < δ``, else ``δ(|d| − ½δ)``, ``d = y − t``."""
    d = np.asarray(y, dtype=np.float64) - np.asarray(t, dtype=np.float64)
    return np.where(np.abs(d) < delta, 0.5 * d * d, delta * (np.abs(d) - 0.5 * delta))


def kl_div(q: ArrayLike, p: ArrayLike) -> FloatArray:
    """``KL(p‖q)`` term by term: ``p·log(p/q)`` (0 where ``p = 0``)."""
    q, p = np.asarray(q, dtype=np.float64), np.asarray(p, dtype=np.float64)
    out = np.zeros(p.shape)
    for idx in np.ndindex(*p.shape):
        out[idx] = p[idx] * math.log(p[idx] / q[idx]) if p[idx] > 0 else 0.0
    return out


def multi_class_hinge(s: ArrayLike, label: int, margin: float = 1.0) -> float:
    """Weston–Watkins hinge for one example, divided by the class count: ``Σ_{c≠y} max(0, m − s_y + s_c)/C``."""
    s = np.asarray(s, dtype=np.float64)
    total: float = sum(max(0.0, margin - s[label] + s[c]) for c in range(s.shape[0]) if c != label)
    n_classes: int = s.shape[0]
    return total / n_classes
