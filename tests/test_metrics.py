"""Accuracy and top-k accuracy against NumPy and scikit-learn."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import top_k_accuracy_score

from jcnn import metrics

R = np.random.default_rng(0)
SCORES = R.normal(size=(40, 7)).astype(np.float32)
LABELS = R.integers(0, 7, size=(40,))


def test_accuracy_matches_numpy():
    perfect = np.eye(7, dtype=np.float32)[LABELS]
    # one program for both; the labels are closed over, so they are concrete there and checked as in an eager call
    acc, acc_perfect = jax.jit(lambda s, p: (metrics.accuracy(s, LABELS), metrics.accuracy(p, LABELS)))(SCORES, perfect)
    assert float(acc) == pytest.approx(np.mean(SCORES.argmax(-1) == LABELS))
    assert float(acc_perfect) == 1.0


def test_accuracy_weighted_and_spatial():
    w = R.uniform(0.1, 2.0, size=(40,))
    hits = SCORES.argmax(-1) == LABELS
    s = SCORES.reshape(4, 10, 7)
    weighted, spatial = jax.jit(  # one program (labels closed over: concrete, so still checked)
        lambda scores, w, s: (metrics.accuracy(scores, LABELS, weights=w), metrics.accuracy(s, LABELS.reshape(4, 10)))
    )(SCORES, w, s)
    assert float(weighted) == pytest.approx(np.sum(w * hits) / np.sum(w))
    assert float(spatial) == pytest.approx(np.mean(hits))


@pytest.mark.parametrize("k", [1, 2, 5, 6])
def test_top_k_matches_sklearn(k):
    want = top_k_accuracy_score(LABELS, SCORES, k=k, labels=np.arange(7))
    assert float(jax.jit(metrics.top_k_accuracy, static_argnums=2)(SCORES, LABELS, k)) == pytest.approx(want)


def test_top_1_is_accuracy_and_dtype():
    a, acc, acc_bf16 = jax.jit(  # one program (labels closed over: concrete, so still checked)
        lambda s, h: (metrics.top_k_accuracy(s, LABELS, 1), metrics.accuracy(s, LABELS), metrics.accuracy(h, LABELS))
    )(SCORES, SCORES.astype(jnp.bfloat16))
    assert float(a) == pytest.approx(float(acc))
    assert a.dtype == jnp.float32
    assert acc_bf16.dtype == jnp.float32


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: metrics.accuracy(SCORES, LABELS[:5]), ValueError, r"accuracy: expected scores \(..., C\)"),
        (lambda: metrics.accuracy(SCORES, LABELS.astype(np.float32)), TypeError, "labels must be integer"),
        (lambda: metrics.accuracy(SCORES, LABELS, weights=np.ones(3)), ValueError, r"weights must have shape \(40,\)"),
        (lambda: metrics.top_k_accuracy(SCORES, LABELS, 0), ValueError, r"k must be an int in \[1, 7\]"),
        (lambda: metrics.top_k_accuracy(SCORES, LABELS, 8), ValueError, "the class count"),
        (
            lambda: metrics.accuracy(SCORES, np.where(LABELS == 3, -1, LABELS)),
            ValueError,
            r"accuracy: labels must be class indices in \[0, 7\).*got -1 at index",
        ),
        (
            lambda: metrics.top_k_accuracy(SCORES, np.where(LABELS == 3, 7, LABELS), 2),
            ValueError,
            r"top_k_accuracy: labels must be class indices in \[0, 7\).*got 7",
        ),
    ],
)
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_out_of_range_labels_under_jit_give_nan_not_a_lower_accuracy():
    bad = np.where(LABELS == 3, 9, LABELS)
    assert np.isnan(float(jax.jit(metrics.accuracy)(SCORES, bad)))
    assert np.isnan(float(jax.jit(metrics.top_k_accuracy, static_argnums=2)(SCORES, bad, 2)))
