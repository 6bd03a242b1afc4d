"""Small gradient transformations that compose with :func:`jcnn.optim.chain`.

Each is an :class:`~jcnn.optim.Optimizer` whose state is a NamedTuple. Their formulas follow
``torch.optim`` so that ``chain(add_decayed_weights(wd), trace(m), scale_by_learning_rate(lr))`` is
torch's SGD step for step; the named optimizers in :mod:`jcnn.optim.alias` are the ready-made ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, TypeGuard, Union

import jax
import jax.numpy as jnp
import numpy as np

from jcnn._types import Array, Params
from jcnn.optim.base import (
    CountState,
    EmptyState,
    Optimizer,
    OptState,
    ScalarOrSchedule,
    Updates,
    cast_like,
    check_float_leaves,
    check_grads_like,
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

tmap = jax.tree_util.tree_map
MaskLike = Union[Any, Callable[[Params], Any]]
"""A bool pytree shaped like params, or a function of the params that returns one."""


def float_count(count: Array) -> Array:
    """The step counter as the widest enabled float (float64 under x64), as torch keeps its step."""
    return count.astype(jnp.result_type(float))


def _init_checked(who: str, make: Callable[[Params], OptState]) -> Callable[[Params], OptState]:
    def init(params: Params) -> OptState:
        check_float_leaves(who, params, "params")
        return make(params)

    return init


def scale(factor: float) -> Optimizer:
    """``u = factor · g``."""
    factor = check_scalar("scale", "factor", factor, low=None)

    def update(grads: Updates, state: EmptyState, params: Params | None = None) -> tuple[Updates, EmptyState]:
        check_update_args("scale", grads, params)
        return tmap(lambda g: g * factor, grads), state

    return make_optimizer("scale", _init_checked("scale", lambda p: EmptyState()), update)


def scale_by_learning_rate(learning_rate: ScalarOrSchedule, *, flip_sign: bool = True) -> Optimizer:
    """``u = −lr(t) · g`` (``+`` when ``flip_sign=False``); ``t`` is ``state.count``, the updates made so far."""
    learning_rate = check_learning_rate("scale_by_learning_rate", learning_rate)
    sign = -1.0 if flip_sign else 1.0

    def update(grads: Updates, state: CountState, params: Params | None = None) -> tuple[Updates, CountState]:
        check_update_args("scale_by_learning_rate", grads, params)
        lr = lr_at(learning_rate, state.count)
        return tmap(lambda g: g * cast_like(sign * lr, g), grads), CountState(state.count + 1)

    return make_optimizer(
        "scale_by_learning_rate", _init_checked("scale_by_learning_rate", lambda p: CountState(init_count())), update
    )


class TraceState(NamedTuple):
    """``count`` updates made; ``momentum`` the buffer ``b``."""

    count: Array  # type: ignore[assignment]  # the public field shadows tuple.count (as in optax)
    momentum: Any


def trace(decay: float, *, dampening: float = 0.0, nesterov: bool = False) -> Optimizer:
    """Momentum as torch's SGD: ``b₁ = g``, ``b_t = decay·b_{t−1} + (1 − dampening)·g``;
    ``u = g + decay·b_t`` (nesterov) or ``u = b_t``."""
    decay = check_scalar("trace", "decay", decay)
    dampening = check_scalar("trace", "dampening", dampening)
    if nesterov and (decay <= 0 or dampening != 0):
        raise ValueError("trace: nesterov momentum requires decay > 0 and dampening == 0 (as torch.optim.SGD)")

    def init(params: Params) -> TraceState:
        return TraceState(init_count(), zeros_like_tree(params))

    def update(grads: Updates, state: TraceState, params: Params | None = None) -> tuple[Updates, TraceState]:
        check_update_args("trace", grads, params)
        check_grads_like("trace", grads, state.momentum, "state.momentum")
        first = state.count == 0
        g32 = upcast(grads)
        buf = tmap(lambda b, g: jnp.where(first, g, decay * b + (1.0 - dampening) * g), state.momentum, g32)
        out = tmap(lambda g, b: g + decay * b, g32, buf) if nesterov else buf
        return downcast_like(out, grads), TraceState(state.count + 1, buf)

    return make_optimizer("trace", _init_checked("trace", init), update)


class ScaleByAdamState(NamedTuple):
    """``count`` updates made; ``mu`` first moment; ``nu`` second moment; ``nu_max`` its running max
    (amsgrad; ``None`` otherwise)."""

    count: Array  # type: ignore[assignment]  # the public field shadows tuple.count (as in optax)
    mu: Any
    nu: Any
    nu_max: Any


def _check_betas(who: str, b1: float, b2: float) -> tuple[float, float]:
    return (
        check_scalar(who, "b1", b1, high=1.0, high_open=True),
        check_scalar(who, "b2", b2, high=1.0, high_open=True),
    )


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, *, amsgrad: bool = False) -> Optimizer:
    """``m = b1·m + (1−b1)·g``, ``v = b2·v + (1−b2)·g²``, ``u = (m/(1−b1ᵗ)) / (√(v/(1−b2ᵗ)) + eps)``;
    amsgrad uses the running maximum of ``v`` in the denominator."""
    b1, b2 = _check_betas("scale_by_adam", b1, b2)
    eps = check_scalar("scale_by_adam", "eps", eps)

    def init(params: Params) -> ScaleByAdamState:
        z = zeros_like_tree(params)
        return ScaleByAdamState(init_count(), z, zeros_like_tree(params), zeros_like_tree(params) if amsgrad else None)

    def update(
        grads: Updates, state: ScaleByAdamState, params: Params | None = None
    ) -> tuple[Updates, ScaleByAdamState]:
        check_update_args("scale_by_adam", grads, params)
        check_grads_like("scale_by_adam", grads, state.mu, "state.mu")
        count = state.count + 1
        t = float_count(count)
        bc1, bc2_sqrt = 1.0 - b1**t, jnp.sqrt(1.0 - b2**t)
        g32 = upcast(grads)
        mu = tmap(lambda m, g: m + (1.0 - b1) * (g - m), state.mu, g32)
        nu = tmap(lambda v, g: b2 * v + (1.0 - b2) * g * g, state.nu, g32)
        nu_max = tmap(jnp.maximum, state.nu_max, nu) if amsgrad else None
        den_src = nu_max if amsgrad else nu
        out = tmap(lambda m, v: (m / cast_like(bc1, m)) / (jnp.sqrt(v) / cast_like(bc2_sqrt, v) + eps), mu, den_src)
        return downcast_like(out, grads), ScaleByAdamState(count, mu, nu, nu_max)

    return make_optimizer("scale_by_adam", _init_checked("scale_by_adam", init), update)


class ScaleByRmsState(NamedTuple):
    """``nu`` the running mean of ``g²``; ``mu`` the running mean of ``g`` (centered; else ``None``)."""

    count: Array  # type: ignore[assignment]  # the public field shadows tuple.count (as in optax)
    nu: Any
    mu: Any


def scale_by_rms(alpha: float = 0.99, eps: float = 1e-8, *, centered: bool = False) -> Optimizer:
    """``v = α·v + (1−α)·g²``; ``u = g / (√v + eps)``, or ``g / (√(v − m²) + eps)`` with ``m`` the running
    mean of ``g`` when centered (torch's RMSprop)."""
    alpha = check_scalar("scale_by_rms", "alpha", alpha, high=1.0)
    eps = check_scalar("scale_by_rms", "eps", eps)

    def init(params: Params) -> ScaleByRmsState:
        return ScaleByRmsState(init_count(), zeros_like_tree(params), zeros_like_tree(params) if centered else None)

    def update(grads: Updates, state: ScaleByRmsState, params: Params | None = None) -> tuple[Updates, ScaleByRmsState]:
        check_update_args("scale_by_rms", grads, params)
        check_grads_like("scale_by_rms", grads, state.nu, "state.nu")
        grads_in, grads = grads, upcast(grads)
        nu = tmap(lambda v, g: alpha * v + (1.0 - alpha) * g * g, state.nu, grads)
        if centered:
            mu = tmap(lambda m, g: m + (1.0 - alpha) * (g - m), state.mu, grads)
            out = tmap(lambda g, v, m: g / (jnp.sqrt(v - m * m) + eps), grads, nu, mu)
        else:
            mu = None
            out = tmap(lambda g, v: g / (jnp.sqrt(v) + eps), grads, nu)
        return downcast_like(out, grads_in), ScaleByRmsState(state.count + 1, nu, mu)

    return make_optimizer("scale_by_rms", _init_checked("scale_by_rms", init), update)


class ScaleByAdagradState(NamedTuple):
    """``sum`` the accumulated ``g²``."""

    count: Array  # type: ignore[assignment]  # the public field shadows tuple.count (as in optax)
    sum: Any


def scale_by_adagrad(initial_accumulator_value: float = 0.0, eps: float = 1e-10) -> Optimizer:
    """``h = h + g²``; ``u = g / (√h + eps)``."""
    init_acc = check_scalar("scale_by_adagrad", "initial_accumulator_value", initial_accumulator_value)
    eps = check_scalar("scale_by_adagrad", "eps", eps)

    def init(params: Params) -> ScaleByAdagradState:
        return ScaleByAdagradState(init_count(), zeros_like_tree(params, init_acc))

    def update(
        grads: Updates, state: ScaleByAdagradState, params: Params | None = None
    ) -> tuple[Updates, ScaleByAdagradState]:
        check_update_args("scale_by_adagrad", grads, params)
        check_grads_like("scale_by_adagrad", grads, state.sum, "state.sum")
        g32 = upcast(grads)
        acc = tmap(lambda h, g: h + g * g, state.sum, g32)
        out = tmap(lambda g, h: g / (jnp.sqrt(h) + eps), g32, acc)
        return downcast_like(out, grads), ScaleByAdagradState(state.count + 1, acc)

    return make_optimizer("scale_by_adagrad", _init_checked("scale_by_adagrad", init), update)


def _is_patterns(mask: Any) -> TypeGuard[str | list[str] | tuple[str, ...]]:
    return isinstance(mask, str) or (
        isinstance(mask, (list, tuple)) and bool(mask) and all(isinstance(p, str) for p in mask)
    )


def _resolve_mask(who: str, mask: MaskLike, tree: Any) -> list[bool]:
    """The mask as one Python bool per leaf of ``tree`` (path patterns mark the leaves they match)."""
    if _is_patterns(mask):
        from jcnn.inspection import paths

        return [bool(b) for b in jax.tree_util.tree_leaves(paths.mask(tree, mask))]
    m = mask(tree) if callable(mask) else mask
    leaves_t = jax.tree_util.tree_leaves(tree)
    treedef: Any = jax.tree_util.tree_structure(tree)  # jaxlib ships no stub for PyTreeDef
    try:
        flat = treedef.flatten_up_to(m)
    except (ValueError, TypeError) as e:
        raise TypeError(f"{who}: the mask must be a pytree of bools shaped like params; {e}") from None
    if len(flat) != len(leaves_t) or not all(isinstance(b, (bool, np.bool_)) for b in flat):
        got = [type(b).__name__ for b in flat]
        raise TypeError(f"{who}: the mask must hold one Python bool per params leaf, got leaves of types {got}")
    return [bool(b) for b in flat]


def add_decayed_weights(weight_decay: float, mask: MaskLike | None = None) -> Optimizer:
    """``u = g + weight_decay · p`` (L2 in the gradient, as torch's ``weight_decay`` on SGD/Adam);
    ``mask`` (bool pytree, or ``params -> bool pytree``) limits it to the leaves marked ``True``."""
    wd = check_scalar("add_decayed_weights", "weight_decay", weight_decay)

    def update(grads: Updates, state: EmptyState, params: Params | None = None) -> tuple[Updates, EmptyState]:
        check_update_args("add_decayed_weights", grads, params)
        require_params("add_decayed_weights", params)
        flags = (
            [True] * len(jax.tree_util.tree_leaves(params))
            if mask is None
            else _resolve_mask("add_decayed_weights", mask, params)
        )
        gl, tdef = jax.tree_util.tree_flatten(grads)
        pl = jax.tree_util.tree_leaves(params)
        out = [g + wd * p.astype(g.dtype) if f else g for g, p, f in zip(gl, pl, flags)]
        return jax.tree_util.tree_unflatten(tdef, out), state

    return make_optimizer("add_decayed_weights", _init_checked("add_decayed_weights", lambda p: EmptyState()), update)


def global_norm(tree: Any) -> Array:
    """``√(Σ_leaves Σ x²)``, accumulated in float32 at least."""
    leaves = jax.tree_util.tree_leaves(tree)
    acc_dtype = jnp.promote_types(jnp.float32, jnp.result_type(*leaves)) if leaves else jnp.float32
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(acc_dtype))) for x in leaves))


