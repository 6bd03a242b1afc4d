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
    x = np.full((200, 500), 2.0, np.float32)
    y, state = jax.jit(lambda a, k: layer.apply({}, {}, a, train=True, key=k))(x, jax.random.PRNGKey(1))
    y = np.asarray(y)
    assert state == {} and y.dtype == np.float32
    dropped = np.mean(y == 0)
    # 100 000 Bernoulli(0.3) draws: std of the fraction ≈ 0.0015, so 0.01 is > 6 sigma.
    assert abs(dropped - rate) < 0.01
    np.testing.assert_allclose(y[y != 0], 2.0 / (1 - rate), rtol=1e-6)  # kept ones scaled by 1/(1-rate)
    assert abs(y.mean() - 2.0) < 0.03  # E[y] = x


def test_masks_depend_on_the_key_only():
    layer = Dropout(0.5)
    x = np.ones((64, 64), np.float32)
    run = jax.jit(lambda a, k: layer.apply({}, {}, a, train=True, key=k)[0])  # one program, called per key
    a, b, c = (np.asarray(run(x, jax.random.PRNGKey(seed))) for seed in (1, 1, 2))
    assert np.all(a == b) and not np.all(a == c)


def test_eval_is_identity_and_rate_zero_needs_no_key():
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    cases = ((Dropout(0.9), False), (Dropout(0.0), True), (Dropout(0), False))
    ys = jax.jit(lambda a: [layer.apply({}, {}, a, train=train)[0] for layer, train in cases])(x)
    for y in ys:
        assert np.all(np.asarray(y) == x)
    out, params, state = Dropout(0.5).init(KEY, (-1, 5))
    assert out == (-1, 5) and params == {} and state == {}


def test_gradient_is_the_scaled_mask_and_dtype_is_kept():
    layer = Dropout(0.25)
    key = jax.random.PRNGKey(3)
    x = np.ones((8, 16), np.float32)

    @jax.jit  # the gradient, the float32 and the bfloat16 outputs in one program
    def run(a):
        g = jax.grad(lambda xx: jnp.sum(layer.apply({}, {}, xx, train=True, key=key)[0]))(a)
        y, _ = layer.apply({}, {}, a, train=True, key=key)
        yb, _ = layer.apply({}, {}, a.astype(jnp.bfloat16), train=True, key=key)
        return g, y, yb

    g, y, yb = run(x)
    np.testing.assert_allclose(np.asarray(g), np.asarray(y), rtol=1e-6)  # x = 1: y is the scaled mask
    assert yb.dtype == jnp.bfloat16


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "0.5", True, None])
def test_rate_outside_0_1_is_an_error(rate):
    with pytest.raises(ValueError, match=r"Dropout: rate \(the probability of dropping\) must be a number in \[0, 1\)"):
        Dropout(rate)


def test_missing_key_in_training_is_an_error():
    with pytest.raises(ValueError, match="Dropout: train=True needs a PRNG key"):
        Dropout(0.5).apply({}, {}, jax.device_put(np.ones((2, 3), np.float32)), train=True)
    with pytest.raises(ValueError, match="Dropout: expected one input shape"):
        Dropout(0.5).init(KEY, ((2, 3), (2, 3)))
