"""The NumPy normalization oracles vs hand-computed values and torch.nn.functional (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jcnn import reference as R
from tests.helpers import from_torch_layout, to_torch_layout


def _x(shape, seed=0):
    return np.random.default_rng(seed).normal(1.0, 2.0, size=shape)


def _cl(fn, x, *args, **kw):
    return from_torch_layout(fn(to_torch_layout(x), *args, **kw))


def test_batch_norm_against_torch():
    x, s, b = _x((3, 4, 5, 2)), np.array([0.5, 2.0]), np.array([1.0, -1.0])
    np.testing.assert_allclose(
        R.batch_norm(x, s, b),
        _cl(F.batch_norm, x, None, None, torch.tensor(s), torch.tensor(b), training=True),
        rtol=1e-12,
        atol=1e-12,
    )
    mean, var = np.array([0.3, -0.1]), np.array([2.0, 0.5])
    np.testing.assert_allclose(
        R.batch_norm(x, s, b, mean=mean, var=var),
        _cl(F.batch_norm, x, torch.tensor(mean), torch.tensor(var), torch.tensor(s), torch.tensor(b), training=False),
        rtol=1e-12,
        atol=1e-12,
    )


def test_layer_instance_group_norm_against_torch():
    x = _x((2, 3, 4, 6))
    np.testing.assert_allclose(R.layer_norm(x), _cl(F.layer_norm, x, (6, 3, 4)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        R.layer_norm(x, axes=-1), F.layer_norm(torch.tensor(x), (6,)).numpy(), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(R.instance_norm(x), _cl(F.instance_norm, x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(R.group_norm(x, 3), _cl(F.group_norm, x, 3), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_local_response_norm_against_torch(size):
    x = _x((2, 3, 7))
    np.testing.assert_allclose(
        R.local_response_norm(x, size, 0.3, 0.75, 2.0), _cl(F.local_response_norm, x, size, 0.3, 0.75, 2.0), rtol=1e-12
    )


def test_normalization_axes_of_the_seed_table():
    """Batch: zero mean per channel; layer: per sample; instance: per sample and channel (seed §4)."""
    x = _x((4, 3, 5, 2))
    np.testing.assert_allclose(R.batch_norm(x).mean(axis=(0, 1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(R.batch_norm(x, eps=0).var(axis=(0, 1, 2)), 1, rtol=1e-12)
    np.testing.assert_allclose(R.layer_norm(x).mean(axis=(1, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(R.instance_norm(x, eps=0).var(axis=(1, 2)), 1, rtol=1e-12)


def test_local_contrast_norm_by_hand_with_borders():
    """u = [1, 2, 4, 8], uniform window of 3: the edge pixels average their two valid neighbours."""
    u = np.array([1.0, 2.0, 4.0, 8.0]).reshape(1, 4, 1)
    expected = [-1.0, -1 / np.sqrt(14), -2 / np.sqrt(56), 1.0]
    y = R.local_contrast_norm(u, 3, window="uniform", eps=0.0)
    np.testing.assert_allclose(y.ravel(), expected, rtol=1e-12)
    # Jarrett: v = u − μ, σ_j = sqrt(mean of v² over the valid neighbours), y = v / max(mean σ, σ_j)
    v = np.array([1 - 1.5, 2 - 7 / 3, 4 - 14 / 3, 8 - 6.0])
    sig = np.sqrt([(v[0] ** 2 + v[1] ** 2) / 2, (v[:3] ** 2).mean(), (v[1:] ** 2).mean(), (v[2] ** 2 + v[3] ** 2) / 2])
    y = R.local_contrast_norm(u, 3, window="uniform", divisive="max", eps=1e-12)
    np.testing.assert_allclose(y.ravel(), v / np.maximum(sig.mean(), sig), rtol=1e-12)
    np.testing.assert_allclose(R.local_contrast_norm(u, 3, window="uniform", divisive=None).ravel(), v, rtol=1e-12)


def test_local_contrast_norm_across_channels_pools_channels():
    """Across channels the statistics are shared: a channel-constant image equals its one-channel LCN."""
    one = _x((1, 5, 6, 1))
    three = np.repeat(one, 3, axis=-1)
    per = R.local_contrast_norm(one, 3, window="gaussian", sigma=1.0)
    pooled = R.local_contrast_norm(three, 3, window="gaussian", sigma=1.0, across_channels=True)
    np.testing.assert_allclose(pooled, np.repeat(per, 3, axis=-1), rtol=1e-12)


def test_window_weights():
    w = R.window_weights((3,), "gaussian", 1.0)
    np.testing.assert_allclose(w, np.exp([-0.5, 0.0, -0.5]) / np.exp([-0.5, 0.0, -0.5]).sum(), rtol=1e-12)
    np.testing.assert_allclose(R.window_weights((3, 3), "uniform"), np.full((3, 3), 1 / 9), rtol=1e-12)
    g = R.window_weights((5, 3), "gaussian")  # default sigma (size − 1)/4: 1 and 0.5
    outer = np.outer(np.exp(-(np.arange(-2, 3) ** 2) / 2), np.exp(-(np.arange(-1, 2) ** 2) / 0.5))
    np.testing.assert_allclose(g, outer / outer.sum(), rtol=1e-12)
