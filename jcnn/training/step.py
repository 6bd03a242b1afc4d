"""The training step: a ``TrainState`` pytree, one jitted pure step, evaluation and prediction.

``make_train_step`` returns ``step(train_state, images, labels) -> (train_state, metrics)``: the loss
``L(θ) = loss_fn(model(θ, x), y)``, its gradient by ``jax.value_and_grad``, the optimizer's update
``θ ← θ + update(∇L)``, all in one ``jax.jit`` that donates the old state's buffers. A step whose loss
or gradient is not finite returns the old state unchanged with ``metrics["finite"] = False``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jcnn import _host_random as H
from jcnn._types import Array, Params, PRNGKey, State
from jcnn.layers.base import Layer, split_key

LossFn = Callable[[Array, Array], Array]
"""``(logits, labels) -> scalar loss``."""


class TrainState(NamedTuple):
    """Everything a run needs to continue: ``params``, model ``state`` (e.g. BatchNorm statistics),
    ``opt_state``, the global ``step`` (int32 scalar), ``rng`` (a raw ``uint32[2]`` PRNG key) and ``ema``
    (the :class:`jcnn.optim.EmaState` weight average when training with one, else ``None``)."""

    params: Params
    state: State
    opt_state: Any
    step: Array
    rng: PRNGKey
    ema: Any = None


def _default_loss() -> LossFn:
    from jcnn.losses import softmax_cross_entropy

    return softmax_cross_entropy


def _accuracy(logits: Array, labels: Array) -> Array:
    from jcnn.metrics import accuracy

    return jnp.asarray(accuracy(logits, labels), jnp.float32)


def init_train_state(model: Layer, optimizer: Any, input_shape: Sequence[int], *, seed: int = 0) -> TrainState:
    """Initialise a model and its optimizer: ``init(key_0, input_shape)``, ``optimizer.init(params)``.

    ``input_shape`` is the full shape with batch (``-1`` allowed), e.g. ``(-1, 32, 32, 1)``. The key
    ``PRNGKey(seed)`` is split once: one half initialises the parameters, the other drives training.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"init_train_state: seed must be an int, got {seed!r}")
    k_init, k_train = split_key(jax.random.PRNGKey(int(seed)), 2)  # on the host: no compile
    shape = tuple(int(d) for d in input_shape)
    if model._host_tree():  # every layer draws on the host: eager init compiles nothing
        _, params, state = model.init(k_init, shape)
    else:
        params, state = _jitted_init(model, shape)(k_init)
    return TrainState(params, state, optimizer.init(params), H.full((), 0, np.int32), k_train)


@functools.lru_cache(maxsize=32)
def _jitted_init(model: Layer, shape: tuple[int, ...]) -> Callable[[PRNGKey], tuple[Params, State]]:
    # A model with hand-written layers (eager jax.random calls in their init): one compile for the whole
    # init instead of one per random call and parameter shape.
    return jax.jit(lambda key: model.init(key, shape)[1:])


@functools.lru_cache(maxsize=32)
def _cached_steps(
    model: Layer, loss_fn: LossFn | None, optimizer: Any, augment_fn: Any, mix_fn: Any = None, ema: Any = None
) -> tuple[Any, Any]:
    # fit reuses the compiled steps of an earlier call with the same model, loss, optimizer, augmentation,
    # mixing and EMA (the evaluation step only depends on the model and the loss).
    return (
        make_train_step(model, loss_fn, optimizer, augment_fn=augment_fn, mix_fn=mix_fn, ema=ema),
        _cached_eval_step(model, loss_fn),
    )


@functools.lru_cache(maxsize=32)
def _cached_eval_step(model: Layer, loss_fn: LossFn | None) -> Any:
    return make_eval_step(model, loss_fn)


def _all_finite(tree: Any) -> Array:
    leaves = [
        jnp.all(jnp.isfinite(x))
        for x in jax.tree_util.tree_leaves(tree)
        if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)
    ]
    return jnp.stack(leaves).all() if leaves else jnp.asarray(True)


