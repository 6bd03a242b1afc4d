"""Tests of ``jcnn.optim.alias``. The named optimizers against torch.optim, step for step: 200 steps from the same params with the same
gradient rule, on a quadratic (float64, every non-default option) and on a small CNN (float64 for every
optimizer; float32 for three), within 1e-5 relative at every step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jcnn import optim
from jcnn.optim import schedules
from tests.optim._util import quadratic, run_jax, run_torch, small_cnn, worst_step_error

TOL = 1e-5
TO = torch.optim
LRS = torch.optim.lr_scheduler


def _p(name, jax_opt, torch_opt, sign=1.0, sched=None):
    return pytest.param(jax_opt, torch_opt, sign, sched, id=name)


# (jcnn optimizer, torch optimizer factory, gradient sign (−1 with maximize), torch scheduler factory)
QUADRATIC = [
    _p("sgd", optim.sgd(0.05), lambda ps: TO.SGD(ps, lr=0.05)),
    _p("sgd_default_lr", optim.sgd(), lambda ps: TO.SGD(ps)),
    _p(
        "sgd_momentum_dampening_wd",
        optim.sgd(0.05, momentum=0.9, dampening=0.3, weight_decay=0.05),
        lambda ps: TO.SGD(ps, lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.05),
    ),
    _p(
        "sgd_nesterov_maximize",
        optim.sgd(0.03, momentum=0.8, nesterov=True, maximize=True),
        lambda ps: TO.SGD(ps, lr=0.03, momentum=0.8, nesterov=True, maximize=True),
        sign=-1.0,
    ),
    _p(
        "sgd_step_decay",
        optim.sgd(schedules.step_decay(0.1, 30, 0.5), momentum=0.5),
        lambda ps: TO.SGD(ps, lr=0.1, momentum=0.5),
        sched=lambda o: LRS.StepLR(o, 30, 0.5),
    ),
    _p("adagrad", optim.adagrad(0.1), lambda ps: TO.Adagrad(ps, lr=0.1)),
    _p(
        "adagrad_all",
        optim.adagrad(0.2, lr_decay=0.01, weight_decay=0.05, initial_accumulator_value=0.3, eps=1e-6),
        lambda ps: TO.Adagrad(ps, lr=0.2, lr_decay=0.01, weight_decay=0.05, initial_accumulator_value=0.3, eps=1e-6),
    ),
    _p("rmsprop", optim.rmsprop(0.01), lambda ps: TO.RMSprop(ps, lr=0.01)),
    _p(
        "rmsprop_all",
        optim.rmsprop(0.005, alpha=0.9, eps=1e-6, weight_decay=0.05, momentum=0.7, centered=True, maximize=True),
        lambda ps: TO.RMSprop(
            ps, lr=0.005, alpha=0.9, eps=1e-6, weight_decay=0.05, momentum=0.7, centered=True, maximize=True
        ),
        sign=-1.0,
    ),
    _p("rmsprop_centered", optim.rmsprop(0.01, centered=True), lambda ps: TO.RMSprop(ps, lr=0.01, centered=True)),
    _p("adam", optim.adam(0.05), lambda ps: TO.Adam(ps, lr=0.05)),
    _p(
        "adam_all",
        optim.adam(0.02, b1=0.8, b2=0.95, eps=1e-6, weight_decay=0.05, amsgrad=True),
        lambda ps: TO.Adam(ps, lr=0.02, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.05, amsgrad=True),
    ),
    _p(
        "adam_decoupled_maximize",
        optim.adam(0.02, weight_decay=0.1, decoupled_weight_decay=True, maximize=True),
        lambda ps: TO.Adam(ps, lr=0.02, weight_decay=0.1, decoupled_weight_decay=True, maximize=True),
        sign=-1.0,
    ),
    _p(
        "adam_cosine",
        optim.adam(schedules.cosine_decay(0.05, 150, alpha=0.1)),
        lambda ps: TO.Adam(ps, lr=0.05),
        sched=lambda o: LRS.CosineAnnealingLR(o, 150, eta_min=0.005),
    ),
    _p("adamw", optim.adamw(0.05), lambda ps: TO.AdamW(ps, lr=0.05)),
    _p(
        "adamw_amsgrad",
        optim.adamw(0.03, b1=0.85, weight_decay=0.2, amsgrad=True),
        lambda ps: TO.AdamW(ps, lr=0.03, betas=(0.85, 0.999), weight_decay=0.2, amsgrad=True),
    ),
    _p("adadelta", optim.adadelta(), lambda ps: TO.Adadelta(ps)),
    _p(
        "adadelta_all",
        optim.adadelta(0.5, rho=0.8, eps=1e-5, weight_decay=0.05),
        lambda ps: TO.Adadelta(ps, lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.05),
    ),
    _p("adamax", optim.adamax(0.05), lambda ps: TO.Adamax(ps, lr=0.05)),
    _p(
        "adamax_all",
        optim.adamax(0.05, b1=0.8, b2=0.99, eps=1e-6, weight_decay=0.05),
        lambda ps: TO.Adamax(ps, lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
    ),
    _p("nadam", optim.nadam(0.05), lambda ps: TO.NAdam(ps, lr=0.05)),
    _p(
        "nadam_all",
        optim.nadam(0.03, b1=0.8, b2=0.99, eps=1e-6, weight_decay=0.05, momentum_decay=0.01),
        lambda ps: TO.NAdam(ps, lr=0.03, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05, momentum_decay=0.01),
    ),
    _p(
        "nadam_decoupled",
        optim.nadam(0.03, weight_decay=0.1, decoupled_weight_decay=True),
        lambda ps: TO.NAdam(ps, lr=0.03, weight_decay=0.1, decoupled_weight_decay=True),
    ),
]


@pytest.fixture(autouse=True)
def _torch_float64_scalars():
    """torch keeps step counters and NAdam's μ-product in the default dtype: make it float64 so that the
    float64 comparison checks the update math, not torch's float32 bookkeeping."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.mark.parametrize("jax_opt, torch_opt, sign, sched", QUADRATIC)
