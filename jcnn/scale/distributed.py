"""Data parallelism with JAX's own machinery: a ``jax.sharding.Mesh`` and ``jax.shard_map``.

Each device runs the same train step on its slice of the global batch; gradients, the loss and the
metrics are averaged with ``lax.pmean`` over the mesh axis, so one step on ``D`` devices equals one
step on one device with the global batch. A model built with ``BatchNorm(axis_name=AXIS)`` computes its
batch statistics over the global batch too (synchronized batch norm); without it each device uses its
own slice's statistics. Params, model state and optimizer state are replicated.

(The module is ``jcnn.scale.distributed`` rather than ``jcnn.parallel``: docs/design.md §3 gives that name to the
``parallel`` combinator re-exported at ``jcnn.*``.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jcnn._types import Array
from jcnn.layers.base import Layer
from jcnn.scale.precision import all_finite

AXIS = "data"
"""The default name of the mesh axis the batch is split over."""


def data_mesh(devices: Sequence[Any] | None = None, axis_name: str = AXIS) -> Mesh:
    """A 1-D mesh over ``devices`` (default: every device of every process) named ``axis_name``."""
    devs = list(jax.devices() if devices is None else devices)
    if not devs:
        raise ValueError("data_mesh: needs at least one device")
    return Mesh(np.asarray(devs), (axis_name,))


def shard_batch(mesh: Mesh, *arrays: Array, axis_name: str = AXIS) -> tuple[Array, ...]:
    """Place each array with its leading (batch) axis split over ``axis_name`` of ``mesh``.

    The batch must divide evenly by the number of devices on that axis.
    """
    n = mesh.shape[axis_name]
    out = []
    for a in arrays:
        if a.shape[0] % n:
            raise ValueError(
                f"shard_batch: the batch size {a.shape[0]} must be divisible by the {n} devices of mesh "
                f"axis {axis_name!r}; got an array of shape {tuple(a.shape)}"
            )
        out.append(jax.device_put(a, NamedSharding(mesh, P(axis_name))))
    return tuple(out)


def replicate(mesh: Mesh, tree: Any) -> Any:
    """Place every leaf of ``tree`` fully replicated on ``mesh``."""
    return jax.device_put(tree, NamedSharding(mesh, P()))


def make_parallel_train_step(
    model: Layer,
    loss_fn: Callable[[Array, Array], Array],
    optimizer: Any,
    mesh: Mesh,
    *,
    axis_name: str = AXIS,
    augment_fn: Callable[[Array, Array], Array] | None = None,
    donate: bool = True,
) -> Callable[[Any, Array, Array], tuple[Any, dict[str, Any]]]:
    """A jitted data-parallel step ``step(train_state, images, labels) -> (train_state, metrics)``.

    ``train_state`` is a :class:`jcnn.training.train.TrainState` (params, state, opt_state, step, rng),
    replicated; ``images``/``labels`` hold the global batch, split over ``axis_name``. Per device:
    ``loss = loss_fn(logits, labels)`` on its slice (a mean), gradients by ``jax.value_and_grad``, then
    ``pmean`` of gradients, loss and accuracy over the devices; the optimizer update is the same on
    every device; a step whose loss, gradients or updated params are not finite leaves the state unchanged (as
    :func:`jcnn.training.train.make_train_step`). Dropout and ``augment_fn`` get per-device keys (``fold_in`` of
    the device index).
    """
    from jcnn.optim import apply_updates

    def per_device(ts: Any, images: Array, labels: Array) -> tuple[Any, dict[str, Any]]:
        # The same key schedule as jcnn.training.train.make_train_step; the model key differs per device.
        rng, k_aug, k_model = jax.random.split(ts.rng, 3)
        index = lax.axis_index(axis_name)
        x = augment_fn(jax.random.fold_in(k_aug, index), images) if augment_fn is not None else images
        key = jax.random.fold_in(k_model, index)

        def objective(params: Any) -> tuple[Array, tuple[Array, Any]]:
            logits, new_state = model.apply(params, ts.state, x, train=True, key=key)
            return loss_fn(logits, labels), (logits, new_state)

        (loss, (logits, new_state)), grads = jax.value_and_grad(objective, has_aux=True)(ts.params)
        grads = lax.pmean(grads, axis_name)
        loss = lax.pmean(loss, axis_name)
        updates, opt_state = optimizer.update(grads, ts.opt_state, ts.params)
        params = apply_updates(ts.params, updates)
        # Without synchronized BatchNorm the running statistics differ per device: average them.
        new_state = jax.tree_util.tree_map(
            lambda v: lax.pmean(v, axis_name) if jnp.issubdtype(v.dtype, jnp.floating) else v,
            new_state,
        )
        finite = jnp.isfinite(loss) & all_finite(grads) & all_finite(params)  # params: the update too
        new = ts._replace(params=params, state=new_state, opt_state=opt_state, step=ts.step + 1, rng=rng)
        new = jax.tree_util.tree_map(lambda n, o: jnp.where(finite, n, o), new, ts)
        correct = jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32))
        accuracy = lax.pmean(correct, axis_name)
        metrics = {"loss": loss.astype(jnp.float32), "accuracy": accuracy, "finite": finite}
        return new, metrics

    in_specs = (P(), P(axis_name), P(axis_name))
    out_specs = (P(), P())
    sharded = jax.shard_map(per_device, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)
    return jax.jit(sharded, donate_argnums=(0,) if donate else ())


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    **kwargs: Any,
) -> None:
    """Multi-host start-up: ``jax.distributed.initialize`` with the same arguments.

    Call it once per process before any other JAX call; afterwards ``jax.devices()`` lists every
    process's devices and :func:`data_mesh` spans them all. Each process feeds its own slice of the
    global batch (``jax.make_array_from_process_local_data``). On CPU, set
    ``jax.config.update("jax_cpu_collectives_implementation", "gloo")`` first.
    """
    jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id, **kwargs
    )
