"""Checks of the modern zoo models (MobileNet v3, EfficientNet, ConvNeXt, RegNet) against their torch twins,
sized for CI, where XLA's compiles of these models dominate (EfficientNet-B0 on 2 CPU cores: eval forward
5 s, train forward 9 s, reverse-mode gradient 20-45 s of compile): one cached Layer per configuration
(its abstract init and interop plan are cached with it) and one jitted function per check.

- :func:`check_eval`: float32 eval-mode logits (1e-4, the zoo's tolerance).
- :func:`check_train`: float64 train mode, dropout and stochastic depth off, in one compile: logits (1e-9),
  updated running statistics, and the gradient of the cross-entropy w.r.t. every parameter (1e-9).
  Reverse mode: the convolutions have a custom VJP (jcnn.ops.conv), so forward-mode derivatives, which
  would compile faster, are not available.
  Batch 4: at batch 2 a BatchNorm over the two values of a 1×1 map is ill-conditioned even in float64
  (6e-7 on RegNetY-400MF at 32×32).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import torch

from jcnn import models
from jcnn.interop import torch_twins
from jcnn.interop import torch_twins_modern as tw
from jcnn.interop.torch import export_state_dict, import_state_dict
from jcnn.models import get_model
from tests.helpers import rel_error, to_torch_layout

EVAL_RTOL = 1e-4  # float32 through tens of layers, as tests/models/_util.py
F64_RTOL = 1e-9


# Reduced configurations of each family for the fast suite (a compile of a full model at 32×32 costs 5 s
# eval and 20 s train on 2 CPU cores): every block kind of the family, with a few channels.
# name: (jcnn builder (num_classes, **kw) -> Layer, torch twin (num_classes, in_channels, **kw) -> Module)
TINY_MOBILENET_V3 = [
    (8, 3, 8, 8, True, "RE", 2, 1),  # no expansion unit, SE (hard-sigmoid gate), stride 2
    (8, 3, 24, 16, False, "HS", 1, 1),  # expansion, no SE, hard-swish
    (16, 3, 48, 16, True, "HS", 2, 2),
]  # dilated (stride 1), residual
TINY_EFFICIENTNET = [
    (4, 3, 1, 8, 8, 1, False),  # MBConv with expansion, residual (stochastic depth)
    (1, 3, 2, 8, 16, 1, False),  # MBConv without expansion, stride 2
    (1, 3, 1, 16, 16, 1, True),  # Fused-MBConv without expansion (one unit), residual
    (4, 3, 2, 16, 24, 1, True),
]  # Fused-MBConv with expansion, stride 2
TINY_CONVNEXT = ((8, 16), (1, 1))
TINY_REGNET = (3, 16, 8.0, 2.0, 8, 0.25)  # stages (16, 1), (32, 2): projections, an identity, groups, SE
TINY = {
    "tiny_mobilenet_v3": (
        lambda n, **kw: models.mobilenet_v3.mobilenet_v3(TINY_MOBILENET_V3, 32, n, **kw),
        lambda n, c, **kw: tw.MobileNetV3("custom", n, c, setting=TINY_MOBILENET_V3, last_channel=32, **kw),
    ),
    "tiny_efficientnet": (
        lambda n, **kw: models.efficientnet.efficientnet(
            TINY_EFFICIENTNET, 32, n, norm_eps=1e-3, norm_momentum=0.01, **kw
        ),
        lambda n, c, **kw: tw.EfficientNet(
            "custom", n, c, stages=TINY_EFFICIENTNET, last_channel=32, norm_eps=1e-3, norm_momentum=0.01, **kw
        ),
    ),
    "tiny_convnext": (
        lambda n, **kw: models.convnext.convnext(*TINY_CONVNEXT, n, **kw),
        lambda n, c, **kw: tw.ConvNeXt("custom", n, c, widths=TINY_CONVNEXT[0], depths=TINY_CONVNEXT[1], **kw),
    ),
    "tiny_regnet": (
        lambda n, **kw: models.regnet.regnet(*TINY_REGNET, num_classes=n, **kw),
        lambda n, c, **kw: tw.RegNet("custom", n, c, config=TINY_REGNET, **kw),
    ),
}


def twin(name: str, num_classes: int, in_channels: int, **kw) -> torch.nn.Module:
    """The torch twin of a zoo name or a :data:`TINY` configuration."""
    if name in TINY:
        return TINY[name][1](num_classes, in_channels, **kw)
    return torch_twins.twin(name, num_classes, in_channels, **kw)


@functools.cache
def model(name: str, num_classes: int = 10, **kw):
    """The zoo Layer for a configuration (a zoo name or a :data:`TINY` one), shared by every check (abstract
    inits and interop plans are cached per Layer)."""
    if name in TINY:
        return TINY[name][0](num_classes, **kw)
    return get_model(name, num_classes=num_classes, **kw)


def randomized_twin(name: str, num_classes: int = 10, seed: int = 0, dtype=torch.float32, **kw) -> torch.nn.Module:
    """The torch twin with every parameter and statistic made non-trivial: BatchNorm running statistics and
    affine, LayerNorm affine, layer scales near 1 (their 1e-6 init would hide the residual branches) and
    the biases that the init zeroes."""
    torch.manual_seed(seed)
    net = twin(name, num_classes, 3, **kw)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.num_batches_tracked.fill_(3)
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.LayerNorm)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            elif isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and m.bias is not None:
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
        for pname, p in net.named_parameters():
            if pname.endswith("layer_scale"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
    if dtype == torch.float64:
        _exact_hardsigmoid(net)
    return net.to(dtype)


class _ExactHardsigmoid(torch.nn.Module):
    """``relu6(x + 3) / 6`` through autograd: torch's own Hardsigmoid backward multiplies by ``1.0f / 6.0f``, a
    float32 constant, so its float64 gradient is 3e-8 off (ATen's ``hardsigmoid_backward``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.relu6(x + 3) / 6


def _exact_hardsigmoid(net: torch.nn.Module) -> None:
    for m in list(net.modules()):
        for child_name, child in m.named_children():
            if isinstance(child, torch.nn.Hardsigmoid):
                setattr(m, child_name, _ExactHardsigmoid())


def _float64(tree):
    # via NumPy and device_put: an eager astype (or jnp.asarray) compiles one op per distinct leaf shape
    return jax.tree_util.tree_map(lambda a: jax.device_put(np.asarray(a, np.float64)), tree)


def _inputs(batch: int, hw: int, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, hw, hw, 3)), rng.integers(0, num_classes, batch)