def clip_by_global_norm(max_norm: float) -> Optimizer:
    """``u = g · min(1, max_norm / (‖g‖ + 1e-6))`` with ``‖g‖`` the norm over all leaves
    (``torch.nn.utils.clip_grad_norm_``)."""
    max_norm = check_scalar("clip_by_global_norm", "max_norm", max_norm)

    def update(grads: Updates, state: EmptyState, params: Params | None = None) -> tuple[Updates, EmptyState]:
        check_update_args("clip_by_global_norm", grads, params)
        coef = jnp.minimum(1.0, max_norm / (global_norm(grads) + 1e-6))
        return tmap(lambda g: g * coef.astype(g.dtype), grads), state

    return make_optimizer("clip_by_global_norm", _init_checked("clip_by_global_norm", lambda p: EmptyState()), update)


def clip(max_delta: float) -> Optimizer:
    """Clip every element to ``[−max_delta, max_delta]`` (``torch.nn.utils.clip_grad_value_``)."""
    max_delta = check_scalar("clip", "max_delta", max_delta)

    def update(grads: Updates, state: EmptyState, params: Params | None = None) -> tuple[Updates, EmptyState]:
        check_update_args("clip", grads, params)
        return tmap(lambda g: jnp.clip(g, -max_delta, max_delta), grads), state

    return make_optimizer("clip", _init_checked("clip", lambda p: EmptyState()), update)


