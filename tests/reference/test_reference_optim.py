"""The seed's textbook optimizer forms (jcnn.reference.optim) and how each maps onto torch.optim's form,
which jcnn.optim implements: 200 float64 steps on the quadratic, parameters and buffers compared."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jcnn.reference.optim as ref
from jcnn import optim
from tests.helpers import assert_close
from tests.optim._util import quadratic

STEPS = 200


def _run(opt, params, grad_fn):
    """Eager jcnn steps (float64), yielding ``(params, state)`` after each update."""
    state = opt.init(params)
    step = jax.jit(lambda p, s: (lambda us: (optim.apply_updates(p, us[0]), us[1]))(opt.update(grad_fn(p), s, p)))
    for _ in range(STEPS):
        params, state = step(params, state)
        yield params, state


def _problem():
    params, jgrad, _ = quadratic(np.float64)
    return params, jgrad


def test_sgd_is_the_textbook_step():
    params, grad = _problem()
    w = dict(params)
    for p, _ in _run(optim.sgd(0.05), params, grad):
        g = grad(w)
        w = {k: ref.sgd_step(w[k], g[k], 0.05) for k in w}
        for k in w:
            assert_close(p[k], w[k], 1e-12, k)


def test_momentum_velocity_is_minus_lr_times_torch_buffer():
    """Textbook v ← αv − η∇L, W ← W + v equals torch's b ← αb + ∇L, W ← W − ηb with v = −η·b."""
    lr, alpha = 0.05, 0.9
    params, grad = _problem()
    w, v = dict(params), {k: np.zeros_like(x) for k, x in params.items()}
    for p, state in _run(optim.sgd(lr, momentum=alpha), params, grad):
        g = grad(w)
        for k in w:
            w[k], v[k] = ref.momentum_step(w[k], v[k], g[k], lr, alpha)
            assert_close(p[k], w[k], 1e-10, k)
            assert_close(-lr * np.asarray(state.momentum_buffer[k]), v[k], 1e-10, k)


def test_adagrad_is_the_textbook_form():
    """h ← h + ∇L⊙∇L, W ← W − η∇L/(√h + ε): torch's Adagrad with lr_decay = 0, h = state.sum."""
    params, grad = _problem()
    w, h = dict(params), {k: np.zeros_like(x) for k, x in params.items()}
    for p, state in _run(optim.adagrad(0.1, eps=1e-7), params, grad):
        g = grad(w)
        for k in w:
            w[k], h[k] = ref.adagrad_step(w[k], h[k], g[k], 0.1, 1e-7)
            assert_close(p[k], w[k], 1e-10, k)
            assert_close(state.sum[k], h[k], 1e-10, k)


def test_rmsprop_is_the_textbook_form():
    """h ← ρh + (1 − ρ)∇L⊙∇L, W ← W − η∇L/(√h + ε): torch's RMSprop with alpha = ρ."""
    params, grad = _problem()
    w, h = dict(params), {k: np.zeros_like(x) for k, x in params.items()}
    for p, state in _run(optim.rmsprop(0.01, alpha=0.9), params, grad):
        g = grad(w)
        for k in w:
            w[k], h[k] = ref.rmsprop_step(w[k], h[k], g[k], 0.01, 0.9, 1e-8)
            assert_close(p[k], w[k], 1e-10, k)
            assert_close(state.square_avg[k], h[k], 1e-10, k)


def test_adam_is_kingma_ba():
    """torch folds the bias corrections into the step size and the denominator; the result is Kingma & Ba's
    W ← W − η·m̂/(√v̂ + ε), with the same m and v."""
    params, grad = _problem()
    w, m, v = (
        dict(params),
        {k: np.zeros_like(x) for k, x in params.items()},
        {k: np.zeros_like(x) for k, x in params.items()},
    )
    for t, (p, state) in enumerate(_run(optim.adam(0.05, b1=0.8, b2=0.99), params, grad), start=1):
        g = grad(w)
        for k in w:
            w[k], m[k], v[k] = ref.adam_step(w[k], m[k], v[k], g[k], t, 0.05, 0.8, 0.99, 1e-8)
            assert_close(p[k], w[k], 1e-10, k)
            assert_close(state.mu[k], m[k], 1e-10, k)
            assert_close(state.nu[k], v[k], 1e-10, k)


def test_references_are_pure():
    w, v, g = np.ones(3), np.zeros(3), np.full(3, 0.5)
    ref.momentum_step(w, v, g, 0.1, 0.9)
    assert np.all(w == 1.0) and np.all(v == 0.0)
    assert ref.adam_step(w, v, v, g, 1, 0.1)[0] == pytest.approx(np.full(3, 0.9))