def _loss(layer, params, state, x, labels):
    logits, new_state = layer.apply(params, state, x, train=True)
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1)), (logits, new_state)


def _twin_and_params(name: str, num_classes: int, seed: int, hw: int, dtype, kw: dict):
    layer = model(name, num_classes, **kw)
    net = randomized_twin(name, num_classes, seed, dtype, **kw)
    params, state = import_state_dict(layer, net.state_dict(), input_shape=(1, hw, hw, 3))
    return layer, net, params, state


@functools.cache
def _eval_fn(layer):
    return jax.jit(lambda p, s, x: layer.apply(p, s, x, train=False)[0])


def check_eval(name: str, *, hw: int = 32, batch: int = 2, num_classes: int = 10, seed: int = 0, **kw) -> float:
    """float32 eval-mode logits equal the twin's (``EVAL_RTOL``): the architecture, every key's mapping and
    the running statistics in use; ``kw`` goes to model and twin. Returns the error."""
    layer, net, params, state = _twin_and_params(name, num_classes, seed, hw, torch.float32, kw)
    x, _ = _inputs(batch, hw, num_classes, seed)
    x = x.astype(np.float32)
    y = _eval_fn(layer)(params, state, x)
    assert y.dtype == jnp.float32 and y.shape == (batch, num_classes)
    net.eval()
    with torch.no_grad():
        expected = net(to_torch_layout(x)).numpy()
    err = rel_error(y, expected)
    assert err <= EVAL_RTOL, f"{name} eval logits (float32): relative error {err:.2e}"
    return err