class MaskedState(NamedTuple):
    """``inner``: the wrapped transformation's state over the masked-in leaves (a list of them)."""

    inner: Any


def masked(inner: Optimizer, mask: MaskLike) -> Optimizer:
    """Apply ``inner`` only to the leaves where ``mask`` is ``True``; the others pass through unchanged.

    ``mask`` is a bool pytree shaped like params, a function ``params -> bool pytree`` (it is called
    on the grads when ``update`` gets no params, so it should read structure and shapes, not values), or
    path patterns (``"**.kernel"``, ``["layer4", "fc"]``: see :mod:`jcnn.inspection.paths`) marking the leaves.
    E.g. ``masked(add_decayed_weights(1e-4), lambda p: jax.tree_util.tree_map(lambda x: x.ndim > 1, p))``
    decays kernels but not biases or norm scales.
    """
    if not isinstance(inner, Optimizer):
        raise TypeError(f"masked: inner must be an Optimizer, got {type(inner).__name__}")

    def pick(tree: Any, flags: list[bool]) -> list[Any]:
        return [x for x, f in zip(jax.tree_util.tree_leaves(tree), flags) if f]

    def init(params: Params) -> MaskedState:
        check_float_leaves("masked", params, "params")
        return MaskedState(inner.init(pick(params, _resolve_mask("masked", mask, params))))

    def update(grads: Updates, state: MaskedState, params: Params | None = None) -> tuple[Updates, MaskedState]:
        check_update_args("masked", grads, params)
        flags = _resolve_mask("masked", mask, params if params is not None else grads)
        sub_p = None if params is None else pick(params, flags)
        sub_u, inner_state = inner.update(pick(grads, flags), state.inner, sub_p)
        gl, tdef = jax.tree_util.tree_flatten(grads)
        it = iter(sub_u)
        return jax.tree_util.tree_unflatten(tdef, [next(it) if f else g for g, f in zip(gl, flags)]), MaskedState(
            inner_state
        )

    return make_optimizer(f"masked_{inner.name}", init, update)


