"""Tests of ``jcnn.layers.activations``. Activation layers vs their torch.nn twins (forward, input gradient, PReLU's weight gradient), and errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jcnn.layers as L
from tests.helpers import assert_close
from tests.layers._util import jax_forward_backward, random, torch_forward_backward

KEY = jax.random.PRNGKey(0)
nn = torch.nn
SHAPE = (2, 4, 3, 5)


CASES = [
    (L.Relu, nn.ReLU(), True),
    (L.Relu6, nn.ReLU6(), True),
    (L.Sigmoid, nn.Sigmoid(), True),
    (L.Tanh, nn.Tanh(), True),
    (L.Silu, nn.SiLU(), True),
    (L.HardTanh, nn.Hardtanh(), True),
    (L.HardSigmoid, nn.Hardsigmoid(), True),
    (L.HardSwish, nn.Hardswish(), True),
    (L.LeakyRelu(0.2), nn.LeakyReLU(0.2), True),
    (L.LeakyRelu(), nn.LeakyReLU(), True),
    (L.Elu(0.7), nn.ELU(0.7), True),
    (L.Gelu(), nn.GELU(), True),
    (L.Gelu(True), nn.GELU("tanh"), True),
    (L.Softplus(2.0, 3.0), nn.Softplus(2.0, 3.0), True),
    # channels-last axis -1 is torch's dim 1 on the channels-first view
    (L.Softmax(), nn.Softmax(dim=1), True),
    (L.LogSoftmax(), nn.LogSoftmax(dim=1), True),
    # any other axis: compare on the same (untransposed) array
    (L.Softmax(axis=1), nn.Softmax(dim=1), False),
    (L.LogSoftmax(axis=2), nn.LogSoftmax(dim=2), False),
]


@pytest.mark.parametrize(
    "layer, module, channels_last", CASES, ids=[f"{c[1].__class__.__name__}-{i}" for i, c in enumerate(CASES)]
)
def test_activation_matches_torch(layer, module, channels_last):
    out, params, state = layer.init(KEY, SHAPE)
    assert out == SHAPE and params == {} and state == {}
    # 3x spread, so that relu6/hardtanh/softplus's threshold see both sides
    x, cot = 3 * random(SHAPE, 1), random(SHAPE, 2)
    y, _, gx = jax_forward_backward(layer, params, x, cot)
    ty, tgx, _ = torch_forward_backward(module, x, cot, channels_last=channels_last)
    assert y.dtype == np.float32
    assert_close(y, ty, what="forward")
    assert_close(gx, tgx, what="grad x")


@pytest.mark.parametrize("num_parameters", [1, 5])
def test_prelu_matches_torch_with_weight_gradient(num_parameters):
    layer = L.PRelu(num_parameters, init=0.3)
    _, params, _ = layer.init(KEY, SHAPE)
    assert set(params) == {"alpha"} and params["alpha"].shape == (num_parameters,)
    assert np.all(np.asarray(params["alpha"]) == np.float32(0.3))
    params = {"alpha": random((num_parameters,), 3)}
    module = nn.PReLU(num_parameters)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(np.array(params["alpha"])))
    x, cot = random(SHAPE, 4), random(SHAPE, 5)
    y, gp, gx = jax_forward_backward(layer, params, x, cot)
    ty, tgx, tg = torch_forward_backward(module, x, cot)
    assert_close(y, ty, what="forward")
    assert_close(gx, tgx, what="grad x")
    assert_close(gp["alpha"], tg["weight"], what="grad alpha")


def test_ready_values_are_their_own_constructors():
    for layer in (L.Relu, L.Relu6, L.Sigmoid, L.Tanh, L.Silu, L.HardTanh, L.HardSigmoid, L.HardSwish):
        assert isinstance(layer, L.Layer) and layer() is layer
    assert L.serial(L.Relu(), L.Tanh).init(KEY, (2, 3))[0] == (2, 3)
    assert L.Relu.kind == "Relu" and L.HardTanh.kind == "HardTanh" and L.LeakyRelu().kind == "LeakyRelu"
    assert L.Relu.prefix == "relu" and L.HardTanh.prefix == "hard_tanh" and L.LeakyRelu().prefix == "leaky_relu"
    assert L.PRelu().prefix == "prelu" and L.LPPool(2, 2).prefix == "lp_pool"
    assert L.HardSwish.prefix == "hard_swish" and L.HardSigmoid.kind == "HardSigmoid"
    with pytest.raises(
        TypeError,
        match=r"Relu\(0.1\): Relu takes no arguments: it is a ready layer \(Relu and "
        r"Relu\(\) are the same layer\); for a negative slope use LeakyRelu",
    ):
        L.Relu(0.1)


def test_dtype_is_preserved():
    x = random((2, 3), 6).astype(np.float16)
    _, params, _ = L.PRelu().init(KEY, (2, 3))
    layers = (L.Gelu(), L.Softplus(), L.LogSoftmax(), L.Elu())

    @jax.jit  # the five applies in one program
    def run(p, xx):
        return [layer.apply({}, {}, xx, train=False)[0] for layer in layers] + [
            L.PRelu().apply(p, {}, xx, train=False)[0]
        ]

    for y in run(params, x):
        assert y.dtype == jnp.float16


def test_errors():
    with pytest.raises(ValueError, match=r"PRelu: num_parameters=4 must be 1 \(shared\) or the channel count C=5"):
        L.PRelu(4).init(KEY, SHAPE)
    with pytest.raises(ValueError, match="PRelu: num_parameters must be an int >= 1, got 0"):
        L.PRelu(0)
    layer = L.PRelu(5)
    _, params, _ = layer.init(KEY, SHAPE)
    with pytest.raises(ValueError, match=r"PRelu: alpha of shape \(5,\) does not fit .*got input shape \(2, 3\)"):
        layer.apply(params, {}, jax.device_put(np.ones((2, 3), np.float32)), train=False)
    with pytest.raises(ValueError, match=r"Softmax: axis 3 is out of range for an input of shape \(2, 3, 4\)"):
        L.Softmax(axis=3).init(KEY, (2, 3, 4))
    with pytest.raises(TypeError, match="LogSoftmax: axis must be an int"):
        L.LogSoftmax(axis=1.0)
    with pytest.raises(ValueError, match=r"Relu: every non-batch dim must be >= 1, got shape \(2, 0\)"):
        L.Relu.init(KEY, (2, 0))