def make_train_step(
    model: Layer,
    loss_fn: LossFn | None,
    optimizer: Any,
    *,
    augment_fn: Callable[[PRNGKey, Array], Array] | None = None,
    donate: bool = True,
    mix_fn: Callable[[PRNGKey, Array, Array], tuple[Array, Array]] | None = None,
    ema: Any = None,
) -> Callable[[TrainState, Array, Array], tuple[TrainState, dict[str, Any]]]:
    """One jitted, pure training step ``(train_state, images, labels) -> (train_state, metrics)``.

    The step splits ``rng`` into (next rng, augmentation key, model key), applies ``augment_fn(key,
    images)`` if given, computes ``loss, ∇loss = value_and_grad(loss_fn(apply(params, x, train=True),
    y))``, and applies ``optimizer.update``. ``metrics``: ``loss``, ``accuracy`` (float32 scalars) and
    ``finite`` (bool: the loss, every gradient and every updated parameter finite; when False the
    returned state is the input state), ``finite_grads`` and ``finite_update`` (which part failed: a
    non-finite update with finite gradients comes from the optimizer, e.g. a schedule's negative or NaN
    learning rate). With ``donate`` the input state's buffers are reused for the output: do not use it
    afterwards.
    ``mix_fn(key, images, labels) -> (images, targets)`` (e.g. :func:`jcnn.data.mix_batch`: mixup/cutmix
    with soft targets) runs after the augmentation, with a key folded from the augmentation key, and the
    loss is taken against its targets (accuracy against the original labels); ``ema`` (a
    :class:`jcnn.optim.ModelEma`) updates ``train_state.ema`` from the new params and state.
    """
    from jcnn.optim import apply_updates

    loss_fn = loss_fn or _default_loss()

    def step(ts: TrainState, images: Array, labels: Array) -> tuple[TrainState, dict[str, Any]]:
        rng, k_aug, k_model = jax.random.split(ts.rng, 3)
        x = augment_fn(k_aug, images) if augment_fn is not None else images
        targets = labels
        if mix_fn is not None:
            x, targets = mix_fn(jax.random.fold_in(k_aug, 1), x, labels)

        def objective(params: Params) -> tuple[Array, tuple[Array, State]]:
            logits, new_state = model.apply(params, ts.state, x, train=True, key=k_model)
            return loss_fn(logits, targets), (logits, new_state)

        (loss, (logits, new_state)), grads = jax.value_and_grad(objective, has_aux=True)(ts.params)
        updates, opt_state = optimizer.update(grads, ts.opt_state, ts.params)
        params = apply_updates(ts.params, updates)
        finite_grads, finite_update = _all_finite(grads), _all_finite(params)
        finite = jnp.isfinite(loss) & finite_grads & finite_update
        average = ema.update(ts.ema, params, new_state) if ema is not None else ts.ema
        new = TrainState(params, new_state, opt_state, ts.step + 1, rng, average)
        new = jax.tree_util.tree_map(lambda n, o: jnp.where(finite, n, o), new, ts)
        metrics = {
            "loss": loss.astype(jnp.float32),
            "accuracy": _accuracy(logits, labels),
            "finite": finite,
            "finite_grads": finite_grads,
            "finite_update": finite_update,
        }
        return new, metrics

    return jax.jit(step, donate_argnums=(0,) if donate else ())


def make_eval_step(model: Layer, loss_fn: LossFn | None = None) -> Callable[..., dict[str, Any]]:
    """Jitted ``(params, state, images, labels) -> {"loss", "accuracy"}`` in eval mode (``train=False``),
    means over the batch."""
    loss_fn = loss_fn or _default_loss()

    def step(params: Params, state: State, images: Array, labels: Array) -> dict[str, Any]:
        logits, _ = model.apply(params, state, images, train=False)
        return {"loss": loss_fn(logits, labels).astype(jnp.float32), "accuracy": _accuracy(logits, labels)}

    return jax.jit(step)


def _check_batch_size(name: str, batch_size: Any) -> int:
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"{name}: batch_size must be an int >= 1, got {batch_size!r}")
    return int(batch_size)


def _device_batch(x: Any) -> Array:
    """A batch as a JAX array: a JAX array as it is, anything else through ``np.asarray`` and one
    ``jax.device_put`` (``jnp.asarray`` of a NumPy array runs a small XLA program, compiled per shape)."""
    if isinstance(x, jax.Array):
        return x
    out: Array = jax.device_put(np.asarray(x))
    return out


def evaluate(
    eval_step: Callable[..., dict[str, Any]],
    params: Params,
    state: State,
    images: Any,
    labels: Any,
    *,
    batch_size: int = 1000,
) -> dict[str, Any]:
    """Mean ``loss`` and ``accuracy`` of ``eval_step`` over ``images`` in batches of ``batch_size``
    (batch means weighted by batch length, so a short last batch counts for what it holds)."""
    batch_size = _check_batch_size("evaluate", batch_size)
    n = len(images)
    if n == 0:
        raise ValueError("evaluate: got an empty evaluation set")
    loss = acc = 0.0
    for start in range(0, n, batch_size):
        m = eval_step(
            params,
            state,
            _device_batch(images[start : start + batch_size]),
            _device_batch(labels[start : start + batch_size]),
        )
        k = min(batch_size, n - start)
        loss += float(m["loss"]) * k
        acc += float(m["accuracy"]) * k
    return {"loss": loss / n, "accuracy": acc / n}


def predict(model: Layer, params: Params, state: State, images: Any, *, batch_size: int = 1000) -> np.ndarray:
    """Logits ``(N, num_classes)`` of ``model`` in eval mode, as NumPy, computed in batches."""
    batch_size = _check_batch_size("predict", batch_size)
    fn = _predict_fn(model)
    outs = [
        np.asarray(fn(params, state, _device_batch(images[i : i + batch_size])))
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(outs, axis=0)


@functools.lru_cache(maxsize=32)
def _predict_fn(model: Layer) -> Callable[..., Array]:
    return jax.jit(lambda p, s, x: model.apply(p, s, x, train=False)[0])