def freeze(inner: Optimizer, frozen: Any) -> Optimizer:
    """``inner`` on every param except the frozen ones, which get zero updates and no optimizer state.

    ``frozen`` is as ``masked``'s mask (path patterns such as ``["conv1", "bn1", "layer*"]``, a bool
    pytree, or a function of params), ``True`` meaning frozen. ``freeze(adam(1e-3), "**")``-style masks
    that freeze everything are allowed; a pattern that matches no param is a ``ValueError``.
    """
    if not isinstance(inner, Optimizer):
        raise TypeError(f"freeze: inner must be an Optimizer, got {type(inner).__name__}")

    def trainable(tree: Any) -> Any:
        flags = _resolve_mask("freeze", frozen, tree)
        leaves, treedef = jax.tree_util.tree_flatten(tree)
        return jax.tree_util.tree_unflatten(treedef, [not f for f in flags])

    base = masked(inner, trainable)

    def update(grads: Updates, state: MaskedState, params: Params | None = None) -> tuple[Updates, MaskedState]:
        updates, new_state = base.update(grads, state, params)
        flags = _resolve_mask("freeze", frozen, params if params is not None else grads)
        leaves, treedef = jax.tree_util.tree_flatten(updates)
        return jax.tree_util.tree_unflatten(
            treedef, [jnp.zeros_like(u) if f else u for u, f in zip(leaves, flags)]
        ), new_state

    return make_optimizer(f"freeze_{inner.name}", base.init, update)


