"""Learning-rate schedules: pure functions ``step -> lr`` equal to ``torch.optim.lr_scheduler``'s.

``step`` is the number of updates made so far (the optimizer state's ``count``): the rate of the first
update is ``schedule(0)``, as torch's scheduler before its first ``scheduler.step()``. Each schedule
works on Python ints and on traced int arrays (under ``jax.jit``), and never retraces per step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax.numpy as jnp
from jax.typing import ArrayLike

from jcnn._types import Array
from jcnn.optim.base import check_scalar

Schedule = Callable[[Array], Array]
"""A learning-rate schedule: ``step -> lr`` (``step`` the updates made so far)."""


def _f(step: ArrayLike) -> Array:
    return jnp.asarray(step).astype(jnp.result_type(float))


def _steps(who: str, name: str, value: int, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{who}: {name} must be an int >= {low}, got {value!r}")
    return value


def constant(value: float) -> Schedule:
    """``lr(t) = value``."""
    value = check_scalar("constant", "value", value)
    return lambda step: jnp.full((), value, jnp.result_type(float))


def step_decay(init_value: float, step_size: int, gamma: float = 0.1) -> Schedule:
    """``lr(t) = init_value · gamma^⌊t / step_size⌋`` (``StepLR``)."""
    init_value = check_scalar("step_decay", "init_value", init_value)
    step_size = _steps("step_decay", "step_size", step_size)
    gamma = check_scalar("step_decay", "gamma", gamma)
    return lambda step: init_value * gamma ** jnp.floor_divide(_f(step), step_size)


def multi_step(init_value: float, milestones: Sequence[int], gamma: float = 0.1) -> Schedule:
    """``lr(t) = init_value · gamma^(number of milestones ≤ t)`` (``MultiStepLR``; a repeated milestone
    decays twice, as torch)."""
    init_value = check_scalar("multi_step", "init_value", init_value)
    gamma = check_scalar("multi_step", "gamma", gamma)
    ms = sorted(_steps("multi_step", "each milestone", int(m) if not isinstance(m, bool) else m, 0) for m in milestones)
    marks = jnp.asarray(ms, jnp.int32) if ms else None

    def schedule(step: Array) -> Array:
        if marks is None:
            return _f(init_value)
        n = jnp.sum(jnp.asarray(step)[..., None] >= marks, axis=-1)
        return init_value * gamma ** _f(n)

    return schedule


def exponential_decay(init_value: float, gamma: float) -> Schedule:
    """``lr(t) = init_value · gammaᵗ`` (``ExponentialLR``)."""
    init_value = check_scalar("exponential_decay", "init_value", init_value)
    gamma = check_scalar("exponential_decay", "gamma", gamma)
    return lambda step: init_value * gamma ** _f(step)


def cosine_decay(init_value: float, decay_steps: int, alpha: float = 0.0) -> Schedule:
    """``lr(t) = η_min + (init_value − η_min)·(1 + cos(π·t/T))/2`` with ``T = decay_steps``,
    ``η_min = alpha·init_value`` (``CosineAnnealingLR(T_max=T, eta_min=η_min)``; past ``T`` the
    cosine continues, as torch's)."""
    init_value = check_scalar("cosine_decay", "init_value", init_value)
    decay_steps = _steps("cosine_decay", "decay_steps", decay_steps)
    alpha = check_scalar("cosine_decay", "alpha", alpha)
    eta_min = alpha * init_value
    return lambda step: eta_min + (init_value - eta_min) * (1.0 + jnp.cos(math.pi * _f(step) / decay_steps)) / 2.0


def linear_warmup(
    init_value: float, warmup_steps: int, start_factor: float = 1.0 / 3.0, end_factor: float = 1.0
) -> Schedule:
    """``lr(t) = init_value·(s + (e − s)·min(t, W)/W)`` (``LinearLR(start_factor=s, end_factor=e,
    total_iters=W)``); ``s = 0`` starts from zero (torch requires ``s > 0``)."""
    init_value = check_scalar("linear_warmup", "init_value", init_value)
    warmup_steps = _steps("linear_warmup", "warmup_steps", warmup_steps, 0)
    s = check_scalar("linear_warmup", "start_factor", start_factor, high=1.0)
    e = check_scalar("linear_warmup", "end_factor", end_factor, high=1.0)
    if warmup_steps == 0:
        return lambda step: _f(init_value * e) + 0.0 * _f(step)
    return lambda step: init_value * (s + (e - s) * jnp.minimum(_f(step), warmup_steps) / warmup_steps)


def warmup_cosine(
    peak_value: float,
    warmup_steps: int,
    decay_steps: int,
    start_factor: float = 1.0 / 3.0,
    alpha: float = 0.0,
) -> Schedule:
    """Linear warm-up from ``start_factor·peak_value`` to ``peak_value`` over ``warmup_steps``, then
    :func:`cosine_decay` over ``decay_steps`` (``SequentialLR([LinearLR(start_factor, total_iters=W),
    CosineAnnealingLR(T_max=decay_steps, eta_min=alpha·peak)], milestones=[W])``)."""
    warm = linear_warmup(peak_value, warmup_steps, start_factor)
    cos = cosine_decay(peak_value, decay_steps, alpha)
    return lambda step: jnp.where(_f(step) < warmup_steps, warm(step), cos(_f(step) - warmup_steps))


def one_cycle(
    max_value: float,
    total_steps: int,
    pct_start: float = 0.3,
    anneal_strategy: str = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
) -> Schedule:
    """``OneCycleLR`` (the learning rate only; ``cycle_momentum`` is torch's separate option).

    From ``max_value/div_factor`` up to ``max_value`` over the first ``pct_start·total_steps − 1`` steps,
    then down to ``max_value/(div_factor·final_div_factor)`` at step ``total_steps − 1`` (``three_phase``:
    back down to the initial value first, symmetrically). Steps past the end keep the final value
    (torch raises there).
    """
    max_value = check_scalar("one_cycle", "max_value", max_value)
    total_steps = _steps("one_cycle", "total_steps", total_steps)
    pct_start = check_scalar("one_cycle", "pct_start", pct_start, high=1.0)
    div_factor = check_scalar("one_cycle", "div_factor", div_factor, low_open=True)
    final_div_factor = check_scalar("one_cycle", "final_div_factor", final_div_factor, low_open=True)
    if anneal_strategy not in ("cos", "linear"):
        raise ValueError(f"one_cycle: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
    initial = max_value / div_factor
    final = initial / final_div_factor
    up_end = float(pct_start * total_steps) - 1.0
    if three_phase:
        phases = [(up_end, initial, max_value), (2.0 * up_end, max_value, initial), (total_steps - 1.0, initial, final)]
    else:
        phases = [(up_end, initial, max_value), (total_steps - 1.0, max_value, final)]

    def anneal(start: float, end: float, pct: Array) -> Array:
        if anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (jnp.cos(math.pi * pct) + 1.0)
        return (end - start) * pct + start

    starts = [0.0] + [end for end, _, _ in phases[:-1]]

    def schedule(step: Array) -> Array:
        t = jnp.minimum(_f(step), total_steps - 1.0)
        # torch takes the first phase whose end is >= t (else the last): fold from the last one back.
        out: Array | None = None
        for (end_step, s0, s1), start in reversed(list(zip(phases, starts))):
            span = end_step - start
            val = anneal(s0, s1, (t - start) / span if span != 0 else 0.0 * t)
            out = val if out is None else jnp.where(t <= end_step, val, out)
        assert out is not None  # phases is never empty
        return out

    return schedule


def _held(value: float) -> Schedule:
    """``lr(t) = value`` as an array of the default float dtype (a float given to :func:`sequential`)."""
    return lambda step: _f(value) + 0.0 * _f(step)


def sequential(schedules: Sequence[Schedule | float], milestones: Sequence[int]) -> Schedule:
    """``schedules[i]`` from step ``milestones[i − 1]`` on, counting its own steps from 0 there
    (``SequentialLR(optimizer, schedulers, milestones)``): ``lr(t) = schedules[i](t − milestones[i − 1])``
    for ``milestones[i − 1] <= t < milestones[i]``. A float is a constant schedule. E.g. a warm restart:
    ``sequential([cosine_decay(0.1, 100), cosine_decay(0.1, 50)], [100])``."""
    given = list(schedules)
    if not given:
        raise ValueError("sequential: give at least one schedule")
    marks = [_steps("sequential", "each milestone", m) for m in milestones]
    if len(marks) != len(given) - 1:
        raise ValueError(f"sequential: {len(given)} schedules need {len(given) - 1} milestones, got {len(marks)}")
    if any(b <= a for a, b in zip(marks, marks[1:])):
        raise ValueError(f"sequential: milestones must increase, got {list(milestones)}")
    fns = [fn if callable(fn) else _held(check_scalar("sequential", "each value", fn)) for fn in given]
    if len(fns) == 1:
        return fns[0]

    def schedule(step: Array) -> Array:
        out = fns[0](step)
        for start, fn in zip(marks, fns[1:]):
            out = jnp.where(jnp.asarray(step) >= start, fn(jnp.asarray(step) - start), out)
        return out

    return schedule
