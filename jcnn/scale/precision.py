"""Mixed precision: a dtype policy for params, compute and outputs, and dynamic loss scaling.

The usual policy keeps params (and optimizer state) in float32, computes in bfloat16 or float16, and
returns outputs and the loss in float32. float16 has a narrow range, so its gradients are computed on
``loss · scale`` and divided by ``scale`` afterwards; :class:`DynamicLossScale` halves the scale and
skips the step when a gradient overflows, and doubles it after ``growth_interval`` finite steps (the
rules of ``torch.amp.GradScaler``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jcnn._types import Array, Params, PRNGKey, State
from jcnn.layers.base import Layer, apply_child, init_child, wrapper


class Policy(NamedTuple):
    """Dtypes of a mixed-precision run: ``param_dtype`` stored, ``compute_dtype`` inside the model,
    ``output_dtype`` for the model's outputs (and so the loss)."""

    param_dtype: Any = jnp.float32
    compute_dtype: Any = jnp.float32
    output_dtype: Any = jnp.float32


_POLICIES = {
    "float32": Policy(jnp.float32, jnp.float32, jnp.float32),
    "mixed_bfloat16": Policy(jnp.float32, jnp.bfloat16, jnp.float32),
    "mixed_float16": Policy(jnp.float32, jnp.float16, jnp.float32),
    "bfloat16": Policy(jnp.bfloat16, jnp.bfloat16, jnp.bfloat16),
}


def get_policy(name: str | Policy) -> Policy:
    """A :class:`Policy` by name: ``"float32"``, ``"mixed_bfloat16"``, ``"mixed_float16"``, ``"bfloat16"``."""
    if isinstance(name, Policy):
        return name
    if name not in _POLICIES:
        raise ValueError(f"get_policy: unknown policy {name!r}; expected one of {sorted(_POLICIES)}")
    return _POLICIES[name]


def cast_floating(tree: Any, dtype: Any) -> Any:
    """Cast every floating-point leaf of ``tree`` to ``dtype``; integer, bool and key leaves stay."""

    def cast(leaf: Any) -> Any:
        if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating):
            return leaf.astype(dtype)
        return leaf

    return jax.tree_util.tree_map(cast, tree)


def with_policy(layer: Layer, policy: str | Policy) -> Layer:
    """``layer`` run under ``policy``: params created in ``param_dtype``; ``apply`` casts params and
    inputs to ``compute_dtype`` and the outputs to ``output_dtype``. The returned state keeps the dtypes
    of the state passed in (BatchNorm statistics stay float32), so it threads through ``jit`` unchanged.
    Params and state are ``layer``'s, with the same names.
    """
    pol = get_policy(policy)

    def init(key: PRNGKey, input_shape: Any) -> tuple[Any, Params, State]:
        out_shape, params, state = init_child(None, layer, key, input_shape)
        return out_shape, cast_floating(params, pol.param_dtype), state

    def apply(params: Params, state: State, x: Any, *, train: bool, key: PRNGKey | None = None) -> tuple[Any, State]:
        y, new_state = apply_child(
            None,
            layer,
            cast_floating(params, pol.compute_dtype),
            state,
            cast_floating(x, pol.compute_dtype),
            train=train,
            key=key,
        )
        new_state = jax.tree_util.tree_map(
            lambda new, old: new.astype(old.dtype) if hasattr(old, "dtype") else new, new_state, state
        )
        return cast_floating(y, pol.output_dtype), new_state

    return wrapper("with_policy", layer, init=init, apply=apply, hparams={"policy": pol})


def all_finite(tree: Any) -> Array:
    """A scalar bool: every floating leaf of ``tree`` is finite."""
    leaves = [
        jnp.all(jnp.isfinite(leaf))
        for leaf in jax.tree_util.tree_leaves(tree)
        if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.floating)
    ]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def select_tree(pred: Array, on_true: Any, on_false: Any) -> Any:
    """Leafwise ``on_true if pred else on_false`` for two pytrees of one structure (jit-friendly)."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


class LossScaleState(NamedTuple):
    """``scale``: the current float32 loss scale; ``good_steps``: finite steps since the last change."""

    scale: Array
    good_steps: Array


class DynamicLossScale(NamedTuple):
    """Dynamic loss scaling with ``torch.amp.GradScaler``'s defaults.

    Use: ``loss_fn`` returns ``scaler.scale(loss, ls)``; after ``jax.grad``, ``grads = scaler.unscale(grads,
    ls)``; ``finite = all_finite(grads)``; apply the update only where ``finite`` (:func:`select_tree`);
    ``ls = scaler.adjust(ls, finite)``.
    """

    init_scale: float = 2.0**16
    growth_factor: float = 2.0
    backoff_factor: float = 0.5
    growth_interval: int = 2000
    min_scale: float = 1.0

    def init(self) -> LossScaleState:
        """The first state: ``scale = init_scale``, no good steps; checks the settings."""
        if not (
            self.init_scale > 0 and self.growth_factor > 1 and 0 < self.backoff_factor < 1 and self.growth_interval >= 1
        ):
            raise ValueError(
                "DynamicLossScale: needs init_scale > 0, growth_factor > 1, 0 < backoff_factor < 1 and "
                f"growth_interval >= 1, got {self}"
            )
        return LossScaleState(jnp.asarray(self.init_scale, jnp.float32), jnp.asarray(0, jnp.int32))

    def scale(self, loss: Array, state: LossScaleState) -> Array:
        """``loss · scale`` in float32."""
        return loss.astype(jnp.float32) * state.scale

    def unscale(self, grads: Any, state: LossScaleState) -> Any:
        """``grads / scale``, computed in float32 and returned in each gradient's dtype."""
        inv = 1.0 / state.scale
        return jax.tree_util.tree_map(lambda g: (g.astype(jnp.float32) * inv).astype(g.dtype), grads)

    def adjust(self, state: LossScaleState, finite: Array) -> LossScaleState:
        """Back off (and reset the count) on overflow; grow after ``growth_interval`` finite steps."""
        good = jnp.where(finite, state.good_steps + 1, 0)
        grow = good >= self.growth_interval
        scale = jnp.where(
            finite,
            jnp.where(grow, state.scale * self.growth_factor, state.scale),
            jnp.maximum(state.scale * self.backoff_factor, np.float32(self.min_scale)),
        )
        return LossScaleState(scale.astype(jnp.float32), jnp.where(grow, 0, good).astype(jnp.int32))