def test_quadratic_trajectory_matches_torch(jax_opt, torch_opt, sign, sched):
    params, jgrad, tgrad = quadratic(np.float64, sign)
    got = run_jax(jax_opt, params, jgrad)
    want = run_torch(torch_opt, params, tgrad, make_sched=sched)
    assert np.abs(want[-1] - want[0]).max() > 1e-3, "the trajectory must move for the test to mean anything"
    err, at = worst_step_error(got, want)
    assert err <= TOL, f"relative error {err:.2e} at step {at}"


CNN64 = [
    _p(
        "sgd",
        optim.sgd(0.1, momentum=0.9, dampening=0.1, weight_decay=1e-3),
        lambda ps: TO.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-3),
    ),
    _p(
        "adagrad",
        optim.adagrad(0.05, lr_decay=1e-3, weight_decay=1e-3, initial_accumulator_value=0.1),
        lambda ps: TO.Adagrad(ps, lr=0.05, lr_decay=1e-3, weight_decay=1e-3, initial_accumulator_value=0.1),
    ),
    _p(
        "rmsprop",
        optim.rmsprop(1e-3, momentum=0.5, centered=True, weight_decay=1e-3),
        lambda ps: TO.RMSprop(ps, lr=1e-3, momentum=0.5, centered=True, weight_decay=1e-3),
    ),
    _p(
        "adam",
        optim.adam(1e-2, amsgrad=True, weight_decay=1e-3),
        lambda ps: TO.Adam(ps, lr=1e-2, amsgrad=True, weight_decay=1e-3),
    ),
    _p(
        "adamw",
        optim.adamw(schedules.warmup_cosine(1e-2, 20, 180, alpha=0.1)),
        lambda ps: TO.AdamW(ps, lr=1e-2),
        sched=lambda o: LRS.SequentialLR(
            o, [LRS.LinearLR(o, 1 / 3, total_iters=20), LRS.CosineAnnealingLR(o, 180, eta_min=1e-3)], milestones=[20]
        ),
    ),
    _p("adadelta", optim.adadelta(weight_decay=1e-3), lambda ps: TO.Adadelta(ps, weight_decay=1e-3)),
    _p("adamax", optim.adamax(1e-2, weight_decay=1e-3), lambda ps: TO.Adamax(ps, lr=1e-2, weight_decay=1e-3)),
    _p(
        "nadam",
        optim.nadam(1e-2, weight_decay=1e-3, momentum_decay=1e-2),
        lambda ps: TO.NAdam(ps, lr=1e-2, weight_decay=1e-3, momentum_decay=1e-2),
    ),
]


@pytest.mark.parametrize("jax_opt, torch_opt, sign, sched", CNN64)
def test_small_cnn_trajectory_matches_torch_float64(jax_opt, torch_opt, sign, sched):
    params, jgrad, tgrad = small_cnn(np.float64)
    err, at = worst_step_error(run_jax(jax_opt, params, jgrad), run_torch(torch_opt, params, tgrad, make_sched=sched))
    assert err <= TOL, f"relative error {err:.2e} at step {at}"


