"""The optimizer protocol (docs/design.md §5): a pair of pure functions over pytrees.

``init(params) -> state`` builds the optimizer state (a pytree shaped like ``params`` plus a step
counter); ``update(grads, state, params=None) -> (updates, new_state)`` turns gradients into updates, and
``apply_updates(params, updates)`` adds them. Transformations compose with :func:`chain`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple, Union

import jax
import jax.numpy as jnp
import numpy as np

from jcnn import _host_random as H
from jcnn._types import Array, Params

OptState = Any
Updates = Any
Schedule = Callable[[Array], Array]
"""A learning-rate schedule: ``step -> lr``."""
ScalarOrSchedule = Union[float, Schedule]
"""A constant learning rate or a schedule."""


class Optimizer(NamedTuple):
    """``init(params) -> state`` and ``update(grads, state, params=None) -> (updates, new_state)``.

    It unpacks like a pair (``init, update = opt``). ``name`` (read from ``init``) keys this
    transformation's state inside :func:`chain`.
    """

    init: Callable[[Params], OptState]
    update: Callable[..., tuple[Updates, OptState]]

    @property
    def name(self) -> str:
        """The name given to :func:`make_optimizer` (``"transform"`` if none)."""
        return getattr(self.init, "jcnn_name", "transform")


class EmptyState(NamedTuple):
    """The state of a stateless transformation."""


class CountState(NamedTuple):
    """``count``: how many updates have been made (int32 scalar); schedules read it."""

    count: Array  # type: ignore[assignment]  # the public field shadows tuple.count (as in optax)


def make_optimizer(name: str, init: Callable[[Params], OptState], update: Callable[..., Any]) -> Optimizer:
    """Build an :class:`Optimizer`, recording ``name`` (e.g. ``"scale_by_adam"``) for :func:`chain`."""
    # the name rides on the init function, so Optimizer stays a plain (init, update) pair
    init.jcnn_name = name  # type: ignore[attr-defined]  # functions declare no such attribute
    return Optimizer(init, update)


# ---------------------------------------------------------------------------------------------------
# Checks at the boundary


def _path_str(path: tuple[Any, ...]) -> str:
    return jax.tree_util.keystr(path) or "<root>"


def check_same_structure(who: str, a: Any, b: Any, a_name: str, b_name: str) -> None:
    """Raise ``TypeError`` naming the paths present in one pytree and not the other."""
    structure_a: Any = jax.tree_util.tree_structure(a)  # jaxlib ships no stub for PyTreeDef (and its ==)
    if structure_a == jax.tree_util.tree_structure(b):
        return
    pa = {_path_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(a)[0]}
    pb = {_path_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(b)[0]}
    only_a, only_b = sorted(pa - pb), sorted(pb - pa)
    detail = f"paths only in {a_name}: {only_a or 'none'}; paths only in {b_name}: {only_b or 'none'}"
    if not only_a and not only_b:
        detail = (
            f"same leaf paths but different container types: {a_name} is "
            f"{jax.tree_util.tree_structure(a)}, {b_name} is {jax.tree_util.tree_structure(b)}"
        )
    raise TypeError(f"{who}: {a_name} and {b_name} must have the same pytree structure; {detail}")


def check_float_leaves(who: str, tree: Any, what: str) -> None:
    """Raise ``TypeError`` if any leaf of ``tree`` is not an inexact (floating) array."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.inexact):
            raise TypeError(
                f"{who}: every leaf of {what} must be a floating-point array, but {what}"
                f"{_path_str(path)} has dtype {dtype}; cast it (e.g. x.astype(jnp.float32)) or keep "
                "integer buffers out of the trainable params"
            )


