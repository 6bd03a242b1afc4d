"""The dense oracle ``y = x·W + b`` (seed §5.2): a hand-computed example, NumPy's matmul, leading axes."""

from __future__ import annotations

import numpy as np
import pytest

from jcnn import reference


def test_hand_computed_example():
    x = np.array([[1.0, 2.0]])
    W = np.array([[1.0, 0.0, -1.0], [2.0, 3.0, 0.5]])
    b = np.array([0.5, -1.0, 0.0])
    # y_j = x_0 W_0j + x_1 W_1j + b_j = [1 + 4 + 0.5, 0 + 6 - 1, -1 + 1 + 0]
    np.testing.assert_array_equal(reference.dense(x, W, b), [[5.5, 5.0, 0.0]])
    np.testing.assert_array_equal(reference.dense(x, W), [[5.0, 6.0, 0.0]])


def test_matches_numpy_matmul_with_leading_axes(rng):
    x = rng.standard_normal((2, 3, 5))
    W = rng.standard_normal((5, 4))
    b = rng.standard_normal(4)
    np.testing.assert_allclose(reference.dense(x, W, b), x @ W + b, rtol=1e-13)
    np.testing.assert_allclose(reference.dense(x[0, 0], W), x[0, 0] @ W, rtol=1e-13)


def test_error():
    with pytest.raises(ValueError, match="reference.dense: x has 3 features but W expects 5"):
        reference.dense(np.ones((2, 3)), np.ones((5, 4)))
