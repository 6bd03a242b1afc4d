"""Fully connected layer (docs/fully_connected.md) as explicit sums, NumPy float64."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from jcnn._types import FloatArray


def dense(x: ArrayLike, W: ArrayLike, b: ArrayLike | None = None) -> FloatArray:
    """``y[..., j] = Σ_i x[..., i]·W[i, j] + b[j]``: ``x (..., in)``, ``W (in, out)``, ``b (out,)``.

    The textbook writes ``y = W x + b`` for a column vector; with rows of ``x`` and ``W`` stored as
    ``(in, out)`` (torch's ``Linear.weight.T``) that is ``x·W + b``.
    """
    x = np.asarray(x, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    n_in, n_out = W.shape
    if x.shape[-1] != n_in:
        raise ValueError(f"reference.dense: x has {x.shape[-1]} features but W expects {n_in}")
    y = np.zeros(x.shape[:-1] + (n_out,))
    for idx in np.ndindex(*x.shape[:-1]):
        for j in range(n_out):
            total = 0.0 if b is None else float(np.asarray(b, dtype=np.float64)[j])
            for i in range(n_in):
                total += x[idx + (i,)] * W[i, j]
            y[idx + (j,)] = total
    return y
