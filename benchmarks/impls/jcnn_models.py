"""jcnn's zoo models (``jcnn.models``) trained with ``jcnn.losses`` and ``jcnn.optim.sgd``."""

from __future__ import annotations

import contextlib
import importlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jcnn
from benchmarks.impls import common as C


def make(model: str) -> jcnn.Layer:
    """The zoo model with the benchmark's classes and channels (MobileNet v2 without dropout)."""
    kwargs = {"dropout": 0.0} if model == "mobilenet_v2" else {}
    return getattr(jcnn.models, model)(num_classes=C.NUM_CLASSES, in_channels=C.in_channels(model), **kwargs)


def init(model: str, size: int, seed: int = 0) -> tuple[Any, Any]:
    _, params, state = make(model).init(jax.random.key(seed), (1, size, size, C.in_channels(model)))
    return params, state


def make_train_step(model: str) -> tuple[Any, jcnn.optim.Optimizer]:
    """``train_step((params, state, opt_state), x, y) -> (carry, loss)`` and the optimizer it uses."""
    net = make(model)
    opt = jcnn.optim.sgd(C.LR, momentum=C.MOMENTUM)

    def loss_fn(p, s, xb, yb):
        logits, s = net.apply(p, s, xb, train=True)
        return jcnn.losses.softmax_cross_entropy(logits, yb), s

    def train_step(carry, xb, yb):
        p, s, o = carry
        (loss, s), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, s, xb, yb)
        updates, o = opt.update(grads, o, p)
        return (jcnn.optim.apply_updates(p, updates), s, o), loss

    return train_step, opt


@contextlib.contextmanager
def xla_convs_only():
    """Trace with ``algorithm="auto"`` meaning ``"xla"`` for every conv: jcnn as a hand-written lax program
    would lower it, so that jcnn's overhead is measured apart from its conv lowerings."""
    module = importlib.import_module("jcnn.ops.conv")
    saved = module._auto_algorithm
    module._auto_algorithm = lambda *args: "xla"
    try:
        yield
    finally:
        module._auto_algorithm = saved


def build(model: str, batch: int, size: int, *, seed: int = 0, xla_only: bool = False) -> C.Impl:
    if xla_only:
        with xla_convs_only():
            impl = build(model, batch, size, seed=seed)
            impl.infer()  # compiles the batch-1 predict inside the context too
            return impl
    net = make(model)
    params, state = init(model, size, seed)
    train_step, opt = make_train_step(model)
    x, y = C.example_batch(model, batch, size, seed)

    def predict(carry, xb):
        return net.apply(carry[0], carry[1], xb, train=False)[0]

    snapshot = jax.tree_util.tree_map(np.array, (params, state))

    def logits(xb: np.ndarray) -> np.ndarray:
        return np.asarray(net.apply(*snapshot, jnp.asarray(xb), train=False)[0])

    return C.jax_impl(train_step, (params, state, opt.init(params)), predict, x, y, logits)
