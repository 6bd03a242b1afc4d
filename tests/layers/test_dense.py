"""Dense vs torch.nn.Linear (leading axes, forward and gradients), torch's default init bounds, errors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jcnn.layers import Dense
from tests.helpers import assert_close
from tests.layers._util import jax_forward_backward, random, torch_forward_backward

KEY = jax.random.PRNGKey(0)


@pytest.mark.parametrize("shape, use_bias", [((3, 7), True), ((2, 3, 4, 7), True), ((5, 7), False)])
def test_dense_matches_torch_linear(shape, use_bias):
    layer = Dense(6, use_bias=use_bias)
    out, params, state = layer.init(KEY, shape)
    assert out == shape[:-1] + (6,) and state == {}
    assert set(params) == ({"kernel", "bias"} if use_bias else {"kernel"})
    linear = torch.nn.Linear(7, 6, bias=use_bias)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(np.array(params["kernel"]).T.copy()))
        if use_bias:
            linear.bias.copy_(torch.from_numpy(np.array(params["bias"])))
    x, cot = random(shape, 1), random(out, 2)
    y, gp, gx = jax_forward_backward(layer, params, x, cot)
    ty, tgx, tg = torch_forward_backward(linear, x, cot, channels_last=False)
    assert_close(y, ty, what="forward")
    assert_close(gx, tgx, what="grad x")
    assert_close(gp["kernel"], tg["weight"].T, what="grad kernel")
    if use_bias:
        assert_close(gp["bias"], tg["bias"], what="grad bias")


def test_default_init_follows_torch_bounds():
    fan_in = 300
    _, params, _ = Dense(100).init(KEY, (1, fan_in))
    bound = 1 / math.sqrt(fan_in)
    w = np.asarray(params["kernel"], np.float64)
    assert w.shape == (fan_in, 100)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(w.std() / (bound / math.sqrt(3)) - 1) < 0.03  # 30 000 samples
    b = np.asarray(params["bias"])
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.8 * bound
    torch_fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(torch.nn.Linear(fan_in, 100).weight)
    assert torch_fan_in == fan_in


def test_bfloat16_and_integer_inputs():
    layer = Dense(3)
    _, params, _ = layer.init(KEY, (2, 4))
    y, _ = layer.apply(params, {}, jnp.ones((2, 4), jnp.bfloat16), train=False)
    assert y.dtype == jnp.bfloat16
    y, _ = layer.apply(params, {}, jnp.ones((2, 4), jnp.int32), train=False)
    assert y.dtype == jnp.float32


def test_errors():
    for bad in (0, -3, 2.0, True):
        with pytest.raises(ValueError, match="Dense: features must be an int >= 1"):
            Dense(bad)
    with pytest.raises(ValueError, match=r"Dense: expected an input of rank >= 1 \(..., in_features\), got shape \(\)"):
        Dense(3).init(KEY, ())
    layer = Dense(3)
    _, params, _ = layer.init(KEY, (2, 4))
    with pytest.raises(ValueError, match=r"Dense: expected an input whose last dim is 4 .*got shape \(2, 5\)"):
        layer.apply(params, {}, jnp.ones((2, 5), jnp.float32), train=False)
