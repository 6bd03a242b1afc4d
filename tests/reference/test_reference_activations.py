"""Tests of ``jcnn.reference.activations``. The activation oracle itself: hand values from the seed's formulas (§3) and torch in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jcnn import reference

X = np.array([-1e4, -30.0, -6.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 2.5, 6.0, 7.0, 20.0, 20.5, 30.0, 1e4])

TORCH = [
    ("relu", {}, F.relu),
    ("relu6", {}, F.relu6),
    ("leaky_relu", {"negative_slope": 0.1}, lambda t: F.leaky_relu(t, 0.1)),
    ("elu", {"alpha": 0.7}, lambda t: F.elu(t, 0.7)),
    ("gelu", {}, F.gelu),
    ("gelu", {"approximate": True}, lambda t: F.gelu(t, approximate="tanh")),
    ("silu", {}, F.silu),
    ("softplus", {}, F.softplus),
    ("softplus", {"beta": 2.0, "threshold": 5.0}, lambda t: F.softplus(t, 2.0, 5.0)),
    ("sigmoid", {}, torch.sigmoid),
    ("tanh", {}, torch.tanh),
    ("hard_tanh", {"min_val": -2.0, "max_val": 0.5}, lambda t: F.hardtanh(t, -2.0, 0.5)),
    ("hard_sigmoid", {}, F.hardsigmoid),
    ("hard_swish", {}, F.hardswish),
    ("softmax", {}, lambda t: F.softmax(t, -1)),
    ("log_softmax", {}, lambda t: F.log_softmax(t, -1)),
]


@pytest.mark.parametrize("name,kw,tfn", TORCH, ids=[f"{c[0]}{c[1] or ''}" for c in TORCH])
def test_matches_torch_float64(name, kw, tfn):
    want = tfn(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(getattr(reference, name)(X, **kw), want, rtol=1e-13, atol=1e-300)


def test_hand_values_from_the_seed_formulas():
    np.testing.assert_array_equal(reference.relu([-3.0, 0.0, 2.5]), [0.0, 0.0, 2.5])  # max(0, x)
    np.testing.assert_allclose(reference.sigmoid([0.0, math.log(3)]), [0.5, 0.75])  # 1/(1+e^-x)
    np.testing.assert_allclose(reference.tanh([0.0, math.log(2)]), [0.0, 0.6])  # (2 - 1/2)/(2 + 1/2) at x = ln 2
    np.testing.assert_array_equal(reference.sigmoid([-1e4, 1e4]), [0.0, 1.0])
    np.testing.assert_array_equal(reference.tanh([-1e4, 1e4]), [-1.0, 1.0])
    np.testing.assert_allclose(reference.elu([-math.log(2)], alpha=2.0), [-1.0])  # 2(1/2 - 1)
    np.testing.assert_allclose(reference.softplus([0.0]), [math.log(2)])
    np.testing.assert_allclose(reference.gelu([1.0]), [0.5 * (1 + math.erf(1 / math.sqrt(2)))])
    np.testing.assert_allclose(reference.softmax([[0.0, math.log(3)]]), [[0.25, 0.75]])
    np.testing.assert_allclose(reference.log_softmax([[0.0, 0.0]], axis=-1), [[-math.log(2)] * 2])
    np.testing.assert_allclose(reference.softmax([[1.0, 5.0], [1.0, 5.0]], axis=0), [[0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_allclose(reference.hard_swish([-4.0, -3.0, -1.0, 3.0, 5.0]), [0.0, 0.0, -1 / 3, 3.0, 5.0])
    np.testing.assert_allclose(reference.hard_sigmoid([-3.0, 0.0, 1.5, 3.0]), [0.0, 0.5, 0.75, 1.0])


def test_prelu_per_channel_and_scalar():
    x = np.array([[-1.0, -2.0, 3.0], [0.0, -4.0, -1.0]])
    np.testing.assert_allclose(reference.prelu(x, [0.1, 0.2, 0.3]), [[-0.1, -0.4, 3.0], [0.0, -0.8, -0.3]])
    np.testing.assert_allclose(reference.prelu(x, 0.5), [[-0.5, -1.0, 3.0], [0.0, -2.0, -0.5]])