class AccumulateState(NamedTuple):
    """``count`` micro-steps seen; ``acc`` the running sum of grads; ``inner`` the wrapped state."""

    count: Array  # type: ignore[assignment]  # the public field shadows tuple.count (as in optax)
    acc: Any
    inner: Any


def accumulate_gradients(inner: Optimizer, k: int) -> Optimizer:
    """Gradient accumulation: every ``k``-th call applies ``inner`` to the mean of the last ``k`` grads;
    the other calls return zero updates and leave ``inner``'s state untouched. With the loss of each
    micro-batch, this is torch's ``loss / k; backward()`` ×k then ``step()``."""
    if not isinstance(inner, Optimizer):
        raise TypeError(f"accumulate_gradients: inner must be an Optimizer, got {type(inner).__name__}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"accumulate_gradients: k must be an int >= 1, got {k!r}")

    def init(params: Params) -> AccumulateState:
        check_float_leaves("accumulate_gradients", params, "params")
        return AccumulateState(init_count(), zeros_like_tree(params), inner.init(params))

    def update(grads: Updates, state: AccumulateState, params: Params | None = None) -> tuple[Updates, AccumulateState]:
        check_update_args("accumulate_gradients", grads, params)
        check_grads_like("accumulate_gradients", grads, state.acc, "state.acc")
        acc = tmap(lambda a, g: a + g.astype(a.dtype), state.acc, grads)
        count = state.count + 1
        emit = count % k == 0

        def step(_: None) -> tuple[Updates, OptState, Any]:
            mean = tmap(lambda a: a / k, acc)
            upd, new_inner = inner.update(mean, state.inner, None if params is None else upcast(params))
            return downcast_like(upd, grads), new_inner, zeros_like_tree(acc)

        def hold(_: None) -> tuple[Updates, OptState, Any]:
            return tmap(jnp.zeros_like, grads), state.inner, acc

        upd, new_inner, new_acc = jax.lax.cond(emit, step, hold, None)
        return upd, AccumulateState(count, new_acc, new_inner)

    return make_optimizer(f"accumulate_{inner.name}", init, update)
