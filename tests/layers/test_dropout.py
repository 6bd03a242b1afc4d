"""Tests of ``jcnn.layers.dropout``. Dropout: inverted-dropout statistics, determinism per key, eval identity, gradients and errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jcnn.layers import Dropout

KEY = jax.random.PRNGKey(0)


def test_training_statistics_and_scaling():
    rate = 0.3
    layer = Dropout(rate)
    x = jnp.full((200, 500), 2.0, jnp.float32)
    y, state = layer.apply({}, {}, x, train=True, key=jax.random.PRNGKey(1))
    y = np.asarray(y)
    assert state == {} and y.dtype == np.float32
    dropped = np.mean(y == 0)
    # 100 000 Bernoulli(0.3) draws: std of the fraction ≈ 0.0015, so 0.01 is > 6 sigma.
    assert abs(dropped - rate) < 0.01
    np.testing.assert_allclose(y[y != 0], 2.0 / (1 - rate), rtol=1e-6)  # kept ones scaled by 1/(1-rate)
    assert abs(y.mean() - 2.0) < 0.03  # E[y] = x


def test_masks_depend_on_the_key_only():
    layer = Dropout(0.5)
    x = jnp.ones((64, 64), jnp.float32)
    a, _ = layer.apply({}, {}, x, train=True, key=jax.random.PRNGKey(1))
    b, _ = layer.apply({}, {}, x, train=True, key=jax.random.PRNGKey(1))
    c, _ = layer.apply({}, {}, x, train=True, key=jax.random.PRNGKey(2))
    assert bool(jnp.all(a == b)) and not bool(jnp.all(a == c))


def test_eval_is_identity_and_rate_zero_needs_no_key():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 5)), jnp.float32)
    for layer, train in ((Dropout(0.9), False), (Dropout(0.0), True), (Dropout(0), False)):
        y, _ = layer.apply({}, {}, x, train=train)
        assert bool(jnp.all(y == x))
    out, params, state = Dropout(0.5).init(KEY, (-1, 5))
    assert out == (-1, 5) and params == {} and state == {}


def test_gradient_is_the_scaled_mask_and_dtype_is_kept():
    layer = Dropout(0.25)
    key = jax.random.PRNGKey(3)
    x = jnp.ones((8, 16), jnp.float32)
    g = jax.grad(lambda xx: jnp.sum(layer.apply({}, {}, xx, train=True, key=key)[0]))(x)
    y, _ = layer.apply({}, {}, x, train=True, key=key)
    np.testing.assert_allclose(np.asarray(g), np.asarray(y), rtol=1e-6)  # x = 1: y is the scaled mask
    yb, _ = layer.apply({}, {}, x.astype(jnp.bfloat16), train=True, key=key)
    assert yb.dtype == jnp.bfloat16


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "0.5", True, None])
def test_rate_outside_0_1_is_an_error(rate):
    with pytest.raises(ValueError, match=r"Dropout: rate \(the probability of dropping\) must be a number in \[0, 1\)"):
        Dropout(rate)


def test_missing_key_in_training_is_an_error():
    with pytest.raises(ValueError, match="Dropout: train=True needs a PRNG key"):
        Dropout(0.5).apply({}, {}, jnp.ones((2, 3), jnp.float32), train=True)
    with pytest.raises(ValueError, match="Dropout: expected one input shape"):
        Dropout(0.5).init(KEY, ((2, 3), (2, 3)))
