"""Rematerialisation: recompute a block's activations in the backward pass instead of storing them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jcnn._types import Params, PRNGKey, State
from jcnn.layers.base import Layer, apply_child, capturing, constructor, wrapper


@constructor
def remat(layer: Layer, *, backend: str | None = None) -> Layer:
    """``layer`` whose activations are recomputed in the backward pass: the training step stores only
    the block's inputs, lowering its peak memory at the cost of one more forward of the block.

    On GPU/TPU this is ``jax.checkpoint``. XLA's CPU compiler drops the optimisation barriers that
    ``jax.checkpoint`` relies on and then merges the recomputation back into the forward pass (measured
    here: no saving, even more memory), so on CPU the backward pass recomputes inside a ``lax.cond`` whose
    two branches are the same recomputation: a separate computation that common-subexpression
    elimination cannot merge, scheduled only once the cotangent exists. ``backend`` overrides
    ``jax.default_backend()``. Params and state are exactly ``layer``'s (no extra nesting), so checkpoints
    and the torch mappings are unchanged; the default child name is ``layer``'s too. Gradients flow to
    params and inputs; state and key get none (as without remat). While ``jcnn.intermediates`` records
    activations the block runs plainly, so that they can be returned.
    """
    if not isinstance(layer, Layer):
        raise TypeError(f"remat: expected a Layer, got {type(layer).__name__}")

    def apply(params: Params, state: State, x: Any, *, train: bool, key: PRNGKey | None = None) -> tuple[Any, State]:
        def run(p: Params, s: State, inputs: Any, k: PRNGKey | None) -> tuple[Any, State]:
            return apply_child(None, layer, p, s, inputs, train=train, key=k)

        if capturing():
            return run(params, state, x, key)
        if (backend or jax.default_backend()) != "cpu":
            out: tuple[Any, State] = jax.checkpoint(run)(params, state, x, key)
            return out
        return _recompute_on_backward(run)(params, state, x, key)

    return wrapper("remat", layer, apply=apply)


_Run = Callable[[Params, State, Any, Any], "tuple[Any, State]"]


def _recompute_on_backward(run: _Run) -> _Run:
    """``run(p, s, x, k) -> (y, s')`` with a VJP that saves only the inputs and recomputes the rest."""

    @jax.custom_vjp
    def wrapped(p: Params, s: State, x: Any, k: Any) -> tuple[Any, State]:
        return run(p, s, x, k)

    def fwd(p: Params, s: State, x: Any, k: Any) -> tuple[tuple[Any, State], tuple[Any, ...]]:
        return run(p, s, x, k), (p, s, x, k)

    def bwd(residuals: tuple[Any, ...], cotangents: tuple[Any, ...]) -> tuple[Any, ...]:
        p, s, x, k = residuals
        ct_y = cotangents[0]

        def recompute(operands: tuple[Any, ...]) -> tuple[Any, ...]:
            p_, x_, ct_ = operands
            _, vjp = jax.vjp(lambda pp, xx: run(pp, s, xx, k)[0], p_, x_)
            grads: tuple[Any, ...] = vjp(ct_)
            return grads

        # A predicate the compiler cannot fold keeps the cond (and so the recomputation) separate.
        leaves = jax.tree_util.tree_leaves(ct_y)
        pred = jnp.isfinite(leaves[0].ravel()[0]) if leaves else True
        g_p, g_x = lax.cond(pred, recompute, recompute, (p, x, ct_y))
        return g_p, None, g_x, None

    wrapped.defvjp(fwd, bwd)
    return wrapped
