"""Named optimizers with ``torch.optim``'s exact update rules and defaults.

Each returns an :class:`~jcnn.optim.Optimizer` whose state is a NamedTuple holding the step ``count``
(updates made so far; a schedule ``learning_rate(count)`` gives the rate of the next update) and
buffers shaped like params. The updates are ``new_params − params`` of the torch step, so
``apply_updates(params, updates)`` reproduces ``torch.optim.X(...).step()``. ``weight_decay`` is L2 added
to the gradient (``g + wd·p``) except for :func:`adamw` (and ``decoupled_weight_decay=True``), which
shrinks the params first (``p·(1 − lr·wd)``). ``maximize=True`` ascends (uses ``−g``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jcnn._types import Array, Params
from jcnn.optim.base import (
    Optimizer,
    OptState,
    ScalarOrSchedule,
    Updates,
    cast_like,
    check_float_leaves,
    check_learning_rate,
    check_scalar,
    check_update_args,
    downcast_like,
    init_count,
    lr_at,
    make_optimizer,
    require_params,
    upcast,
    zeros_like_tree,
)
from jcnn.optim.transforms import float_count

tmap = jax.tree_util.tree_map


def _betas(who: str, b1: float, b2: float) -> tuple[float, float]:
    return (
        check_scalar(who, "b1", b1, high=1.0, high_open=True),
        check_scalar(who, "b2", b2, high=1.0, high_open=True),
    )


def _named(
    name: str,
    init_state: Callable[[Params], Any],
    step: Callable[[Any, Any, Any, Any], tuple[Updates, Any]],
    learning_rate: ScalarOrSchedule,
    maximize: bool,
) -> Optimizer:
    """Wire the common parts: checks, the sign for ``maximize``, the learning rate at ``state.count``.

    ``step(grads, state, params, lr)`` returns ``(new_params_minus_params, new_state)``.
    """

    def init(params: Params) -> OptState:
        check_float_leaves(f"{name}.init", params, "params")
        return init_state(params)

    def update(grads: Updates, state: Any, params: Params | None = None) -> tuple[Updates, OptState]:
        check_update_args(f"{name}.update", grads, params)
        require_params(f"{name}.update", params)
        g = upcast(grads)
        if maximize:
            g = tmap(jnp.negative, g)
        updates, new_state = step(g, state, upcast(params), lr_at(learning_rate, state.count))
        return downcast_like(updates, params), new_state

    return make_optimizer(name, init, update)


def _l2(grads: Any, params: Any, wd: float) -> Any:
    return grads if wd == 0 else tmap(lambda g, p: g + wd * p, grads, params)


def _decay_params(params: Any, lr: Any, wd: float) -> Any:
    """``p · (1 − lr·wd)``, the decoupled weight decay applied before the step."""
    return params if wd == 0 else tmap(lambda p: p * (1.0 - cast_like(lr, p) * wd), params)


def _diff(new: Any, old: Any) -> Any:
    return tmap(lambda n, o: n - o, new, old)


# ------------------------------------------------------------------------------------------------ SGD


class SGDState(NamedTuple):
    """``momentum_buffer`` is ``None`` when ``momentum == 0``."""

    count: Array  # type: ignore[assignment]  # the public field shadows tuple.count (as in optax)
    momentum_buffer: Any


def sgd(
    learning_rate: ScalarOrSchedule = 1e-3,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    *,
    maximize: bool = False,
) -> Optimizer:
    """``torch.optim.SGD``: ``g ← g + wd·p``; with momentum ``b ← g`` (first step) else
    ``b ← μ·b + (1 − dampening)·g``, and ``g ← g + μ·b`` (nesterov) or ``g ← b``; ``p ← p − lr·g``."""
    lr0 = check_learning_rate("sgd", learning_rate)
    mom = check_scalar("sgd", "momentum", momentum)
    damp = check_scalar("sgd", "dampening", dampening)
    wd = check_scalar("sgd", "weight_decay", weight_decay)
    if nesterov and (mom <= 0 or damp != 0):
        raise ValueError("sgd: nesterov momentum requires a momentum and zero dampening (as torch.optim.SGD)")

    def init_state(params: Params) -> SGDState:
        return SGDState(init_count(), zeros_like_tree(params) if mom != 0 else None)

    def step(g: Updates, state: SGDState, p: Params, lr: float | Array) -> tuple[Updates, SGDState]:
        g = _l2(g, p, wd)
        buf = None
        if mom != 0:
            first = state.count == 0
            buf = tmap(lambda b, gi: jnp.where(first, gi, mom * b + (1.0 - damp) * gi), state.momentum_buffer, g)
            g = tmap(lambda gi, b: gi + mom * b, g, buf) if nesterov else buf
        upd = tmap(lambda gi: -cast_like(lr, gi) * gi, g)
        return upd, SGDState(state.count + 1, buf)

    return _named("sgd", init_state, step, lr0, maximize)


# -------------------------------------------------------------------------------------------- Adagrad


class AdagradState(NamedTuple):
    """``sum`` the accumulated ``g²``."""

    count: Array  # type: ignore[assignment]  # the public field shadows tuple.count (as in optax)
    sum: Any


def adagrad(
    learning_rate: ScalarOrSchedule = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    *,
    maximize: bool = False,
) -> Optimizer:
    """``torch.optim.Adagrad``: ``g ← g + wd·p``; ``clr = lr / (1 + (t−1)·lr_decay)``; ``h ← h + g²``;
    ``p ← p − clr·g / (√h + eps)``."""
    lr0 = check_learning_rate("adagrad", learning_rate)
    lr_decay = check_scalar("adagrad", "lr_decay", lr_decay)
    wd = check_scalar("adagrad", "weight_decay", weight_decay)
    acc0 = check_scalar("adagrad", "initial_accumulator_value", initial_accumulator_value)
    eps = check_scalar("adagrad", "eps", eps)

    def init_state(params: Params) -> AdagradState:
        return AdagradState(init_count(), zeros_like_tree(params, acc0))

    def step(g: Updates, state: AdagradState, p: Params, lr: float | Array) -> tuple[Updates, AdagradState]:
        g = _l2(g, p, wd)
        clr = lr / (1.0 + float_count(state.count) * lr_decay)
        acc = tmap(lambda h, gi: h + gi * gi, state.sum, g)
        upd = tmap(lambda gi, h: -cast_like(clr, gi) * (gi / (jnp.sqrt(h) + eps)), g, acc)
        return upd, AdagradState(state.count + 1, acc)

    return _named("adagrad", init_state, step, lr0, maximize)


# -------------------------------------------------------------------------------------------- RMSprop


class RMSpropState(NamedTuple):
    """``grad_avg`` is ``None`` unless centered; ``momentum_buffer`` is ``None`` unless momentum > 0."""

    count: Array  # type: ignore[assignment]  # the public field shadows tuple.count (as in optax)
    square_avg: Any
    grad_avg: Any
    momentum_buffer: Any


def rmsprop(
    learning_rate: ScalarOrSchedule = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    *,
    maximize: bool = False,
) -> Optimizer:
    """``torch.optim.RMSprop``: ``g ← g + wd·p``; ``v ← α·v + (1−α)·g²``; ``d = √v + eps`` or, centered,
    ``m ← α·m + (1−α)·g``, ``d = √(v − m²) + eps``; with momentum ``b ← μ·b + g/d``, ``p ← p − lr·b``,
    else ``p ← p − lr·g/d``."""
    lr0 = check_learning_rate("rmsprop", learning_rate)
    alpha = check_scalar("rmsprop", "alpha", alpha, high=1.0)
    eps = check_scalar("rmsprop", "eps", eps)
    wd = check_scalar("rmsprop", "weight_decay", weight_decay)
    mom = check_scalar("rmsprop", "momentum", momentum)

    def init_state(params: Params) -> RMSpropState:
        return RMSpropState(
            init_count(),
            zeros_like_tree(params),
            zeros_like_tree(params) if centered else None,
            zeros_like_tree(params) if mom > 0 else None,
        )

    def step(g: Updates, state: RMSpropState, p: Params, lr: float | Array) -> tuple[Updates, RMSpropState]:
        g = _l2(g, p, wd)
        sq = tmap(lambda v, gi: alpha * v + (1.0 - alpha) * gi * gi, state.square_avg, g)
        if centered:
            ga = tmap(lambda m, gi: m + (1.0 - alpha) * (gi - m), state.grad_avg, g)
            den = tmap(lambda v, m: jnp.sqrt(v - m * m) + eps, sq, ga)
        else:
            ga = None
            den = tmap(lambda v: jnp.sqrt(v) + eps, sq)
        if mom > 0:
            buf = tmap(lambda b, gi, d: mom * b + gi / d, state.momentum_buffer, g, den)
            upd = tmap(lambda b: -cast_like(lr, b) * b, buf)
        else:
            buf = None
            upd = tmap(lambda gi, d: -cast_like(lr, gi) * (gi / d), g, den)
        return upd, RMSpropState(state.count + 1, sq, ga, buf)

    return _named("rmsprop", init_state, step, lr0, maximize)


# ----------------------------------------------------------------------------------------- Adam, AdamW


class AdamState(NamedTuple):
    """``mu`` first moment, ``nu`` second moment, ``nu_max`` its running max (``None`` unless amsgrad)."""

    count: Array  # type: ignore[assignment]  # the public field shadows tuple.count (as in optax)
    mu: Any
    nu: Any
    nu_max: Any


def adam(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    *,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> Optimizer:
    """``torch.optim.Adam`` (``betas=(b1, b2)``): ``g ← g + wd·p`` (or ``p ← p·(1 − lr·wd)`` when
    decoupled); ``m ← b1·m + (1−b1)·g``; ``v ← b2·v + (1−b2)·g²`` (amsgrad: ``v̂ = max(v̂, v)``);
    ``p ← p − (lr/(1−b1ᵗ))·m / (√v/√(1−b2ᵗ) + eps)``."""
    return _adam("adam", learning_rate, b1, b2, eps, weight_decay, amsgrad, decoupled_weight_decay, maximize)


def _adam(
    who: str,
    learning_rate: ScalarOrSchedule,
    b1: float,
    b2: float,
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    decoupled_weight_decay: bool,
    maximize: bool,
) -> Optimizer:
    lr0 = check_learning_rate(who, learning_rate)
    b1, b2 = _betas(who, b1, b2)
    eps = check_scalar(who, "eps", eps)
    wd = check_scalar(who, "weight_decay", weight_decay)

    def init_state(params: Params) -> AdamState:
        return AdamState(
            init_count(), zeros_like_tree(params), zeros_like_tree(params), zeros_like_tree(params) if amsgrad else None
        )

    def step(g: Updates, state: AdamState, p: Params, lr: float | Array) -> tuple[Updates, AdamState]:
        if decoupled_weight_decay:
            p_new = _decay_params(p, lr, wd)
        else:
            p_new, g = p, _l2(g, p, wd)
        count = state.count + 1
        t = float_count(count)
        step_size = lr / (1.0 - b1**t)
        bc2_sqrt = jnp.sqrt(1.0 - b2**t)
        mu = tmap(lambda m, gi: m + (1.0 - b1) * (gi - m), state.mu, g)
        nu = tmap(lambda v, gi: b2 * v + (1.0 - b2) * gi * gi, state.nu, g)
        nu_max = tmap(jnp.maximum, state.nu_max, nu) if amsgrad else None
        den = tmap(lambda v: jnp.sqrt(v) / cast_like(bc2_sqrt, v) + eps, nu_max if amsgrad else nu)
        p_new = tmap(lambda q, m, d: q - cast_like(step_size, q) * (m / d), p_new, mu, den)
        return _diff(p_new, p), AdamState(count, mu, nu, nu_max)

    return _named(who, init_state, step, lr0, maximize)


def adamw(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
) -> Optimizer:
    """``torch.optim.AdamW``: Adam with decoupled weight decay ``p ← p·(1 − lr·wd)`` before the step."""
    return _adam("adamw", learning_rate, b1, b2, eps, weight_decay, amsgrad, True, maximize)


# ------------------------------------------------------------------------------------------- Adadelta


class AdadeltaState(NamedTuple):
    """``square_avg`` running mean of ``g²``; ``acc_delta`` running mean of the squared steps."""

    count: Array  # type: ignore[assignment]  # the public field shadows tuple.count (as in optax)
    square_avg: Any
    acc_delta: Any


def adadelta(
    learning_rate: ScalarOrSchedule = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    *,
    maximize: bool = False,
) -> Optimizer:
    """``torch.optim.Adadelta``: ``g ← g + wd·p``; ``v ← ρ·v + (1−ρ)·g²``;
    ``δ = √(a + eps)/√(v + eps)·g``; ``a ← ρ·a + (1−ρ)·δ²``; ``p ← p − lr·δ``."""
    lr0 = check_learning_rate("adadelta", learning_rate)
    rho = check_scalar("adadelta", "rho", rho, high=1.0)
    eps = check_scalar("adadelta", "eps", eps)
    wd = check_scalar("adadelta", "weight_decay", weight_decay)

    def init_state(params: Params) -> AdadeltaState:
        return AdadeltaState(init_count(), zeros_like_tree(params), zeros_like_tree(params))

    def step(g: Updates, state: AdadeltaState, p: Params, lr: float | Array) -> tuple[Updates, AdadeltaState]:
        g = _l2(g, p, wd)
        sq = tmap(lambda v, gi: rho * v + (1.0 - rho) * gi * gi, state.square_avg, g)
        delta = tmap(lambda a, v, gi: jnp.sqrt(a + eps) / jnp.sqrt(v + eps) * gi, state.acc_delta, sq, g)
        acc = tmap(lambda a, d: rho * a + (1.0 - rho) * d * d, state.acc_delta, delta)
        upd = tmap(lambda d: -cast_like(lr, d) * d, delta)
        return upd, AdadeltaState(state.count + 1, sq, acc)

    return _named("adadelta", init_state, step, lr0, maximize)


# --------------------------------------------------------------------------------------------- Adamax


class AdamaxState(NamedTuple):
    """``mu`` first moment; ``inf_norm`` the exponentially weighted infinity norm ``u``."""

    count: Array  # type: ignore[assignment]  # the public field shadows tuple.count (as in optax)
    mu: Any
    inf_norm: Any


def adamax(
    learning_rate: ScalarOrSchedule = 2e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    *,
    maximize: bool = False,
) -> Optimizer:
    """``torch.optim.Adamax``: ``g ← g + wd·p``; ``m ← b1·m + (1−b1)·g``; ``u ← max(b2·u, |g| + eps)``;
    ``p ← p − (lr/(1−b1ᵗ))·m/u``."""
    lr0 = check_learning_rate("adamax", learning_rate)
    b1, b2 = _betas("adamax", b1, b2)
    eps = check_scalar("adamax", "eps", eps)
    wd = check_scalar("adamax", "weight_decay", weight_decay)

    def init_state(params: Params) -> AdamaxState:
        return AdamaxState(init_count(), zeros_like_tree(params), zeros_like_tree(params))

    def step(g: Updates, state: AdamaxState, p: Params, lr: float | Array) -> tuple[Updates, AdamaxState]:
        g = _l2(g, p, wd)
        count = state.count + 1
        clr = lr / (1.0 - b1 ** float_count(count))
        mu = tmap(lambda m, gi: m + (1.0 - b1) * (gi - m), state.mu, g)
        u = tmap(lambda n, gi: jnp.maximum(b2 * n, jnp.abs(gi) + eps), state.inf_norm, g)
        upd = tmap(lambda m, n: -cast_like(clr, m) * (m / n), mu, u)
        return upd, AdamaxState(count, mu, u)

    return _named("adamax", init_state, step, lr0, maximize)


# ---------------------------------------------------------------------------------------------- NAdam


class NAdamState(NamedTuple):
    """``mu_product`` is ``Π μ_i`` (float scalar), ``mu``/``nu`` the first/second moments."""

    count: Array  # type: ignore[assignment]  # the public field shadows tuple.count (as in optax)
    mu_product: Array
    mu: Any
    nu: Any


def nadam(
    learning_rate: ScalarOrSchedule = 2e-3,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum_decay: float = 4e-3,
    decoupled_weight_decay: bool = False,
    *,
    maximize: bool = False,
) -> Optimizer:
    """``torch.optim.NAdam``: ``μ_t = b1·(1 − ½·0.96^(t·ψ))`` (ψ = momentum_decay); ``m``, ``v`` as Adam;
    ``d = √(v/(1−b2ᵗ)) + eps``; ``p ← p − lr(1−μ_t)/(1−Πμ)·g/d − lr·μ_{t+1}/(1−Πμ·μ_{t+1})·m/d``."""
    lr0 = check_learning_rate("nadam", learning_rate)
    b1, b2 = _betas("nadam", b1, b2)
    eps = check_scalar("nadam", "eps", eps)
    wd = check_scalar("nadam", "weight_decay", weight_decay)
    psi = check_scalar("nadam", "momentum_decay", momentum_decay)

    def init_state(params: Params) -> NAdamState:
        return NAdamState(
            init_count(), jnp.ones((), jnp.result_type(float)), zeros_like_tree(params), zeros_like_tree(params)
        )

    def step(g: Updates, state: NAdamState, p: Params, lr: float | Array) -> tuple[Updates, NAdamState]:
        if decoupled_weight_decay:
            p_new = _decay_params(p, lr, wd)
        else:
            p_new, g = p, _l2(g, p, wd)
        count = state.count + 1
        t = float_count(count)
        bc2 = 1.0 - b2**t
        mu_t = b1 * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1.0) * psi))
        mu_prod = state.mu_product * mu_t
        c_grad = lr * (1.0 - mu_t) / (1.0 - mu_prod)
        c_mom = lr * mu_next / (1.0 - mu_prod * mu_next)
        mu = tmap(lambda m, gi: m + (1.0 - b1) * (gi - m), state.mu, g)
        nu = tmap(lambda v, gi: b2 * v + (1.0 - b2) * gi * gi, state.nu, g)
        den = tmap(lambda v: jnp.sqrt(v / cast_like(bc2, v)) + eps, nu)
        p_new = tmap(
            lambda q, gi, m, d: q - cast_like(c_grad, q) * (gi / d) - cast_like(c_mom, q) * (m / d), p_new, g, mu, den
        )
        return _diff(p_new, p), NAdamState(count, mu_prod, mu, nu)

    return _named("nadam", init_state, step, lr0, maximize)