CNN32 = [
    _p(
        "sgd_nesterov",
        optim.sgd(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
        lambda ps: TO.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    ),
    _p("adam", optim.adam(1e-2), lambda ps: TO.Adam(ps, lr=1e-2)),
    _p("rmsprop", optim.rmsprop(1e-3, centered=True), lambda ps: TO.RMSprop(ps, lr=1e-3, centered=True)),
]


@pytest.mark.parametrize("jax_opt, torch_opt, sign, sched", CNN32)
def test_small_cnn_trajectory_matches_torch_float32(jax_opt, torch_opt, sign, sched):
    torch.set_default_dtype(torch.float32)
    params, jgrad, tgrad = small_cnn(np.float32)
    got = run_jax(jax_opt, params, jgrad)
    assert got.dtype == np.float32
    err, at = worst_step_error(got, run_torch(torch_opt, params, tgrad, make_sched=sched))
    assert err <= TOL, f"relative error {err:.2e} at step {at}"


@settings(max_examples=6)  # each example compiles one 40-step scan
@given(
    name=st.sampled_from(["sgd", "rmsprop", "adam", "nadam", "adamax", "adagrad"]),
    lr=st.floats(1e-3, 0.1),
    beta=st.floats(0.0, 0.99),
    wd=st.sampled_from([0.0, 1e-3, 0.1]),
    flag=st.booleans(),
)
def test_random_hyperparameters_match_torch(name, lr, beta, wd, flag):
    """Hyperparameters drawn at random, 40 steps on the quadratic (float64)."""
    jax_opt, torch_opt = {
        "sgd": (
            optim.sgd(lr, momentum=beta, nesterov=flag and beta > 0, weight_decay=wd),
            lambda ps: TO.SGD(ps, lr=lr, momentum=beta, nesterov=flag and beta > 0, weight_decay=wd),
        ),
        # alpha >= 0.5: at alpha = 0 the centered variance v − m² is g² − g², pure rounding noise in both.
        "rmsprop": (
            optim.rmsprop(lr, alpha=0.5 + beta / 2, momentum=0.5, centered=flag, weight_decay=wd),
            lambda ps: TO.RMSprop(ps, lr=lr, alpha=0.5 + beta / 2, momentum=0.5, centered=flag, weight_decay=wd),
        ),
        "adam": (
            optim.adam(lr, b1=beta, weight_decay=wd, amsgrad=flag),
            lambda ps: TO.Adam(ps, lr=lr, betas=(beta, 0.999), weight_decay=wd, amsgrad=flag),
        ),
        "nadam": (
            optim.nadam(lr, b1=beta, weight_decay=wd, decoupled_weight_decay=flag),
            lambda ps: TO.NAdam(ps, lr=lr, betas=(beta, 0.999), weight_decay=wd, decoupled_weight_decay=flag),
        ),
        "adamax": (
            optim.adamax(lr, b1=beta, weight_decay=wd),
            lambda ps: TO.Adamax(ps, lr=lr, betas=(beta, 0.999), weight_decay=wd),
        ),
        "adagrad": (
            optim.adagrad(lr, lr_decay=beta / 10, weight_decay=wd),
            lambda ps: TO.Adagrad(ps, lr=lr, lr_decay=beta / 10, weight_decay=wd),
        ),
    }[name]
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        params, jgrad, tgrad = quadratic(np.float64)
        err, at = worst_step_error(run_jax(jax_opt, params, jgrad, 40), run_torch(torch_opt, params, tgrad, 40))
    finally:
        torch.set_default_dtype(old)
    assert err <= TOL, f"relative error {err:.2e} at step {at}"


_EPS_REGIME = {p.id: p for p in QUADRATIC}


@pytest.mark.parametrize("case", ["adam", "nadam_all", "adamax_all", "rmsprop_all", "adagrad_all", "adadelta_all"])
def test_eps_dominated_gradients_match_torch(case):
    """Gradients of order eps (the quadratic's times 1e-7), where eps's placement (inside or outside the
    square root, before or after the bias correction) changes every step: with O(1) gradients it moves the
    result by ~1e-8 and the trajectories above cannot see it."""
    jax_opt, torch_opt, sign, _ = _EPS_REGIME[case].values
    params, jgrad, tgrad = quadratic(np.float64, sign=1e-7 * sign)
    err, at = worst_step_error(run_jax(jax_opt, params, jgrad, 40), run_torch(torch_opt, params, tgrad, 40))
    assert err <= TOL, f"relative error {err:.2e} at step {at}"
