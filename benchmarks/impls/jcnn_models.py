"""jcnn's zoo models (``jcnn.models``) trained with ``jcnn.losses`` and ``jcnn.optim.sgd``; the CIFAR
ResNet-18, which the zoo does not have, is put together here from jcnn's public layers."""

from __future__ import annotations

import contextlib
import importlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jcnn
from benchmarks.impls import common as C


def _conv(features: int, k: int, stride: int = 1, padding: int = 0) -> jcnn.Layer:
    return jcnn.Conv(features, (k, k), stride=stride, padding=padding, use_bias=False)


def _basic_block(planes: int, stride: int, project: bool) -> jcnn.Layer:
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``, the shortcut a 1×1 conv + BN when ``project``."""
    body = jcnn.serial(
        ("conv1", _conv(planes, 3, stride, 1)),
        ("bn1", jcnn.BatchNorm()),
        ("relu", jcnn.Relu),
        ("conv2", _conv(planes, 3, 1, 1)),
        ("bn2", jcnn.BatchNorm()),
    )
    shortcut = jcnn.serial(("0", _conv(planes, 1, stride)), ("1", jcnn.BatchNorm())) if project else jcnn.Identity
    return jcnn.serial(("res", jcnn.residual(body, shortcut, shortcut_name="downsample")), ("relu", jcnn.Relu))


def cifar_resnet18(num_classes: int = C.NUM_CLASSES, in_channels: int = 3) -> jcnn.Layer:
    """ResNet-18 with the CIFAR stem: 3×3/1 conv, BatchNorm, ReLU, no max pool, then torchvision's four
    stages of two basic blocks (64…512 planes, stride 2 from the second stage), global average pool, ``fc``.
    Param paths map onto the torch twin's ``state_dict`` keys by :func:`torch_key`."""
    del in_channels  # the first conv takes whatever channels its input has
    stages, channels = [], 64
    for index, planes in enumerate((64, 128, 256, 512)):
        stride = 1 if index == 0 else 2
        blocks = [
            ("0", _basic_block(planes, stride, stride != 1 or channels != planes)),
            ("1", _basic_block(planes, 1, False)),
        ]
        stages.append((f"layer{index + 1}", jcnn.serial(*blocks)))
        channels = planes
    return jcnn.serial(
        ("conv1", _conv(64, 3, 1, 1)),
        ("bn1", jcnn.BatchNorm()),
        ("relu", jcnn.Relu),
        *stages,
        ("avgpool", jcnn.GlobalAvgPool),
        ("fc", jcnn.Dense(num_classes)),
    )


_TORCH_LEAF = {"kernel": "weight", "scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}


def torch_key(path: tuple[str, ...]) -> str:
    """The torch ``state_dict`` key of a :func:`cifar_resnet18` param path, e.g.
    ``("layer2", "0", "res", "downsample", "0", "kernel")`` → ``"layer2.0.downsample.0.weight"``."""
    parts = [p for p in path[:-1] if p not in ("res", "block")]
    return ".".join(parts + [_TORCH_LEAF[path[-1]]])


def make(model: str) -> jcnn.Layer:
    """The model with the benchmark's classes and channels (MobileNet v2 and VGG without dropout)."""
    kwargs = {"num_classes": C.NUM_CLASSES, "in_channels": C.in_channels(model)}
    if model == "cifar_resnet18":
        return cifar_resnet18(**kwargs)
    if model == "mobilenet_v2":
        kwargs["dropout"] = 0.0
    if model == "vgg11_bn":
        kwargs.update(dropout=0.0, pool_size=1, hidden_features=C.VGG_HIDDEN)
    return getattr(jcnn.models, model)(**kwargs)


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