def check_same_shapes(who: str, a: Any, b: Any, a_name: str, b_name: str) -> None:
    """Raise ``ValueError`` naming every leaf whose shape differs between two pytrees of one structure
    (elementwise arithmetic would broadcast them silently, or fail naming no leaf)."""
    diffs = [
        f"{b_name}{_path_str(path)} has shape {tuple(jnp.shape(y))}, {a_name}{_path_str(path)} {tuple(jnp.shape(x))}"
        for (path, x), y in zip(jax.tree_util.tree_flatten_with_path(a)[0], jax.tree_util.tree_leaves(b))
        if jnp.shape(x) != jnp.shape(y)
    ]
    if diffs:
        raise ValueError(f"{who}: every leaf of {b_name} must have the shape of its {a_name} leaf; " + "; ".join(diffs))


def check_update_args(who: str, grads: Any, params: Any) -> None:
    """The checks every ``update`` makes: float grads, and params (if given) float and shaped alike."""
    check_float_leaves(who, grads, "grads")
    if params is not None:
        check_same_structure(who, params, grads, "params", "grads")
        check_float_leaves(who, params, "params")
        check_same_shapes(who, params, grads, "params", "grads")


def check_grads_like(who: str, grads: Any, buffers: Any, what: str) -> None:
    """Grads against a state buffer built from params (for transformations called without params)."""
    check_same_structure(who, buffers, grads, what, "grads")
    check_same_shapes(who, buffers, grads, what, "grads")


def require_params(who: str, params: Any) -> None:
    """Raise ``ValueError`` when a transformation that reads the params was not given them."""
    if params is None:
        raise ValueError(f"{who}: this transformation needs the current params; call update(grads, state, params)")


def check_scalar(
    who: str,
    name: str,
    value: Any,
    *,
    low: float | None = 0.0,
    high: float | None = None,
    high_open: bool = False,
    low_open: bool = False,
) -> float:
    """Validate a finite hyperparameter in ``[low, high]`` (ends open where asked); return it as float."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: {name} must be a real number, got {value!r}") from None
    lo_ok = low is None or (v > low if low_open else v >= low)
    hi_ok = high is None or (v < high if high_open else v <= high)
    if not math.isfinite(v) or not lo_ok or not hi_ok:
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        interval = ("(" if low_open else "[") + f"{lo}, {hi}" + (")" if high_open else "]")
        raise ValueError(f"{who}: {name} must be a finite number in {interval}, got {value!r}")
    return v


def check_learning_rate(who: str, learning_rate: ScalarOrSchedule) -> ScalarOrSchedule:
    """A learning rate is a finite float ``>= 0`` or a schedule ``step -> lr`` (its values are checked
    when the schedule is built)."""
    if callable(learning_rate):
        return learning_rate
    return check_scalar(who, "learning_rate", learning_rate)


def lr_at(learning_rate: ScalarOrSchedule, count: Array) -> float | Array:
    """The learning rate for the update made when ``count`` updates have been made before it.

    A schedule's value must be finite and ``>= 0`` (a negative rate would ascend; ``maximize=True`` is
    the way to do that). Eagerly a bad value raises ``ValueError`` naming the step; under ``jit`` it
    becomes NaN, so the update is NaN and :func:`jcnn.training.train.make_train_step`'s guard stops on it.
    """
    if not callable(learning_rate):
        return learning_rate
    lr = learning_rate(count)
    if isinstance(lr, jax.core.Tracer) or isinstance(count, jax.core.Tracer):
        return jnp.where(jnp.asarray(lr) >= 0, lr, jnp.nan)
    value = np.asarray(lr)
    if not (np.all(np.isfinite(value)) and np.all(value >= 0)):
        shown = f"{float(value):.6g}" if value.size == 1 else repr(value.tolist())
        raise ValueError(
            f"learning_rate: the schedule returned {shown} for step {int(count)}; a "
            "learning rate must be a finite number >= 0 (use maximize=True to ascend)"
        )
    return lr


def cast_like(value: Any, leaf: Array) -> Any:
    """A scalar (Python or traced) in ``leaf``'s dtype, so float32 params stay float32 under x64."""
    return value if isinstance(value, (int, float)) else jnp.asarray(value).astype(leaf.dtype)


