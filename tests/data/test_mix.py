"""Tests of mixup / cutmix (``jcnn.data.augment``): label mixing exact under jit (the targets' weights are the
image's own mixing weights: the pasted box's pixel share for cutmix), timm's batch-mode semantics
(partner = the mirrored batch, label smoothing, prob, switch), and errors (all under jit: eager
runs compile op by op)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jcnn.data import cutmix, mix_batch, mixup, soft_targets

N, H, W, K = 6, 10, 7, 5
# image n is the constant n + 1 in every pixel and channel: the source of a mixed pixel is readable
IMAGES = jnp.asarray(np.arange(1, N + 1, dtype=np.float32)[:, None, None, None] * np.ones((N, H, W, 2), np.float32))
LABELS = jnp.asarray([0, 1, 2, 3, 4, 0])


@functools.cache
def _jitted(name: str, **kw):
    fn = {"mixup": mixup, "cutmix": cutmix, "mix_batch": mix_batch}[name]
    return jax.jit(lambda key, x, y: fn(key, x, y, K, **kw))


def _onehot(labels, smoothing=0.0):
    return np.eye(K, dtype=np.float32)[np.asarray(labels)] * np.float32(1 - smoothing) + np.float32(smoothing / K)


@pytest.mark.parametrize("seed", range(4))
def test_cutmix_targets_are_the_pasted_pixel_share_exactly(seed):
    key = jax.random.PRNGKey(seed)
    mixed, targets = _jitted("cutmix")(key, IMAGES, LABELS)
    mixed = np.asarray(mixed)
    partner = np.arange(N)[::-1] + 1.0
    from_partner = mixed[..., 0] == partner[:, None, None]
    assert np.all(from_partner | (mixed[..., 0] == np.arange(1, N + 1)[:, None, None]))
    assert np.all(from_partner == from_partner[0])  # one box for the whole batch
    rows, cols = np.nonzero(from_partner[0])
    if rows.size:  # a rectangle
        assert from_partner[0, rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()
    lam = np.float32(1) - np.float32(from_partner[0].sum()) / np.float32(H * W)
    expected = _onehot(LABELS) * lam + _onehot(LABELS)[::-1] * (np.float32(1) - lam)
    np.testing.assert_array_equal(np.asarray(targets), expected)  # bit for bit, under jit
    assert targets.dtype == jnp.float32 and mixed.dtype == np.float32


@pytest.mark.parametrize("seed", range(3))
def test_mixup_targets_use_the_images_weight(seed):
    key = jax.random.PRNGKey(seed)
    mixed, targets = _jitted("mixup", label_smoothing=0.1)(key, IMAGES, LABELS)
    mixed = np.asarray(mixed, np.float64)[:, 0, 0, 0]
    own, partner = np.arange(1, N + 1.0), np.arange(N, 0, -1.0)
    lam = (mixed[0] - partner[0]) / (own[0] - partner[0])  # λ read off image 0
    np.testing.assert_allclose(mixed, lam * own + (1 - lam) * partner, rtol=1e-6)
    expected = _onehot(LABELS, 0.1) * lam + _onehot(LABELS, 0.1)[::-1] * (1 - lam)
    np.testing.assert_allclose(np.asarray(targets), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(targets).sum(-1), 1.0, rtol=1e-6)


def test_mix_batch_switches_and_prob():
    seen = set()
    for seed in range(12):
        mixed, targets = _jitted("mix_batch")(jax.random.PRNGKey(seed), IMAGES, LABELS)
        values = np.unique(np.asarray(mixed)[0])
        seen.add("cutmix" if np.all(np.isin(values, [1.0, float(N)])) else "mixup")
        np.testing.assert_allclose(np.asarray(targets).sum(-1), 1.0, rtol=1e-6)
    assert seen == {"cutmix", "mixup"}
    off, targets = _jitted("mix_batch", prob=0.0, label_smoothing=0.2)(jax.random.PRNGKey(0), IMAGES, LABELS)
    np.testing.assert_array_equal(off, IMAGES)
    np.testing.assert_allclose(targets, _onehot(LABELS, 0.2), rtol=1e-6)
    only_cut, _ = _jitted("mix_batch", mixup_alpha=0.0)(jax.random.PRNGKey(1), IMAGES, LABELS)
    assert np.all(np.isin(np.asarray(only_cut)[0], [1.0, float(N)]))


def test_soft_labels_pass_through_and_errors():
    probs = _onehot(LABELS)
    np.testing.assert_array_equal(soft_targets(probs), probs)  # what mixup/cutmix then mix
    np.testing.assert_allclose(soft_targets(probs, label_smoothing=0.5), _onehot(LABELS, 0.5), rtol=1e-6)
    np.testing.assert_allclose(soft_targets(LABELS, K, 0.5), _onehot(LABELS, 0.5), rtol=1e-6)
    with pytest.raises(ValueError, match=r"soft_targets: integer labels need num_classes"):
        mixup(jax.random.PRNGKey(0), IMAGES, LABELS)
    with pytest.raises(ValueError, match=r"mixup: alpha \(of the Beta\(alpha, alpha\) mixing weight\) must be"):
        mixup(jax.random.PRNGKey(0), IMAGES, LABELS, K, alpha=0.0)
    with pytest.raises(ValueError, match=r"cutmix: expected a batch of images \(N, H, W, C\)"):
        cutmix(jax.random.PRNGKey(0), IMAGES[0], LABELS, K)
    with pytest.raises(ValueError, match="mix_batch: expected one label per image, got 5 labels for 6 images"):
        mix_batch(jax.random.PRNGKey(0), IMAGES, LABELS[:5], K)
    with pytest.raises(ValueError, match="mix_batch: needs mixup_alpha > 0 or cutmix_alpha > 0"):
        mix_batch(jax.random.PRNGKey(0), IMAGES, LABELS, K, mixup_alpha=0.0, cutmix_alpha=0.0)
