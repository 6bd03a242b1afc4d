"""Zoo model ⇄ torch twin comparison shared by the model tests: weights copied with ``import_state_dict``,
logits in eval mode (float32, every activation), in train mode with the updated running statistics, and
the gradient of the loss w.r.t. every parameter (see :func:`compare_with_twin` for their dtypes)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch

from jcnn.inspection.intermediates import intermediates
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


def compare_with_twin(
    name: str,
    *,
    hw: int = 32,
    batch: int = 4,
    in_channels: int = 3,
    num_classes: int = 10,
    model_kw: dict | None = None,
    twin_kw: dict | None = None,
    train: bool = True,
    seed: int = 0,
    grad_dtype: str = "float64",
    grads: bool = True,
) -> None:
    """Assert jcnn ``name`` equals its torch twin: float32 logits in eval mode (and every activation) within
    ``RTOL``; with ``train``, the train-mode logits and the running statistics after that step; and the
    gradient of the mean cross-entropy w.r.t. every parameter in ``grad_dtype`` (to ``1e-8`` in float64,
    ``RTOL`` in float32) unless ``grads=False`` (the float64 gradient is the most expensive compile: some
    models check it in the slow step only). With float64 gradients the train-mode logits and statistics
    come from the same program and are checked in float64 (1e-8); otherwise in float32 (``RTOL``).

    Why float64 gradients by default: ReLU and max pooling have discontinuous derivatives, so where two
    entries of a pooling window (or a ReLU input and 0) agree to within float32 rounding, either framework
    may route that gradient elsewhere, an O(1) change of one entry; and train-mode BatchNorm over small
    batches amplifies rounding. Measured on MobileNet v1 (64×64, batch 4) over seeds 0-3: torch's own
    float32 gradients are up to 0.15 off its float64 ones, jcnn's up to 0.017, and which seeds fail moves
    with any change of rounding anywhere in the network. In float64 both agree to ~1e-12. Models without
    kinks (LeNet with tanh and average pooling) are also checked in float32.
    """
    model_kw, twin_kw = model_kw or {}, twin_kw or {}
    torch.manual_seed(0)
    net = twin(name, num_classes, in_channels, **twin_kw)
    randomize_buffers(net)
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    shape = (1, hw, hw, in_channels)
    params, state = import_state_dict(name, sd, input_shape=shape, **model_kw)
    model = get_model(name, num_classes=num_classes, in_channels=in_channels, **model_kw)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, hw, hw, in_channels)).astype(np.float32)
    labels = rng.integers(0, num_classes, batch)
    dtype = np.dtype(grad_dtype)
    # With float64 gradients, the train-mode logits and running statistics come out of the gradient's
    # program (checked in float64 against the float64 twin): one compile less per model. The float32
    # train-mode numerics of each layer are the op and layer tests' (BatchNorm against torch).
    train_in_grad = train and grads and dtype == np.float64

    for mode in (False, True) if train and not train_in_grad else (False,):
        if mode:
            y, new_state = jax.jit(lambda p, s, x: model.apply(p, s, x, train=True))(params, state, x)
        else:  # eval mode through jcnn.intermediates: one compile gives the logits and every activation
            y, acts = jax.jit(lambda p, s, x: intermediates(model, p, s, x))(params, state, x)
        assert y.dtype == jnp.float32 and y.shape == (batch, num_classes)
        net.train(mode)
        with torch.no_grad():
            expected = net(to_torch_layout(x)).numpy() if mode else _hooked_forward(net, x, acts, name)
        err = rel_error(y, expected)
        assert err <= RTOL, f"{name} {'train' if mode else 'eval'} logits: relative error {err:.2e}"
    if not train:
        return
    if not train_in_grad:
        _compare_running_stats(name, export_state_dict(name, params, new_state, input_shape=shape, **model_kw), net)
    if not grads:
        return

    def loss_fn(p, s, x, labels):
        logits, new_s = model.apply(p, s, x, train=True)
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1)), (logits, new_s)

    tolerance = 1e-8 if dtype == np.float64 else RTOL

    def cast(tree):  # floating leaves only: an integer leaf (a counter) keeps its dtype
        return jax.tree_util.tree_map(
            lambda a: np.asarray(a).astype(dtype) if np.issubdtype(np.asarray(a).dtype, np.floating) else a, tree
        )

    # the state in grad_dtype too: BatchNorm updates its running statistics in the state's dtype
    grads, (logits, new_state) = jax.jit(jax.grad(loss_fn, has_aux=True))(
        cast(params), cast(state), x.astype(dtype), labels
    )
    net = twin(name, num_classes, in_channels, **twin_kw).to(getattr(torch, grad_dtype))
    net.load_state_dict(sd)
    net.train()
    out = net(to_torch_layout(x.astype(dtype)))
    torch.nn.functional.cross_entropy(out, torch.from_numpy(labels)).backward()
    if train_in_grad:
        assert logits.dtype == dtype and logits.shape == (batch, num_classes)
        err = rel_error(logits, out.detach().numpy())
        assert err <= tolerance, f"{name} train logits ({grad_dtype}): relative error {err:.2e}"
        stats = export_state_dict(name, params, new_state, input_shape=shape, **model_kw)
        _compare_running_stats(name, stats, net, tolerance)
    got = export_state_dict(name, grads, state, input_shape=shape, **model_kw)
    named = dict(net.named_parameters())
    assert set(named) <= set(got)
    # A bias feeding a train-mode BatchNorm has an exactly-zero gradient: rounding noise on both sides,
    # so errors are measured against the largest gradient of the tensor or 1e-2 of the whole model's.
    floor = 1e-2 * max(float(p.grad.abs().max()) for p in named.values())
    for key, p in named.items():
        assert got[key].dtype == dtype, key
        e = p.grad.numpy().astype(np.float64)
        diff = float(np.max(np.abs(got[key] - e)))
        err = diff / max(float(np.max(np.abs(e))), floor)
        assert err <= tolerance, f"{name} d loss / d {key} ({grad_dtype}): relative error {err:.2e}"


def _compare_running_stats(name: str, got_sd: dict, net: torch.nn.Module, tolerance: float = RTOL) -> None:
    """Every running statistic of ``got_sd`` (jcnn's, exported) equals the twin's after its train step."""
    for key, buf in net.state_dict().items():
        if "running" in key:
            err = rel_error(got_sd[key], buf.numpy())
            assert err <= tolerance, f"{name} {key} after a training step: relative error {err:.2e}"


def _hooked_forward(net: torch.nn.Module, x: np.ndarray, acts: dict, name: str) -> np.ndarray:
    """The eval-mode torch forward, comparing every named module's output (forward hooks) with jcnn's
    activation at the same path (channels-first 4-D outputs transposed); modules called more than once in a
    forward (torchvision's shared ``relu`` in a ResNet block) and paths jcnn does not have are skipped."""
    seen: dict[str, list] = {}

    def hook(path: str):  # a copy: torchvision's in-place ReLUs overwrite the tensor a module returned
        return lambda mod, inp, out: seen.setdefault(path, []).append(
            out.clone() if isinstance(out, torch.Tensor) else out
        )

    handles = [m.register_forward_hook(hook(path)) for path, m in net.named_modules() if path]
    try:
        out = net(to_torch_layout(x)).numpy()
    finally:
        for h in handles:
            h.remove()
    compared = 0
    for path, outs in seen.items():
        if len(outs) != 1 or path not in acts or not isinstance(outs[0], torch.Tensor):
            continue
        want = outs[0].numpy()
        if want.ndim == 4:
            want = want.transpose(0, 2, 3, 1)
        got = np.asarray(acts[path])
        if got.shape != want.shape and got.size == want.size and got.shape == tuple(d for d in want.shape if d != 1):
            want = want.reshape(got.shape)  # torch's (N, C, 1, 1) adaptive pool vs jcnn's global pool (N, C)
        assert got.shape == want.shape, f"{name} {path}: shape {got.shape} vs torch {want.shape}"
        err = rel_error(got, want)
        assert err <= RTOL, f"{name} activation {path}: relative error {err:.2e}"
        compared += 1
    single = sum(1 for outs in seen.values() if len(outs) == 1)
    assert compared >= 0.8 * single, f"{name}: only {compared} of {single} torch modules matched a jcnn path"
    return out


def round_trip(
    name: str,
    *,
    hw: int = 32,
    in_channels: int = 3,
    num_classes: int = 10,
    model_kw: dict | None = None,
    twin_kw: dict | None = None,
) -> None:
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
        assert (
            a.dtype == b.dtype and a.shape == b.shape and np.array_equal(np.asarray(a), np.asarray(b))
        )  # NumPy: no compile per leaf shape