def state_dtype(dtype: Any) -> Any:
    """Buffers and arithmetic use at least float32: a float16 ``eps = 1e-8`` or ``(1 − b2)·g²`` would
    underflow to 0 and turn Adam's step into ``m/0``. Updates are cast back to each param's dtype."""
    return jnp.promote_types(dtype, jnp.float32)


def upcast(tree: Any) -> Any:
    """Each leaf in :func:`state_dtype` of its own dtype."""
    return jax.tree_util.tree_map(lambda x: x.astype(state_dtype(jnp.result_type(x))), tree)


def downcast_like(tree: Any, like: Any) -> Any:
    """Each leaf of ``tree`` in the dtype of the matching leaf of ``like``."""
    return jax.tree_util.tree_map(lambda u, x: u.astype(jnp.result_type(x)), tree, like)


def _full(shape: tuple[int, ...], fill: float, dtype: Any, traced: bool) -> Array:
    # Outside a trace the buffer is made on the host: an eager jnp.full compiles once per shape and dtype
    # (a ResNet's Adam state cost ~50 ms per distinct parameter shape).
    if traced:
        return jnp.full(shape, fill, dtype)
    return H.to_device(np.full(shape, fill, np.dtype(dtype)))


def zeros_like_tree(tree: Any, fill: float = 0.0) -> Any:
    """Buffers shaped like ``tree``, filled with ``fill``, in :func:`state_dtype` of each leaf."""
    return jax.tree_util.tree_map(
        lambda x: _full(jnp.shape(x), fill, state_dtype(jnp.result_type(x)), isinstance(x, jax.core.Tracer)), tree
    )


def init_count() -> Array:
    """A step counter at 0 (int32 scalar)."""
    return _full((), 0, jnp.int32, traced=False)


# ---------------------------------------------------------------------------------------------------
# Applying and composing


def apply_updates(params: Params, updates: Updates) -> Params:
    """``params + updates`` leaf by leaf, keeping each param's dtype.

    Raises ``TypeError`` when the two pytrees differ in structure (naming the paths) or a param is not
    floating point.
    """
    check_same_structure("apply_updates", params, updates, "params", "updates")
    check_float_leaves("apply_updates", params, "params")
    check_same_shapes("apply_updates", params, updates, "params", "updates")
    return jax.tree_util.tree_map(lambda p, u: (p + u).astype(jnp.result_type(p)), params, updates)


def chain(*transforms: Optimizer) -> Optimizer:
    """Compose transformations left to right: the updates of one are the grads of the next.

    The state is a dict keyed by each transformation's name (``"trace"``, ``"scale_by_adam"``; a repeated
    name gets ``"_1"``, ``"_2"``...), so checkpoints stay readable.
    """
    for i, t in enumerate(transforms):
        if not isinstance(t, Optimizer):
            raise TypeError(f"chain: argument {i} must be an Optimizer (init, update), got {type(t).__name__}")
    keys: list[str] = []
    for t in transforms:
        k, n = t.name, 1
        while k in keys:
            k, n = f"{t.name}_{n}", n + 1
        keys.append(k)

    def init(params: Params) -> dict[str, OptState]:
        check_float_leaves("chain.init", params, "params")
        return {k: t.init(params) for k, t in zip(keys, transforms)}

    def update(
        grads: Updates, state: dict[str, OptState], params: Params | None = None
    ) -> tuple[Updates, dict[str, OptState]]:
        check_update_args("chain.update", grads, params)
        if not isinstance(state, dict) or set(state) != set(keys):
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise TypeError(f"chain.update: state must be a dict with keys {keys} (from chain.init), got {got}")
        new_state = {}
        for k, t in zip(keys, transforms):
            grads, new_state[k] = t.update(grads, state[k], params)
        return grads, new_state

    return make_optimizer("chain", init, update)
