"""Classification metrics over channels-last scores ``(..., C)`` and integer labels ``(...)``.

Labels are class indices in ``[0, C)``: eager calls raise ``ValueError`` for any other value; under
``jax.jit`` an out-of-range label makes the metric NaN (never a silently lower accuracy).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jcnn._labels import check_class_indices, invalid
from jcnn._types import Array


def _check(who: str, scores: Array, labels: Array) -> tuple[Array, Array]:
    labels_in = labels
    scores, labels = jnp.asarray(scores), jnp.asarray(labels)
    if scores.ndim < 1 or labels.shape != scores.shape[:-1]:
        raise ValueError(
            f"{who}: expected scores (..., C) and integer labels of shape scores.shape[:-1]; got scores "
            f"{scores.shape} and labels {labels.shape}"
        )
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"{who}: labels must be integer class indices, got dtype {labels.dtype}")
    check_class_indices(who, labels_in, scores.shape[-1])
    return scores, labels


def _mean(who: str, hits: Array, weights: Array | None, bad: Array) -> Array:
    if weights is None:
        out = jnp.mean(hits.astype(jnp.float32))
    else:
        w = jnp.asarray(weights)
        if w.shape != hits.shape:
            raise ValueError(f"{who}: weights must have shape {hits.shape}, got {w.shape}")
        w = w.astype(jnp.promote_types(w.dtype, jnp.float32))
        out = jnp.sum(w * hits) / jnp.sum(w)
    return jnp.where(jnp.any(bad), jnp.nan, out)  # traced out-of-range labels (eager ones raised)


def accuracy(scores: Array, labels: Array, *, weights: Array | None = None) -> Array:
    """Fraction of examples with ``argmax(scores[i]) == labels[i]`` (weighted mean with ``weights``);
    ties go to the first maximal class, as ``argmax``. float32 scalar (wider with float64 weights)."""
    scores, labels = _check("accuracy", scores, labels)
    return _mean("accuracy", jnp.argmax(scores, axis=-1) == labels, weights, invalid(labels, scores.shape[-1]))


def top_k_accuracy(scores: Array, labels: Array, k: int = 5, *, weights: Array | None = None) -> Array:
    """Fraction of examples whose label is among the ``k`` highest scores (weighted mean with ``weights``);
    ties at the k-th score go to the lower class index, as ``jax.lax.top_k``."""
    scores, labels = _check("top_k_accuracy", scores, labels)
    n_classes = scores.shape[-1]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n_classes:
        raise ValueError(f"top_k_accuracy: k must be an int in [1, {n_classes}] (the class count), got {k!r}")
    _, idx = jax.lax.top_k(scores, k)
    hits = jnp.any(idx == labels[..., None], axis=-1)
    return _mean("top_k_accuracy", hits, weights, invalid(labels, n_classes))
