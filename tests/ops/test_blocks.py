"""Tests of ``jcnn.ops.blocks``: stochastic depth (torchvision's ``stochastic_depth``) and squeeze-and-excitation
(``torchvision.ops.SqueezeExcitation``) against the NumPy reference and torch, value and gradient, and errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jcnn import ops, reference
from jcnn.interop.torch_twins_modern import SqueezeExcitation as TorchSE
from jcnn.interop.torch_twins_modern import stochastic_depth as torch_stochastic_depth
from tests.helpers import assert_close, from_torch_layout, to_torch_layout

KEY = jax.random.PRNGKey(0)


@pytest.mark.parametrize("mode, p", [("row", 0.3), ("batch", 0.5), ("row", 1.0)])
def test_stochastic_depth_is_the_reference_formula_with_its_mask(mode, p):
    x = np.random.default_rng(0).standard_normal((6, 3, 2, 4))
    dtypes = ((np.float64, 1e-15), (np.float32, 1e-7))

    @jax.jit  # the mask and both dtypes' value and vjp in one compile
    def run(key, xs):
        def value_and_vjp(a):
            y, vjp = jax.vjp(lambda a: ops.stochastic_depth(a, p, mode, key=key), a)
            return y, vjp(jnp.ones_like(y))[0]

        return ops.stochastic_depth_keep(key, x.shape, p, mode), [value_and_vjp(a) for a in xs]

    keep, results = run(KEY, [jnp.asarray(x.astype(dtype)) for dtype, _ in dtypes])
    assert keep.shape == ((6, 1, 1, 1) if mode == "row" else (1, 1, 1, 1)) and keep.dtype == jnp.bool_
    keep = np.asarray(keep)
    for (dtype, rtol), (y, dy) in zip(dtypes, results):
        assert y.dtype == dtype
        assert_close(y, reference.stochastic_depth(x.astype(dtype), keep, p), rtol=rtol, what="value")
        # d y / d x = mask / (1 − p): the reference applied to ones
        assert_close(dy, reference.stochastic_depth(np.ones_like(x), keep, p), rtol=rtol, what="gradient")


def test_stochastic_depth_matches_torch_semantics():
    """Same structure as torchvision's op (whole rows zeroed or scaled by 1/(1 − p), one coin per row, the
    batch mode all or nothing), drop rates near p, and identity in eval or at p = 0."""
    x = np.random.default_rng(1).standard_normal((4000, 3)).astype(np.float32) + 3.0
    eval_kwargs = ({"p": 0.5, "train": False}, {"p": 0.0})

    @jax.jit  # every call in one compile
    def run(a, key5, key):
        dropped = {mode: ops.stochastic_depth(a, 0.25, mode, key=key5) for mode in ("row", "batch")}
        identities = [ops.stochastic_depth(a, mode="row", **kwargs) for kwargs in eval_kwargs]
        return dropped, identities, ops.stochastic_depth(a, 1.0, key=key)

    dropped, identities, all_dropped = run(jnp.asarray(x), jax.random.PRNGKey(5), KEY)
    for mode in ("row", "batch"):
        for y in (
            np.asarray(dropped[mode]),
            torch_stochastic_depth(torch.from_numpy(x), 0.25, mode, True).numpy(),
        ):
            ratio = y / x
            assert np.all(np.isclose(ratio, 0) | np.isclose(ratio, 1 / 0.75, rtol=1e-6))
            kept = ratio > 0.5
            assert np.all(kept == kept[:, :1])  # one coin per row
            if mode == "batch":
                assert kept.all() or not kept.any()
            else:  # 4000 Bernoulli(0.25) rows: std of the rate 0.007, 0.03 is > 4 sigma
                assert abs(np.mean(ratio[:, 0] == 0) - 0.25) < 0.03
    for y in identities:
        np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(torch_stochastic_depth(torch.from_numpy(x), 1.0, "row", True).numpy(), 0 * x)
    np.testing.assert_array_equal(all_dropped, 0 * x)


def test_stochastic_depth_under_jit_and_errors():
    x = jnp.asarray(np.ones((8, 5)))  # jnp.ones would be an eager compile
    jitted = jax.jit(lambda k, a: ops.stochastic_depth(a, 0.5, key=k))(KEY, x)
    np.testing.assert_array_equal(jitted, ops.stochastic_depth(x, 0.5, key=KEY))
    with pytest.raises(
        ValueError,
        match=r"stochastic_depth: p \(the probability of dropping\) must be a number in "
        r"\[0, 1\], got 1.5",
    ):
        ops.stochastic_depth(x, 1.5, key=KEY)
    with pytest.raises(ValueError, match="stochastic_depth: mode must be 'row' or 'batch', got 'col'"):
        ops.stochastic_depth(x, 0.5, "col", key=KEY)
    with pytest.raises(ValueError, match="stochastic_depth: train=True with p > 0 needs a PRNG key"):
        ops.stochastic_depth(x, 0.5)


def _se_case(seed: int, scale: type, c: int = 8, s: int = 3):
    g = torch.Generator().manual_seed(seed)
    net = TorchSE(c, s, scale_activation=scale).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    w1 = net.fc1.weight.detach().numpy()[:, :, 0, 0].T  # (C, S)
    w2 = net.fc2.weight.detach().numpy()[:, :, 0, 0].T  # (S, C)
    return net, (w1, net.fc1.bias.detach().numpy(), w2, net.fc2.bias.detach().numpy())


# torch's hardsigmoid backward multiplies by the float literal 1.0f/6.0f even in float64 (3e-8 off 1/6)
@pytest.mark.parametrize("gate, grad_rtol", [("sigmoid", 1e-12), ("hard_sigmoid", 1e-7)])
def test_squeeze_excitation_matches_reference_and_torch_with_gradients(gate, grad_rtol):
    net, weights = _se_case(0, torch.nn.Sigmoid if gate == "sigmoid" else torch.nn.Hardsigmoid)
    x = np.random.default_rng(2).standard_normal((2, 5, 4, 8))
    cot = np.random.default_rng(3).standard_normal(x.shape)

    def f(a, *w):
        return ops.squeeze_excitation(a, *w, scale_activation=getattr(ops, gate))

    # 1×1 conv kernels (1, 1, C, S) are accepted as they are
    conv_weights = (weights[0][None, None], weights[1], weights[2][None, None], weights[3])

    @jax.jit  # float64 value and vjp, float32 value and the 1x1-kernel value in one compile
    def run(x, weights, x32, weights32, conv_weights, cot):
        y, vjp = jax.vjp(f, x, *weights)
        return y, vjp(cot), f(x32, *weights32), f(x, *conv_weights)

    y, grads, y32, y_conv = run(
        x, weights, x.astype(np.float32), tuple(w.astype(np.float32) for w in weights), conv_weights, cot
    )
    ref = reference.squeeze_excitation(x, *weights, scale_activation=getattr(reference, gate))
    assert_close(y, ref, rtol=1e-12, what="float64 vs reference")
    xt = to_torch_layout(x).requires_grad_(True)
    out = net(xt)
    out.backward(to_torch_layout(cot))
    assert_close(y, from_torch_layout(out), rtol=1e-12, what="float64 vs torch")
    gx, gw1, gb1, gw2, gb2 = grads
    assert_close(gx, from_torch_layout(xt.grad), rtol=grad_rtol, what="grad x")
    assert_close(gw1, net.fc1.weight.grad.numpy()[:, :, 0, 0].T, rtol=grad_rtol, what="grad fc1 weight")
    assert_close(gb1, net.fc1.bias.grad.numpy(), rtol=grad_rtol, what="grad fc1 bias")
    assert_close(gw2, net.fc2.weight.grad.numpy()[:, :, 0, 0].T, rtol=grad_rtol, what="grad fc2 weight")
    assert_close(gb2, net.fc2.bias.grad.numpy(), rtol=grad_rtol, what="grad fc2 bias")
    assert y32.dtype == jnp.float32
    assert_close(y32, ref, what="float32 vs reference")
    assert_close(y_conv, y, rtol=1e-15, what="1x1 kernels")


def test_squeeze_excitation_errors():
    def ones(shape):  # jnp.ones would be an eager compile per shape
        return jnp.asarray(np.ones(shape))

    x = ones((2, 3, 3, 4))
    w = (ones((4, 2)), ones(2), ones((2, 4)), ones(4))
    with pytest.raises(
        ValueError, match=r"squeeze_excitation: expected an input \(N, \*spatial, C\), got shape \(2, 4\)"
    ):
        ops.squeeze_excitation(ones((2, 4)), *w)
    with pytest.raises(ValueError, match=r"for C=5 input channels expected fc1 \(C, S\)"):
        ops.squeeze_excitation(ones((2, 3, 3, 5)), *w)
    with pytest.raises(ValueError, match=r"fc1_kernel must be \(in, out\) or a 1x1 conv kernel"):
        ops.squeeze_excitation(x, ones((3, 3, 4, 2)), *w[1:])
