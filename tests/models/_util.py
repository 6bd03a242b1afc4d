"""Zoo model ⇄ torch twin comparison shared by the model tests: weights copied with ``import_state_dict``,
logits in eval and train mode, updated running statistics, and the gradient of the loss w.r.t. every
parameter, all in float32."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch

from jcnn.interop.torch import _abstract_init as abstract_init  # noqa: F401 (init's shapes, no FLOPs)
from jcnn.interop.torch import export_state_dict, import_state_dict
from jcnn.models import get_model
from tests.helpers import rel_error, to_torch_layout
from tests.models._twins import twin

# The zoo's float32 tolerance (issue 6): tens to hundreds of accumulated float32 layers, each
# within ~1e-7 relative, against a framework with other summation orders.
RTOL = 1e-4


def randomize_buffers(module: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics and affine params, so that eval mode and zero-init γ are exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
                m.num_batches_tracked.fill_(3)


def compare_with_twin(name: str, *, hw: int = 32, batch: int = 4, in_channels: int = 3, num_classes: int = 10,
                      model_kw: dict | None = None, twin_kw: dict | None = None, train: bool = True,
                      seed: int = 0, float64_grads: bool = False) -> None:
    """Assert jcnn ``name`` equals its torch twin (eval logits; with ``train`` also train-mode logits, new
    running statistics and every parameter's gradient of the mean cross-entropy), within ``RTOL``.

    ReLU and max pooling have discontinuous derivatives: where two entries of a pooling window tie to
    within float32 rounding, either framework may route the window's gradient to the other entry, an
    O(1) change of that entry's gradient (measured: one such window among 8192 at VGG's 4×4 stage gives
    7e-3). ``seed`` picks inputs without such a near-tie; a float64 run would not need it.

    ``float64_grads`` checks the gradients in float64 (both sides, to ``1e-8``) instead: for ResNet-50,
    train-mode BatchNorm over a small batch makes float32 gradients ill-conditioned in any framework
    (measured: torch's own float32 gradients are 0.2 off its float64 ones, jcnn's likewise)."""
    model_kw, twin_kw = model_kw or {}, twin_kw or {}
    torch.manual_seed(0)
    net = twin(name, num_classes, in_channels, **twin_kw)
    randomize_buffers(net)
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    params, state = import_state_dict(name, sd, input_shape=(1, hw, hw, in_channels), **model_kw)
    model = get_model(name, num_classes=num_classes, in_channels=in_channels, **model_kw)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, hw, hw, in_channels)).astype(np.float32)
    labels = rng.integers(0, num_classes, batch)

    y, new_state = jax.jit(lambda p, s, x: model.apply(p, s, x, train=False))(params, state, x)
    assert y.dtype == jnp.float32 and y.shape == (batch, num_classes)
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(lambda a, b: bool(jnp.all(a == b)), new_state, state))
    net.eval()
    with torch.no_grad():
        expected = net(to_torch_layout(x)).numpy()
    err = rel_error(y, expected)
    assert err <= RTOL, f"{name} eval logits: relative error {err:.2e}"
    if not train:
        return

    def loss_fn(p, s, x, labels):
        logits, s_new = model.apply(p, s, x, train=True)
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1)), (logits, s_new)

    grads, (logits, trained_state) = jax.jit(jax.grad(loss_fn, has_aux=True))(params, state, x, labels)
    net.train()
    out = net(to_torch_layout(x))
    torch.nn.functional.cross_entropy(out, torch.from_numpy(labels)).backward()
    err = rel_error(logits, out.detach().numpy())
    assert err <= RTOL, f"{name} train logits: relative error {err:.2e}"

    got_sd = export_state_dict(name, params, trained_state, input_shape=(1, hw, hw, in_channels), **model_kw)
    for key, buf in net.state_dict().items():
        if "running" in key:
            err = rel_error(got_sd[key], buf.numpy())
            assert err <= RTOL, f"{name} {key} after a training step: relative error {err:.2e}"

    tolerance = RTOL
    if float64_grads:
        tolerance = 1e-8
        grads, _ = jax.jit(jax.grad(loss_fn, has_aux=True))(
            jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), params), state, x.astype(np.float64), labels)
        net = twin(name, num_classes, in_channels, **twin_kw).double()
        net.load_state_dict(sd)
        net.train()
        out = net(to_torch_layout(x.astype(np.float64)))
        torch.nn.functional.cross_entropy(out, torch.from_numpy(labels)).backward()
    got = export_state_dict(name, grads, state, input_shape=(1, hw, hw, in_channels), **model_kw)
    named = dict(net.named_parameters())
    assert set(named) <= set(got)
    # A bias feeding a train-mode BatchNorm has an exactly-zero gradient: rounding noise on both sides
    # (~1e-7 of the model's largest gradient), so errors are measured against the largest gradient of the
    # tensor or 1e-2 of the whole model's.
    floor = 1e-2 * max(float(p.grad.abs().max()) for p in named.values())
    for key, p in named.items():
        e = p.grad.numpy().astype(np.float64)
        diff = float(np.max(np.abs(got[key] - e)))
        err = diff / max(float(np.max(np.abs(e))), floor)
        assert err <= tolerance, f"{name} d loss / d {key}: relative error {err:.2e}"


def round_trip(name: str, *, hw: int = 32, in_channels: int = 3, num_classes: int = 10,
               model_kw: dict | None = None, twin_kw: dict | None = None) -> None:
    """import → export gives the twin's ``state_dict`` back exactly (same keys, shapes, values, and it loads
    with ``strict=True``); export → import gives identical pytrees."""
    model_kw, twin_kw = model_kw or {}, twin_kw or {}
    torch.manual_seed(1)
    net = twin(name, num_classes, in_channels, **twin_kw)
    randomize_buffers(net, seed=1)
    sd = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    shape = (1, hw, hw, in_channels)
    params, state = import_state_dict(name, sd, input_shape=shape, **model_kw)
    exported = export_state_dict(name, params, state, input_shape=shape, **model_kw)
    assert {k: v.shape for k, v in exported.items()} == {k: v.shape for k, v in sd.items()}
    for key, value in sd.items():
        assert exported[key].dtype == value.dtype, key
        if key.endswith("num_batches_tracked"):  # BatchNorm(momentum=0.1) keeps no count: exported as 0
            assert exported[key] == 0, key
        else:
            assert np.array_equal(exported[key], value), key
    net.load_state_dict({k: torch.from_numpy(v) for k, v in exported.items()}, strict=True)
    p2, s2 = import_state_dict(name, exported, input_shape=shape, **model_kw)
    assert jax.tree_util.tree_structure(p2) == jax.tree_util.tree_structure(params)
    assert jax.tree_util.tree_structure(s2) == jax.tree_util.tree_structure(state)
    for a, b in zip(jax.tree_util.tree_leaves((p2, s2)), jax.tree_util.tree_leaves((params, state))):
        assert a.dtype == b.dtype and a.shape == b.shape and bool(jnp.all(a == b))
