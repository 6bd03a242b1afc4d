"""Tests of ``jcnn.layers.blocks`` and ``StochasticDepth``: squeeze-and-excitation, layer scale and stochastic
depth against torchvision-structured torch modules (keys through ``import_state_dict``, forward and
gradients), ConvNeXt's LayerNorm2d as ``LayerNorm(axes=-1)``, and errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jcnn.layers as L
from jcnn import reference
from jcnn.interop.torch import export_state_dict, import_state_dict
from jcnn.interop.torch_twins_modern import LayerNorm2d
from jcnn.interop.torch_twins_modern import SqueezeExcitation as TorchSE
from tests.helpers import assert_close, from_torch_layout, to_torch_layout

KEY = jax.random.PRNGKey(0)


def _randomize(module: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) + 0.5)


def _compare(layer, module, x, cot, rtol=1e-12):
    """float64: import the module's state_dict into ``layer`` (strict keys), compare forward and the gradients
    of ``Σ y·cot`` w.r.t. the input and every parameter (exported back to torch's keys and layouts)."""
    module = module.double()
    params, state = import_state_dict(layer, module.state_dict(), input_shape=x.shape)

    @jax.jit  # forward, the float64 cast and the VJP in one program (a VJP called outside runs eagerly)
    def run(p, xx, c):
        p = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), p)
        y, vjp = jax.vjp(lambda q, a: layer.apply(q, state, a, train=False)[0], p, xx)
        return y, vjp(c)

    y, (gp, gx) = run(params, x, cot)  # NumPy in: jnp.asarray would compile a `stage` per shape
    xt = to_torch_layout(x).requires_grad_(True)
    out = module(xt)
    out.backward(to_torch_layout(cot))
    assert_close(y, from_torch_layout(out), rtol=rtol, what="forward")
    assert_close(gx, from_torch_layout(xt.grad), rtol=rtol, what="grad x")
    exported = export_state_dict(layer, gp, state, input_shape=x.shape)
    for name, p in module.named_parameters():
        assert_close(exported[name], p.grad.numpy(), rtol=rtol, what=f"grad {name}")
    return params


def test_squeeze_excitation_is_torchvisions_module():
    layer = L.SqueezeExcitation(6, 3, activation=L.Silu)
    module = TorchSE(6, 3, activation=torch.nn.SiLU)
    _randomize(module, 0)
    rng = np.random.default_rng(0)
    x, cot = rng.standard_normal((2, 4, 5, 6)), rng.standard_normal((2, 4, 5, 6))
    params = _compare(layer, module, x, cot)
    assert set(params) == {"avgpool", "fc1", "activation", "fc2", "scale_activation"}
    assert params["fc1"]["kernel"].shape == (1, 1, 6, 3) and params["fc2"]["bias"].shape == (6,)
    from jcnn.inspection.summary import summary

    assert summary(layer, (1, 4, 5, 6)).macs == 2 * 6 * 3
    assert repr(layer).startswith("SqueezeExcitation(\n  6, 3\n  (avgpool): AdaptiveAvgPool(1, spatial_dims=2)")


def test_layer_scale_is_a_bare_torch_parameter():
    class Scaled(torch.nn.Module):  # torchvision's CNBlock keeps its γ as a parameter (C, 1, 1)
        def __init__(self) -> None:
            super().__init__()
            self.layer_scale = torch.nn.Parameter(torch.full((4, 1, 1), 1e-6))

        def forward(self, x):
            return self.layer_scale * x

    layer = L.serial(("layer_scale", L.LayerScale()))
    module = Scaled()
    _, params, state = layer.init(KEY, (2, 3, 3, 4))
    assert params["layer_scale"]["scale"].shape == (1, 1, 4)
    assert np.all(np.asarray(params["layer_scale"]["scale"]) == np.float32(1e-6))
    assert set(export_state_dict(layer, params, state, input_shape=(2, 3, 3, 4))) == {"layer_scale"}
    _randomize(module, 1)
    rng = np.random.default_rng(1)
    x, cot = rng.standard_normal((2, 3, 3, 4)), rng.standard_normal((2, 3, 3, 4))
    params = _compare(layer, module, x, cot)
    gamma = np.asarray(params["layer_scale"]["scale"])
    np.testing.assert_allclose(
        jax.jit(lambda g, a: L.LayerScale().apply({"scale": g}, {}, a, train=False)[0])(gamma, x),
        reference.layer_scale(x, gamma),
        rtol=1e-15,
    )
    # rank follows the input: (N, C) → (C,)
    assert L.LayerScale(0.5).init(KEY, (3, 7))[1]["scale"].shape == (7,)


