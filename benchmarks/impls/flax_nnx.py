"""Flax NNX twins (channels-last, ``nnx.Conv``/``nnx.BatchNorm``), trained with ``optax.sgd``.

The step uses Flax's functional fast path: ``nnx.split`` once, ``nnx.merge`` inside a ``jax.jit``ed
step, so no graph traversal happens per call (``nnx.jit`` would add Python overhead to every step).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from benchmarks.impls import common as C


def _conv(
    cin: int, cout: int, k: int, stride: int = 1, pad: int = 0, groups: int = 1, bias: bool = False, *, rngs: nnx.Rngs
) -> nnx.Conv:
    return nnx.Conv(
        cin,
        cout,
        (k, k),
        strides=stride,
        padding=((pad, pad), (pad, pad)),
        feature_group_count=groups,
        use_bias=bias,
        rngs=rngs,
    )


def _bn(ch: int, *, rngs: nnx.Rngs) -> nnx.BatchNorm:
    # Flax's momentum is the torch complement: running = momentum·running + (1 − momentum)·batch.
    return nnx.BatchNorm(ch, momentum=1 - C.BN_MOMENTUM, epsilon=C.BN_EPS, rngs=rngs)


class LeNet5(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.c1 = _conv(1, 6, 5, bias=True, rngs=rngs)
        self.c2 = _conv(6, 16, 5, bias=True, rngs=rngs)
        self.f1, self.f2 = nnx.Linear(400, 120, rngs=rngs), nnx.Linear(120, 84, rngs=rngs)
        self.f3 = nnx.Linear(84, C.NUM_CLASSES, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = nnx.max_pool(nnx.relu(self.c1(x)), (2, 2), (2, 2))
        x = nnx.max_pool(nnx.relu(self.c2(x)), (2, 2), (2, 2))
        x = x.reshape(x.shape[0], -1)
        return self.f3(nnx.relu(self.f2(nnx.relu(self.f1(x)))))


class BasicBlock(nnx.Module):
    def __init__(self, cin: int, planes: int, stride: int, rngs: nnx.Rngs) -> None:
        self.conv1, self.bn1 = _conv(cin, planes, 3, stride, 1, rngs=rngs), _bn(planes, rngs=rngs)
        self.conv2, self.bn2 = _conv(planes, planes, 3, 1, 1, rngs=rngs), _bn(planes, rngs=rngs)
        needs = stride != 1 or cin != planes
        self.down = nnx.data(
            nnx.Sequential(_conv(cin, planes, 1, stride, rngs=rngs), _bn(planes, rngs=rngs)) if needs else None
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        y = self.bn2(self.conv2(nnx.relu(self.bn1(self.conv1(x)))))
        return nnx.relu(y + (x if self.down is None else self.down(x)))


class Bottleneck(nnx.Module):
    def __init__(self, cin: int, planes: int, stride: int, rngs: nnx.Rngs) -> None:
        self.conv1, self.bn1 = _conv(cin, planes, 1, rngs=rngs), _bn(planes, rngs=rngs)
        self.conv2, self.bn2 = _conv(planes, planes, 3, stride, 1, rngs=rngs), _bn(planes, rngs=rngs)
        self.conv3, self.bn3 = _conv(planes, planes * 4, 1, rngs=rngs), _bn(planes * 4, rngs=rngs)
        needs = stride != 1 or cin != planes * 4
        self.down = nnx.data(
            nnx.Sequential(_conv(cin, planes * 4, 1, stride, rngs=rngs), _bn(planes * 4, rngs=rngs)) if needs else None
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        y = nnx.relu(self.bn1(self.conv1(x)))
        y = self.bn3(self.conv3(nnx.relu(self.bn2(self.conv2(y)))))
        return nnx.relu(y + (x if self.down is None else self.down(x)))


class ResNet(nnx.Module):
    """torchvision's ResNet; ``cifar``: 3×3/1 stem, no max pool."""

    def __init__(
        self, rngs: nnx.Rngs, block: type = BasicBlock, depths: tuple[int, ...] = (2, 2, 2, 2), cifar: bool = False
    ) -> None:
        self.cifar = cifar
        self.conv1 = _conv(3, 64, 3, 1, 1, rngs=rngs) if cifar else _conv(3, 64, 7, 2, 3, rngs=rngs)
        self.bn1 = _bn(64, rngs=rngs)
        expansion = 4 if block is Bottleneck else 1
        blocks, cin = [], 64
        for i, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths)):
            for j in range(depth):
                blocks.append(block(cin, planes, (1 if i == 0 else 2) if j == 0 else 1, rngs))
                cin = planes * expansion
        self.blocks = nnx.List(blocks) if hasattr(nnx, "List") else blocks
        self.fc = nnx.Linear(cin, C.NUM_CLASSES, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = nnx.relu(self.bn1(self.conv1(x)))
        if not self.cifar:
            x = nnx.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
        for b in self.blocks:
            x = b(x)
        return self.fc(jnp.mean(x, (1, 2)))


class VGG11BN(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        layers, cin = [], 3
        for v in C.VGG11:
            if v != "M":
                layers.append(nnx.Sequential(_conv(cin, v, 3, 1, 1, bias=True, rngs=rngs), _bn(v, rngs=rngs)))
                cin = v
        self.layers = nnx.List(layers) if hasattr(nnx, "List") else layers
        self.f1 = nnx.Linear(512, C.VGG_HIDDEN, rngs=rngs)
        self.f2 = nnx.Linear(C.VGG_HIDDEN, C.VGG_HIDDEN, rngs=rngs)
        self.f3 = nnx.Linear(C.VGG_HIDDEN, C.NUM_CLASSES, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        convs = iter(self.layers)
        for v in C.VGG11:
            x = nnx.max_pool(x, (2, 2), (2, 2)) if v == "M" else nnx.relu(next(convs)(x))
        x = x.reshape(x.shape[0], -1)
        return self.f3(nnx.relu(self.f2(nnx.relu(self.f1(x)))))


class Unit(nnx.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, *, rngs: nnx.Rngs) -> None:
        self.conv = _conv(cin, cout, k, stride, (k - 1) // 2, groups, rngs=rngs)
        self.bn = _bn(cout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return nnx.relu6(self.bn(self.conv(x)))


class InvertedResidual(nnx.Module):
    def __init__(self, cin: int, cout: int, stride: int, t: int, rngs: nnx.Rngs) -> None:
        hidden = cin * t
        self.expand = nnx.data(Unit(cin, hidden, 1, rngs=rngs) if t != 1 else None)
        self.dw = Unit(hidden, hidden, 3, stride, hidden, rngs=rngs)
        self.project, self.bn = _conv(hidden, cout, 1, rngs=rngs), _bn(cout, rngs=rngs)
        self.use_res = stride == 1 and cin == cout

    def __call__(self, x: jax.Array) -> jax.Array:
        y = x if self.expand is None else self.expand(x)
        y = self.bn(self.project(self.dw(y)))
        return x + y if self.use_res else y


class MobileNetV2(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        layers, cin = [Unit(3, 32, 3, 2, rngs=rngs)], 32
        for t, c, n, s in (
            (1, 16, 1, 1),
            (6, 24, 2, 2),
            (6, 32, 3, 2),
            (6, 64, 4, 2),
            (6, 96, 3, 1),
            (6, 160, 3, 2),
            (6, 320, 1, 1),
        ):
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t, rngs))
                cin = c
        layers.append(Unit(cin, 1280, 1, rngs=rngs))
        self.layers = nnx.List(layers) if hasattr(nnx, "List") else layers
        self.fc = nnx.Linear(1280, C.NUM_CLASSES, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers:
            x = layer(x)
        return self.fc(jnp.mean(x, (1, 2)))


MODELS = {
    "lenet5": LeNet5,
    "resnet18": ResNet,
    "mobilenet_v2": MobileNetV2,
    "vgg11_bn": VGG11BN,
    "cifar_resnet18": lambda rngs: ResNet(rngs, cifar=True),
    "resnet50": lambda rngs: ResNet(rngs, Bottleneck, (3, 4, 6, 3)),
}


def build(model: str, batch: int, size: int, *, seed: int = 0) -> C.Impl:
    def create() -> tuple[nnx.Module, nnx.Optimizer]:
        net = MODELS[model](nnx.Rngs(jax.random.key(seed, impl="unsafe_rbg")))
        return net, nnx.Optimizer(net, optax.sgd(C.LR, momentum=C.MOMENTUM), wrt=nnx.Param)

    # One jitted program, with jax's "unsafe_rbg" generator: init is not timed, and with threefry XLA takes
    # ~10 s to compile a CIFAR ResNet-18's init here (eager or jitted), a third of --quick's budget.
    net, optimizer = nnx.jit(create)()
    graphdef, state = nnx.split((net, optimizer))
    x, y = C.example_batch(model, batch, size, seed)

    def train_step(state, xb, yb):
        net, optimizer = nnx.merge(graphdef, state)
        net.train()

        def loss_fn(m):
            return optax.softmax_cross_entropy_with_integer_labels(m(xb), yb).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(net)
        optimizer.update(net, grads)
        return nnx.state((net, optimizer)), loss

    def predict(state, xb):
        net, _ = nnx.merge(graphdef, state)
        net.eval()
        return net(xb)

    snapshot = jax.tree_util.tree_map(np.array, state)

    def logits(xb: np.ndarray) -> np.ndarray:
        return np.asarray(predict(snapshot, jnp.asarray(xb)))

    return C.jax_impl(train_step, state, predict, x, y, logits)