@functools.cache
def _train_fn(layer):
    """One compile: the float64 train-mode loss's gradient, with the logits and the new state."""

    def run(params, state, x, labels):
        grads, (logits, new_state) = jax.grad(lambda p: _loss(layer, p, state, x, labels), has_aux=True)(params)
        return grads, logits, new_state

    return jax.jit(run)


def check_train(name: str, *, hw: int = 32, batch: int = 4, num_classes: int = 10, seed: int = 0, **kw) -> dict:
    """Train mode in float64 (``kw`` must turn dropout and stochastic depth off): the logits (``F64_RTOL``),
    the running statistics after the step (1e-6: computed in float64, stored in float32 as jcnn keeps
    them) and the gradient of the cross-entropy w.r.t. every parameter (``F64_RTOL`` of the tensor's
    largest entry, or of 1e-2 of the largest over the model for the exactly-zero gradients of a bias
    before a train-mode BatchNorm, rounding noise on both sides). Returns the largest errors."""
    layer, net, params, state = _twin_and_params(name, num_classes, seed, hw, torch.float64, kw)
    x, labels = _inputs(batch, hw, num_classes, seed)
    net.train()
    out = net(to_torch_layout(x))
    torch.nn.functional.cross_entropy(out, torch.from_numpy(labels)).backward()
    grads, logits, new_state = _train_fn(layer)(_float64(params), state, x, labels)
    assert logits.dtype == jnp.float64
    errors = {"logits": rel_error(logits, out.detach().numpy()), "running": 0.0, "grad": 0.0}
    assert errors["logits"] <= F64_RTOL, f"{name} train logits (float64): relative error {errors['logits']:.2e}"
    got = export_state_dict(layer, params, new_state, input_shape=(1, hw, hw, 3))
    for key, buf in net.state_dict().items():
        if "running" in key:
            err = rel_error(got[key], buf.numpy())
            assert err <= 1e-6, f"{name} {key} after a training step: relative error {err:.2e}"
            errors["running"] = max(errors["running"], err)
    got = export_state_dict(layer, grads, state, input_shape=(1, hw, hw, 3))
    expected = {k: p.grad.numpy() for k, p in net.named_parameters()}
    floor = 1e-2 * max(float(np.max(np.abs(g))) for g in expected.values())
    for key, e in expected.items():
        assert got[key].dtype == np.float64, key
        err = float(np.max(np.abs(got[key] - e))) / max(float(np.max(np.abs(e))), floor)
        assert err <= F64_RTOL, f"{name} d loss / d {key} (float64): relative error {err:.2e}"
        errors["grad"] = max(errors["grad"], err)
    return errors


def round_trip(name: str, *, hw: int = 32, num_classes: int = 10, seed: int = 1, **kw) -> None:
    """import → export gives the twin's ``state_dict`` back exactly (keys, shapes, dtypes, values; it loads
    into the twin with ``strict=True``); export → import gives identical pytrees."""
    layer = model(name, num_classes, **kw)
    net = randomized_twin(name, num_classes, seed, **kw)
    sd = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    shape = (1, hw, hw, 3)
    params, state = import_state_dict(layer, sd, input_shape=shape)
    exported = export_state_dict(layer, params, state, input_shape=shape)
    assert set(exported) == set(sd) and len(exported) == len(sd)
    for key, value in sd.items():
        assert exported[key].dtype == value.dtype and exported[key].shape == value.shape, key
        if key.endswith("num_batches_tracked"):  # jcnn's BatchNorm(momentum) keeps no count: exported as 0
            assert exported[key] == 0, key
        else:
            assert np.array_equal(exported[key], value), key
    net.load_state_dict({k: torch.from_numpy(v) for k, v in exported.items()}, strict=True)
    p2, s2 = import_state_dict(layer, exported, input_shape=shape)
    assert jax.tree_util.tree_structure((p2, s2)) == jax.tree_util.tree_structure((params, state))
    for a, b in zip(jax.tree_util.tree_leaves((p2, s2)), jax.tree_util.tree_leaves((params, state))):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(np.asarray(a), np.asarray(b))