def test_layer_norm_over_channels_is_convnexts_layer_norm_2d():
    layer = L.LayerNorm(axes=-1, eps=1e-6)
    module = LayerNorm2d(5, eps=1e-6)
    _randomize(module, 2)
    rng = np.random.default_rng(2)
    x, cot = 3 + rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 4, 5))
    _compare(layer, module, x, cot)


def test_stochastic_depth_layer_on_a_residual_branch():
    block = L.residual(L.serial(L.Dense(3), L.StochasticDepth(0.5)))
    x_np = np.random.default_rng(3).standard_normal((64, 3)).astype(np.float32)
    x = jax.device_put(x_np)
    _, params, state = block.init(KEY, x.shape)

    @jax.jit  # the branch alone, the block in eval and in training, in one program
    def run(p, a):
        branch = L.Dense(3).apply(p["block"]["dense_0"], {}, a, train=False)[0]
        y_eval, _ = block.apply(p, state, a, train=False)
        y, _ = block.apply(p, state, a, train=True, key=jax.random.PRNGKey(7))
        return branch, y_eval, y

    branch, y_eval, y = (np.asarray(a) for a in run(params, x))
    np.testing.assert_allclose(y_eval, x_np + branch, rtol=1e-6)
    dropped = np.all(np.isclose(y, x_np), axis=1)
    kept = np.all(np.isclose(y, x_np + 2 * branch, rtol=1e-5), axis=1)
    assert np.all(dropped | kept) and 10 < dropped.sum() < 54  # each row: skipped, or its branch doubled
    with pytest.raises(ValueError, match="StochasticDepth: train=True needs a PRNG key"):
        L.StochasticDepth(0.2).apply({}, {}, x, train=True)
    assert L.StochasticDepth(0.0).apply({}, {}, x, train=True)[0] is x
    assert repr(L.StochasticDepth(0.1, "batch")) == "StochasticDepth(0.1, mode='batch')"


def test_errors():
    with pytest.raises(ValueError, match="SqueezeExcitation: squeeze_channels must be an int >= 1, got 0"):
        L.SqueezeExcitation(4, 0)
    with pytest.raises(TypeError, match=r"SqueezeExcitation: activation must be a Layer \(e.g. jcnn.Relu\)"):
        L.SqueezeExcitation(4, 2, activation=jax.nn.relu)
    with pytest.raises(ValueError, match=r"SqueezeExcitation: expected 4 input channels \(channels=4\), got shape"):
        L.SqueezeExcitation(4, 2).init(KEY, (1, 3, 3, 5))
    with pytest.raises(ValueError, match="LayerScale: init_value must be a finite number, got nan"):
        L.LayerScale(float("nan"))
    with pytest.raises(ValueError, match=r"LayerScale: scale of shape \(1, 1, 4\) does not fit an input of shape"):
        L.LayerScale().apply({"scale": np.ones((1, 1, 4))}, {}, jax.device_put(np.ones((2, 4))), train=False)
    with pytest.raises(ValueError, match=r"StochasticDepth: p \(the probability of dropping\) must be a number"):
        L.StochasticDepth(-0.1)
    with pytest.raises(ValueError, match="StochasticDepth: mode must be 'row' or 'batch', got 'elem'"):
        L.StochasticDepth(0.1, "elem")
