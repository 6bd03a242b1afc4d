"""Schedules against torch.optim.lr_scheduler: the rate torch uses for update t (0-based) equals
``schedule(t)``, for every t, eager and under jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jcnn.optim import schedules
from tests.helpers import assert_close

LRS = torch.optim.lr_scheduler
N = 120


def _torch_lrs(base_lr: float, make_sched, steps: int = N) -> np.ndarray:
    """The lr torch's optimizer holds before each of ``steps`` updates (scheduler stepped after each)."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = make_sched(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out)


def _ours(schedule, steps: int = N) -> np.ndarray:
    return np.asarray(jax.jit(jax.vmap(schedule))(jnp.arange(steps, dtype=jnp.int32)))


CASES = [
    pytest.param(schedules.constant(0.3), 0.3, lambda o: LRS.ConstantLR(o, factor=1.0, total_iters=0), id="constant"),
    pytest.param(schedules.step_decay(0.5, 25, 0.3), 0.5, lambda o: LRS.StepLR(o, 25, 0.3), id="step"),
    pytest.param(
        schedules.multi_step(0.5, [10, 40, 40, 90], 0.5),
        0.5,
        lambda o: LRS.MultiStepLR(o, [10, 40, 40, 90], 0.5),
        id="multi_step",
    ),
    pytest.param(schedules.exponential_decay(0.5, 0.97), 0.5, lambda o: LRS.ExponentialLR(o, 0.97), id="exponential"),
    pytest.param(
        schedules.cosine_decay(0.5, 50, alpha=0.1),
        0.5,
        lambda o: LRS.CosineAnnealingLR(o, 50, eta_min=0.05),
        id="cosine_past_T",
    ),
    pytest.param(schedules.cosine_decay(0.5, 200), 0.5, lambda o: LRS.CosineAnnealingLR(o, 200), id="cosine"),
    pytest.param(schedules.linear_warmup(0.5, 30), 0.5, lambda o: LRS.LinearLR(o, total_iters=30), id="linear"),
    pytest.param(
        schedules.linear_warmup(0.5, 30, start_factor=0.1, end_factor=0.6),
        0.5,
        lambda o: LRS.LinearLR(o, 0.1, 0.6, total_iters=30),
        id="linear_factors",
    ),
    pytest.param(
        schedules.warmup_cosine(0.5, 20, 80, start_factor=0.2, alpha=0.01),
        0.5,
        lambda o: LRS.SequentialLR(
            o, [LRS.LinearLR(o, 0.2, total_iters=20), LRS.CosineAnnealingLR(o, 80, eta_min=0.005)], milestones=[20]
        ),
        id="warmup_cosine",
    ),
    pytest.param(
        schedules.sequential(
            [schedules.cosine_decay(0.5, 40), schedules.cosine_decay(0.5, 30), schedules.step_decay(0.5, 10, 0.5)],
            [40, 70],
        ),
        0.5,
        lambda o: LRS.SequentialLR(
            o, [LRS.CosineAnnealingLR(o, 40), LRS.CosineAnnealingLR(o, 30), LRS.StepLR(o, 10, 0.5)], milestones=[40, 70]
        ),
        id="sequential_warm_restarts",
    ),
    pytest.param(
        schedules.one_cycle(0.5, N),
        0.5,
        lambda o: LRS.OneCycleLR(o, 0.5, total_steps=N, cycle_momentum=False),
        id="one_cycle",
    ),
    pytest.param(
        schedules.one_cycle(
            0.5, N, pct_start=0.25, anneal_strategy="linear", div_factor=10, final_div_factor=100, three_phase=True
        ),
        0.5,
        lambda o: LRS.OneCycleLR(
            o,
            0.5,
            total_steps=N,
            pct_start=0.25,
            anneal_strategy="linear",
            div_factor=10,
            final_div_factor=100,
            three_phase=True,
            cycle_momentum=False,
        ),
        id="one_cycle_three_phase_linear",
    ),
]


@pytest.mark.parametrize("schedule, base_lr, make_sched", CASES)
def test_matches_torch_scheduler(schedule, base_lr, make_sched):
    want = _torch_lrs(base_lr, make_sched)
    got = _ours(schedule)
    # Elementwise relative: torch's CosineAnnealingLR is recursive, so allow 1e-9 of drift per value.
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert float(schedule(7)) == pytest.approx(want[7], rel=1e-12)  # eager on a Python int too


def test_one_cycle_holds_the_final_value_past_the_end():
    s = schedules.one_cycle(1.0, 50)
    assert float(s(49)) == float(s(80)) == pytest.approx(1.0 / 25 / 1e4)


def test_float32_without_widening():
    """Under x64 a schedule returns the default float; the optimizers cast it to each param's dtype."""
    assert schedules.cosine_decay(0.1, 10)(jnp.int32(3)).dtype == jnp.result_type(float)


def test_linear_warmup_zero_steps_is_constant():
    assert_close(_ours(schedules.linear_warmup(0.2, 0), 5), np.full(5, 0.2), 1e-12)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: schedules.constant(-1.0), r"constant: value must be a finite number in \[0.0, inf\]"),
        (lambda: schedules.constant(float("nan")), "constant: value must be a finite number"),
        (lambda: schedules.step_decay(0.1, 0), "step_decay: step_size must be an int >= 1"),
        (lambda: schedules.step_decay(0.1, 10, gamma=-0.5), "step_decay: gamma must be"),
        (lambda: schedules.multi_step(0.1, [5, -1]), "multi_step: each milestone must be an int >= 0"),
        (lambda: schedules.exponential_decay(0.1, float("inf")), "exponential_decay: gamma must be"),
        (lambda: schedules.cosine_decay(0.1, 0), "cosine_decay: decay_steps must be an int >= 1"),
        (lambda: schedules.linear_warmup(0.1, 5, start_factor=1.5), "linear_warmup: start_factor must be"),
        (lambda: schedules.warmup_cosine(0.1, -1, 10), "linear_warmup: warmup_steps must be an int >= 0"),
        (lambda: schedules.one_cycle(0.1, 10, anneal_strategy="exp"), "anneal_strategy must be 'cos' or 'linear'"),
        (lambda: schedules.one_cycle(0.1, 10, div_factor=0.0), r"one_cycle: div_factor must be a finite number in \("),
        (lambda: schedules.one_cycle(0.1, 10.5), "one_cycle: total_steps must be an int"),
        (lambda: schedules.sequential([], []), "sequential: give at least one schedule"),
        (lambda: schedules.sequential([0.1, 0.2], []), "sequential: 2 schedules need 1 milestones, got 0"),
        (lambda: schedules.sequential([0.1, 0.2, 0.3], [5, 5]), r"sequential: milestones must increase"),
        (lambda: schedules.sequential([0.1, -0.2], [5]), "sequential: each value must be a finite number"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()
