"""Exponential moving average of a model's weights, with timm's ``ModelEmaV3`` semantics, as a pure
``(init, update)`` pair over ``(params, state)`` pytrees.

After each optimizer step ``t`` (1-based), ``ema ← lerp(ema, θ_t, 1 − d_t)`` for every floating leaf of the
params and (unless ``include_state=False``, timm's ``exclude_buffers``) of the model state, such as
BatchNorm's running statistics; integer leaves (a BatchNorm ``count``) are copied. The decay is timm's
``get_decay``: with ``s = max(0, t − update_after_step − 1)``, ``d_t = 0`` while ``s == 0`` (the average
starts as a copy), else ``decay``, or with ``warmup`` ``clip(1 − (1 + s/warmup_gamma)^−warmup_power,
min_decay, decay)``. ``lerp`` is torch's: ``a + w·(b − a)`` for ``w < 0.5``, else ``b − (b − a)·(1 − w)``.
Evaluate (and checkpoint) with the averaged ``(params, state)``: :func:`jcnn.training.train.fit` does with ``ema=``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jcnn._types import Array, Params, State
from jcnn.optim.base import check_scalar


class EmaState(NamedTuple):
    """The averaged ``params`` and model ``state`` and ``num_updates``, the number of updates made (int32)."""

    params: Params
    state: State
    num_updates: Array


class ModelEma(NamedTuple):
    """``init(params, state) -> EmaState``; ``update(ema_state, params, state, step=None) -> EmaState`` (``step``:
    the optimizer steps made so far, timm's ``num_updates``; default ``ema_state.num_updates + 1``);
    ``decay_at(step) -> float32`` the decay used at that step."""

    init: Callable[[Params, State], EmaState]
    update: Callable[..., EmaState]
    decay_at: Callable[[Any], Array]


def lerp(start: Array, end: Array, weight: Array) -> Array:
    """torch.lerp: ``start + weight·(end − start)`` for ``weight < 0.5``, else ``end − (end − start)·(1 − weight)``
    (exact at both ends)."""
    diff = end - start
    return jnp.where(weight < 0.5, start + weight * diff, end - diff * (1 - weight))


def _fresh_copy(a: Any) -> Array:
    """A new buffer with ``a``'s value: the average must not alias the params (a train step donating both
    would donate one buffer twice). Copied on the host (an eager ``jnp.copy`` compiles once per shape);
    under a trace the output is a new buffer anyway."""
    if isinstance(a, jax.core.Tracer):
        return a
    copy: Array = jax.device_put(np.array(a, copy=True))
    return copy


def ema(
    decay: float = 0.9999,
    *,
    min_decay: float = 0.0,
    update_after_step: int = 0,
    warmup: bool = False,
    warmup_gamma: float = 1.0,
    warmup_power: float = 2 / 3,
    include_state: bool = True,
) -> ModelEma:
    """A weight EMA with timm's ``ModelEmaV3(decay, min_decay, update_after_step, use_warmup, warmup_gamma,
    warmup_power, exclude_buffers=not include_state)`` semantics (module docstring)."""
    who = "ema"
    decay = check_scalar(who, "decay", decay, low=0.0, high=1.0)
    min_decay = check_scalar(who, "min_decay", min_decay, low=0.0, high=1.0)
    warmup_gamma = check_scalar(who, "warmup_gamma", warmup_gamma, low=0.0, low_open=True)
    warmup_power = check_scalar(who, "warmup_power", warmup_power, low=0.0, low_open=True)
    if isinstance(update_after_step, bool) or not isinstance(update_after_step, int) or update_after_step < 0:
        raise ValueError(f"{who}: update_after_step must be an int >= 0, got {update_after_step!r}")

    def weight_at(step: Any) -> Array:
        # 1 − d_t without the cancellation of 1 − d (1e-4 from 0.9999 in float32 would be 2e-5 off):
        # 1 − decay in double, and the warm-up's (1 + s/γ)^−p directly
        s = jnp.maximum(jnp.asarray(step, jnp.int32) - update_after_step - 1, 0).astype(jnp.float32)
        if warmup:
            w = jnp.clip((1.0 + s / warmup_gamma) ** -warmup_power, 1.0 - decay, 1.0 - min_decay)
        else:
            w = jnp.full((), 1.0 - decay, jnp.float32)
        return jnp.where(s <= 0, 1.0, w).astype(jnp.float32)

    def decay_at(step: Any) -> Array:
        return (1.0 - weight_at(step)).astype(jnp.float32)

    def init(params: Params, state: State) -> EmaState:
        copy = jax.tree_util.tree_map(_fresh_copy, (params, state))
        return EmaState(copy[0], copy[1], jnp.zeros((), jnp.int32))

    def average(old: Any, new: Any, weight: Array) -> Any:
        def leaf(a: Array, b: Array) -> Array:
            b = jnp.asarray(b)
            if not jnp.issubdtype(b.dtype, jnp.floating):
                return b
            return lerp(a.astype(b.dtype), b, weight.astype(b.dtype))

        return jax.tree_util.tree_map(leaf, old, new)

    def update(ema_state: EmaState, params: Params, state: State, step: Any = None) -> EmaState:
        if not isinstance(ema_state, EmaState):
            raise TypeError(f"{who}.update: expected the EmaState made by init, got {type(ema_state).__name__}")
        for what, old, new in (("params", ema_state.params, params), ("state", ema_state.state, state)):
            structure_old: Any = jax.tree_util.tree_structure(old)  # jaxlib ships no stub for PyTreeDef
            if structure_old != jax.tree_util.tree_structure(new):
                raise TypeError(
                    f"{who}.update: {what} do not have the structure of the averaged {what}: "
                    f"{jax.tree_util.tree_structure(new)} vs {jax.tree_util.tree_structure(old)}"
                )
        count = ema_state.num_updates + 1
        weight = weight_at(count if step is None else step)
        new_state = (
            average(ema_state.state, state, weight) if include_state else jax.tree_util.tree_map(jnp.asarray, state)
        )
        return EmaState(average(ema_state.params, params, weight), new_state, count)

    return ModelEma(init, update, decay_at)


def eval_weights(train_state: Any) -> tuple[Params, State]:
    """The ``(params, state)`` to evaluate a :class:`jcnn.training.train.TrainState` with: its EMA's when it keeps one."""
    average = getattr(train_state, "ema", None)
    if isinstance(average, EmaState):
        return average.params, average.state
    return train_state.params, train_state.state


__all__ = ["EmaState", "ModelEma", "ema", "eval_weights", "lerp"]
