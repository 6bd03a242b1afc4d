"""The small transformations: chains of them reproduce torch.optim (200 steps on the quadratic), clipping
equals torch.nn.utils', masking equals torch parameter groups, accumulation equals torch's loss/k pattern."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jcnn import optim
from tests.helpers import assert_close
from tests.optim._util import flat, quadratic, run_jax, run_torch, worst_step_error

TO = torch.optim
TOL = 1e-5


@pytest.fixture(autouse=True)
def _torch_float64_scalars():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _decay_kernels(p):
    return jax.tree_util.tree_map(lambda x: x.ndim > 1, p)


CHAINS = [
    pytest.param(
        optim.chain(
            optim.add_decayed_weights(0.05), optim.trace(0.9, dampening=0.2), optim.scale_by_learning_rate(0.05)
        ),
        lambda ps: TO.SGD(ps, lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.05),
        id="sgd_momentum",
    ),
    pytest.param(
        optim.chain(optim.trace(0.9, nesterov=True), optim.scale(-0.02)),
        lambda ps: TO.SGD(ps, lr=0.02, momentum=0.9, nesterov=True),
        id="sgd_nesterov_scale",
    ),
    pytest.param(
        optim.chain(optim.scale_by_adam(0.8, 0.99, 1e-6, amsgrad=True), optim.scale_by_learning_rate(0.03)),
        lambda ps: TO.Adam(ps, lr=0.03, betas=(0.8, 0.99), eps=1e-6, amsgrad=True),
        id="adam_amsgrad",
    ),
    pytest.param(
        optim.chain(optim.scale_by_rms(0.9, 1e-6, centered=True), optim.scale_by_learning_rate(0.01)),
        lambda ps: TO.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-6, centered=True),
        id="rmsprop_centered",
    ),
    pytest.param(
        optim.chain(optim.scale_by_rms(), optim.scale_by_learning_rate(0.01)),
        lambda ps: TO.RMSprop(ps, lr=0.01),
        id="rmsprop",
    ),
    pytest.param(
        optim.chain(optim.scale_by_adagrad(0.2, 1e-8), optim.scale_by_learning_rate(0.1)),
        lambda ps: TO.Adagrad(ps, lr=0.1, initial_accumulator_value=0.2, eps=1e-8),
        id="adagrad",
    ),
    pytest.param(
        optim.chain(optim.masked(optim.add_decayed_weights(0.1), _decay_kernels), optim.sgd(0.05, 0.5)),
        lambda ps: TO.SGD(
            [{"params": [ps[0]], "weight_decay": 0.0}, {"params": [ps[1]]}], lr=0.05, momentum=0.5, weight_decay=0.1
        ),
        id="masked_decay_vs_param_groups",
    ),
    pytest.param(
        optim.chain(optim.add_decayed_weights(0.1, mask={"b": False, "w": True}), optim.adam(0.05)),
        lambda ps: TO.Adam([{"params": [ps[0]], "weight_decay": 0.0}, {"params": [ps[1]]}], lr=0.05, weight_decay=0.1),
        id="mask_argument_vs_param_groups",
    ),
    # masked passes the other leaves' grads through; a second masked(scale(0)) freezes them.
    pytest.param(
        optim.chain(
            optim.masked(optim.sgd(0.1), {"b": True, "w": False}),
            optim.masked(optim.scale(0.0), {"b": False, "w": True}),
        ),
        lambda ps: TO.SGD([ps[0]], lr=0.1),
        id="masked_freezing",
    ),
]


@pytest.mark.parametrize("jax_opt, torch_opt", CHAINS)
def test_chains_match_torch(jax_opt, torch_opt):
    params, jgrad, tgrad = quadratic(np.float64)
    err, at = worst_step_error(run_jax(jax_opt, params, jgrad), run_torch(torch_opt, params, tgrad))
    assert err <= TOL, f"relative error {err:.2e} at step {at}"


def _grad_tree(scale: float):
    r = np.random.default_rng(0)
    return {"a": r.normal(size=(3, 4)) * scale, "b": {"c": r.normal(size=(5,)) * scale}}


@pytest.mark.parametrize("scale", [0.01, 10.0])
def test_clip_by_global_norm_matches_torch(scale):
    g = _grad_tree(scale)
    ts = [torch.zeros(v.shape, requires_grad=True) for v in jax.tree_util.tree_leaves(g)]
    for t, v in zip(ts, jax.tree_util.tree_leaves(g)):
        t.grad = torch.from_numpy(v.copy())
    norm = torch.nn.utils.clip_grad_norm_(ts, max_norm=1.5)
    opt = optim.clip_by_global_norm(1.5)
    out, _ = opt.update(g, opt.init(g))
    assert_close(optim.global_norm(g), norm.numpy(), 1e-12)
    assert_close(flat(out), flat([t.grad.numpy() for t in ts]), 1e-12)


def test_clip_matches_torch_clip_grad_value():
    g = _grad_tree(3.0)
    ts = [torch.zeros(v.shape, requires_grad=True) for v in jax.tree_util.tree_leaves(g)]
    for t, v in zip(ts, jax.tree_util.tree_leaves(g)):
        t.grad = torch.from_numpy(v.copy())
    torch.nn.utils.clip_grad_value_(ts, 2.0)
    out, _ = optim.clip(2.0).update(g, optim.EmptyState())
    assert_close(flat(out), flat([t.grad.numpy() for t in ts]), 0.0)


@pytest.mark.parametrize(
    "inner, torch_opt",
    [
        # Adam alone is nearly scale-invariant (a sum instead of the mean would pass): SGD is not.
        (optim.adam(0.05, amsgrad=True), lambda ps: TO.Adam(ps, lr=0.05, amsgrad=True)),
        (optim.sgd(0.05, momentum=0.9), lambda ps: TO.SGD(ps, lr=0.05, momentum=0.9)),
    ],
    ids=["adam", "sgd"],
)
def test_accumulate_gradients_matches_torch_micro_batches(inner, torch_opt):
    """k=4 micro-batches with different gradient scales; torch sums loss/k over them, then steps."""
    k, steps = 4, 50
    scales = np.array([0.5, 1.0, 1.5, 2.0])
    params, jgrad, tgrad = quadratic(np.float64)
    opt = optim.accumulate_gradients(inner, k)

    def body(carry, s):
        p, st = carry
        u, st = opt.update(jax.tree_util.tree_map(lambda g: g * s, jgrad(p)), st, p)
        p = optim.apply_updates(p, u)
        return (p, st), (flat_j(p), flat_j(u))

    def flat_j(t):
        return jnp.concatenate([v.reshape(-1) for v in jax.tree_util.tree_leaves(t)])

    p0 = jax.tree_util.tree_map(jnp.asarray, params)
    seq = jnp.asarray(np.tile(scales, steps))
    traj, upd = jax.jit(lambda p: jax.lax.scan(body, (p, opt.init(p)), seq)[1])(p0)
    traj, upd = np.asarray(traj), np.asarray(upd)

    ps = [torch.tensor(np.array(v), requires_grad=True) for v in jax.tree_util.tree_leaves(params)]
    topt = torch_opt(ps)
    want = []
    for _ in range(steps):
        for p in ps:
            p.grad = torch.zeros_like(p)
        for s in scales:
            for p, g in zip(ps, tgrad([p.detach() for p in ps])):
                p.grad += g * s / k
        topt.step()
        want.append(flat([p.detach().numpy() for p in ps]))
    err, at = worst_step_error(traj[k - 1 :: k], np.stack(want))
    assert err <= TOL, f"relative error {err:.2e} at step {at}"
    held = np.arange(len(upd)) % k != k - 1
    assert np.all(upd[held] == 0.0) and np.all(np.any(upd[~held] != 0.0, axis=1))


def test_chain_state_is_keyed_by_name():
    opt = optim.chain(optim.clip_by_global_norm(1.0), optim.trace(0.9), optim.trace(0.5), optim.scale(-0.1))
    state = opt.init({"w": jnp.zeros(3)})
    assert list(state) == ["clip_by_global_norm", "trace", "trace_1", "scale"]
    assert isinstance(state["trace"], optim.TraceState)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: optim.trace(0.9, dampening=0.1, nesterov=True), ValueError, "nesterov momentum requires"),
        (lambda: optim.scale(float("nan")), ValueError, "scale: factor must be a finite number"),
        (lambda: optim.clip(-1.0), ValueError, r"clip: max_delta must be a finite number in \[0.0"),
        (lambda: optim.clip_by_global_norm(float("inf")), ValueError, "clip_by_global_norm: max_norm"),
        (lambda: optim.scale_by_adam(b1=1.0), ValueError, r"scale_by_adam: b1 must be a finite number in \[0.0, 1.0\)"),
        (lambda: optim.scale_by_rms(eps=-1e-8), ValueError, "scale_by_rms: eps must be"),
        (lambda: optim.scale_by_adagrad(initial_accumulator_value=-1.0), ValueError, "initial_accumulator_value"),
        (lambda: optim.scale_by_learning_rate(-0.1), ValueError, "scale_by_learning_rate: learning_rate must be"),
        (lambda: optim.add_decayed_weights(-0.1), ValueError, "add_decayed_weights: weight_decay must be"),
        (
            lambda: optim.chain(optim.scale(1.0), (lambda p: p, None)),
            TypeError,
            "chain: argument 1 must be an Optimizer",
        ),
        (lambda: optim.masked((None, None), {}), TypeError, "masked: inner must be an Optimizer"),
        (lambda: optim.accumulate_gradients(optim.sgd(0.1), 0), ValueError, "k must be an int >= 1"),
        (lambda: optim.accumulate_gradients(lambda: None, 2), TypeError, "inner must be an Optimizer"),
    ],
)
def test_bad_construction(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_bad_updates():
    p = {"b": jnp.zeros(3), "w": jnp.ones((2, 3))}
    wd = optim.add_decayed_weights(0.1)
    with pytest.raises(ValueError, match="add_decayed_weights: this transformation needs the current params"):
        wd.update(p, wd.init(p))
    m = optim.masked(optim.scale(2.0), {"b": True})
    with pytest.raises(TypeError, match="masked: the mask must be a pytree of bools shaped like params"):
        m.init(p)
    m = optim.masked(optim.scale(2.0), lambda t: jax.tree_util.tree_map(lambda x: jnp.any(x > 0), t))
    with pytest.raises(TypeError, match="the mask must hold one Python bool per params leaf"):
        m.init(p)
    c = optim.chain(optim.scale(1.0), optim.trace(0.5))
    with pytest.raises(TypeError, match=r"chain.update: state must be a dict with keys \['scale', 'trace'\]"):
        c.update(p, {"scale": optim.EmptyState()})
