"""Tests of ``jcnn.optim.ema``: the weight EMA step for step against timm's ``ModelEmaV3`` update (its
``get_decay`` written out below from timm's code, the interpolation by ``torch.lerp`` as timm's
``_foreach_lerp_``), with and without warm-up, ``update_after_step``, ``exclude_buffers``; under jit; errors."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jcnn import optim


def timm_get_decay(
    step, decay, min_decay=0.0, update_after_step=0, use_warmup=False, warmup_gamma=1.0, warmup_power=2 / 3
):
    """timm.utils.model_ema.ModelEmaV3.get_decay, as written there."""
    if step is None:
        return decay
    step = max(0, step - update_after_step - 1)
    if step <= 0:
        return 0.0
    if use_warmup:
        d = 1 - (1 + step / warmup_gamma) ** -warmup_power
        d = max(min(d, decay), min_decay)
    else:
        d = decay
    return d


def timm_apply_update(ema_sd: dict, model_sd: dict, decay: float, exclude_buffers: bool, params: set) -> None:
    """ModelEmaV3.apply_update_ / apply_update_no_buffers_: lerp the floating tensors (the parameters only
    with ``exclude_buffers``), copy the rest."""
    for k, e in ema_sd.items():
        if e.is_floating_point() and (not exclude_buffers or k in params):
            e.lerp_(model_sd[k], 1.0 - decay)
        else:
            e.copy_(model_sd[k])


def _trajectory(steps: int, seed: int = 0):
    """A parameter/state sequence: params drift, BatchNorm-like statistics change, an int count grows."""
    rng = np.random.default_rng(seed)
    out = []
    w = rng.standard_normal((3, 4)).astype(np.float32)
    for t in range(steps + 1):
        w = w + 0.3 * rng.standard_normal(w.shape).astype(np.float32)
        params = {"conv": {"kernel": w.copy(), "bias": rng.standard_normal(4).astype(np.float32)}}
        state = {"bn": {"mean": rng.standard_normal(4).astype(np.float32), "count": np.int32(t)}}
        out.append((params, state))
    return out


def _as_sd(params, state):
    return {
        "conv.kernel": torch.from_numpy(params["conv"]["kernel"].copy()),
        "conv.bias": torch.from_numpy(params["conv"]["bias"].copy()),
        "bn.mean": torch.from_numpy(state["bn"]["mean"].copy()),
        "bn.count": torch.tensor(int(state["bn"]["count"])),
    }


CONFIGS = [
    ({"decay": 0.9}, {"decay": 0.9}),
    ({"decay": 0.9999, "warmup": True}, {"decay": 0.9999, "use_warmup": True}),
    (
        {
            "decay": 0.99,
            "warmup": True,
            "warmup_gamma": 2.0,
            "warmup_power": 0.75,
            "min_decay": 0.3,
            "update_after_step": 2,
        },
        {
            "decay": 0.99,
            "use_warmup": True,
            "warmup_gamma": 2.0,
            "warmup_power": 0.75,
            "min_decay": 0.3,
            "update_after_step": 2,
        },
    ),
    ({"decay": 0.8, "include_state": False}, {"decay": 0.8}),
]


@functools.cache
def _jitted_update(i):
    return jax.jit(optim.ema(**CONFIGS[i][0]).update)


@pytest.mark.parametrize("i", range(len(CONFIGS)), ids=["plain", "warmup", "warmup-clipped-delayed", "no-state"])
def test_matches_timm_model_ema_v3_step_for_step(i):
    kw, timm_kw = CONFIGS[i]
    average = optim.ema(**kw)
    traj = _trajectory(12, seed=i)
    ema_state = average.init(*traj[0])
    ema_sd = _as_sd(*traj[0])  # timm: deepcopy(model) at construction
    update = _jitted_update(i)
    for step in range(1, len(traj)):
        params, state = traj[step]
        ema_state = update(ema_state, params, state)
        decay = timm_get_decay(step, **timm_kw)
        timm_apply_update(
            ema_sd, _as_sd(params, state), decay, not kw.get("include_state", True), {"conv.kernel", "conv.bias"}
        )
        assert int(ema_state.num_updates) == step
        np.testing.assert_allclose(float(average.decay_at(step)), decay, rtol=1e-6, atol=1e-7)
        got = {
            "conv.kernel": ema_state.params["conv"]["kernel"],
            "conv.bias": ema_state.params["conv"]["bias"],
            "bn.mean": ema_state.state["bn"]["mean"],
            "bn.count": ema_state.state["bn"]["count"],
        }
        for key, want in ema_sd.items():
            assert (
                got[key].dtype == jnp.asarray(traj[0][0]["conv"]["kernel"] if key != "bn.count" else np.int32(0)).dtype
            ), key
            np.testing.assert_allclose(
                np.asarray(got[key]), want.numpy(), rtol=2e-6, atol=1e-7, err_msg=f"step {step} {key}"
            )
    if kw.get("update_after_step"):  # the average is a copy until update_after_step + 1
        assert float(average.decay_at(kw["update_after_step"] + 1)) == 0.0


def test_first_update_copies_and_explicit_step():
    average = optim.ema(0.5)
    (p0, s0), (p1, s1) = _trajectory(1)
    first = average.update(average.init(p0, s0), p1, s1)
    np.testing.assert_array_equal(first.params["conv"]["kernel"], p1["conv"]["kernel"])  # decay 0 at step 1
    # step given (timm's update(model, step=num_updates)): step 5 uses the decay 0.5
    later = average.update(average.init(p0, s0), p1, s1, step=5)
    np.testing.assert_allclose(
        later.params["conv"]["kernel"], 0.5 * (p0["conv"]["kernel"] + p1["conv"]["kernel"]), rtol=1e-6
    )
    np.testing.assert_array_equal(optim.lerp(jnp.float32(2.0), jnp.float32(3.0), jnp.float32(1.0)), 3.0)


def test_eval_weights_and_errors():
    from jcnn.training.train import TrainState

    (p0, s0), _ = _trajectory(1)
    average = optim.ema(0.9)
    ts = TrainState(p0, s0, None, jnp.zeros((), jnp.int32), jax.random.PRNGKey(0))
    assert optim.eval_weights(ts)[0] is p0
    e = average.init(p0, s0)
    assert optim.eval_weights(ts._replace(ema=e))[0] is e.params
    with pytest.raises(ValueError, match=r"ema: decay must be .*got 1.5"):
        optim.ema(1.5)
    with pytest.raises(ValueError, match="ema: update_after_step must be an int >= 0, got -1"):
        optim.ema(update_after_step=-1)
    with pytest.raises(TypeError, match="ema.update: expected the EmaState made by init"):
        average.update((p0, s0), p0, s0)
    with pytest.raises(TypeError, match="ema.update: params do not have the structure of the averaged params"):
        average.update(e, {"conv": {"kernel": p0["conv"]["kernel"]}}, s0)
