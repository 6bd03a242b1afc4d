"""Equinox twins, written as Equinox intends: channel-first modules on one example, ``jax.vmap`` over
the batch (BatchNorm ``mode="batch"`` reduces over the vmapped ``"batch"`` axis), ``optax.sgd``."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks.impls import common as C


def _conv(cin, cout, k, stride=1, pad=0, groups=1, bias=False, *, key):
    return eqx.nn.Conv2d(cin, cout, k, stride, pad, groups=groups, use_bias=bias, key=key)


def _bn(ch):
    return eqx.nn.BatchNorm(ch, axis_name="batch", eps=C.BN_EPS, momentum=1 - C.BN_MOMENTUM, mode="batch")


class Unit(eqx.Module):
    conv: eqx.nn.Conv2d
    bn: eqx.nn.BatchNorm
    act6: bool = eqx.field(static=True)

    def __init__(self, cin, cout, k, stride=1, groups=1, act6=True, *, key):
        self.conv, self.bn, self.act6 = _conv(cin, cout, k, stride, (k - 1) // 2, groups, key=key), _bn(cout), act6

    def __call__(self, x, state):
        x, state = self.bn(self.conv(x), state)
        return (jnp.clip(x, 0.0, 6.0) if self.act6 else jax.nn.relu(x)), state


class LeNet5(eqx.Module):
    c1: eqx.nn.Conv2d
    c2: eqx.nn.Conv2d
    fcs: list
    pool: eqx.nn.MaxPool2d

    def __init__(self, key):
        k = jax.random.split(key, 5)
        self.c1, self.c2 = _conv(1, 6, 5, bias=True, key=k[0]), _conv(6, 16, 5, bias=True, key=k[1])
        self.fcs = [
            eqx.nn.Linear(400, 120, key=k[2]),
            eqx.nn.Linear(120, 84, key=k[3]),
            eqx.nn.Linear(84, C.NUM_CLASSES, key=k[4]),
        ]
        self.pool = eqx.nn.MaxPool2d(2, 2)

    def __call__(self, x, state):
        x = self.pool(jax.nn.relu(self.c1(x)))
        x = self.pool(jax.nn.relu(self.c2(x))).reshape(-1)
        x = jax.nn.relu(self.fcs[1](jax.nn.relu(self.fcs[0](x))))
        return self.fcs[2](x), state


class BasicBlock(eqx.Module):
    conv1: eqx.nn.Conv2d
    bn1: eqx.nn.BatchNorm
    conv2: eqx.nn.Conv2d
    bn2: eqx.nn.BatchNorm
    down: Unit | None

    def __init__(self, cin, planes, stride, key):
        k = jax.random.split(key, 3)
        self.conv1, self.bn1 = _conv(cin, planes, 3, stride, 1, key=k[0]), _bn(planes)
        self.conv2, self.bn2 = _conv(planes, planes, 3, 1, 1, key=k[1]), _bn(planes)
        self.down = None
        if stride != 1 or cin != planes:
            self.down = eqx.nn.Sequential([_conv(cin, planes, 1, stride, key=k[2]), _bn(planes)])

    def __call__(self, x, state):
        y, state = self.bn1(self.conv1(x), state)
        y, state = self.bn2(self.conv2(jax.nn.relu(y)), state)
        if self.down is not None:
            x, state = self.down(x, state)
        return jax.nn.relu(x + y), state


class Bottleneck(eqx.Module):
    conv1: eqx.nn.Conv2d
    bn1: eqx.nn.BatchNorm
    conv2: eqx.nn.Conv2d
    bn2: eqx.nn.BatchNorm
    conv3: eqx.nn.Conv2d
    bn3: eqx.nn.BatchNorm
    down: Unit | None

    def __init__(self, cin, planes, stride, key):
        k = jax.random.split(key, 4)
        self.conv1, self.bn1 = _conv(cin, planes, 1, key=k[0]), _bn(planes)
        self.conv2, self.bn2 = _conv(planes, planes, 3, stride, 1, key=k[1]), _bn(planes)
        self.conv3, self.bn3 = _conv(planes, planes * 4, 1, key=k[2]), _bn(planes * 4)
        self.down = None
        if stride != 1 or cin != planes * 4:
            self.down = eqx.nn.Sequential([_conv(cin, planes * 4, 1, stride, key=k[3]), _bn(planes * 4)])

    def __call__(self, x, state):
        y, state = self.bn1(self.conv1(x), state)
        y, state = self.bn2(self.conv2(jax.nn.relu(y)), state)
        y, state = self.bn3(self.conv3(jax.nn.relu(y)), state)
        if self.down is not None:
            x, state = self.down(x, state)
        return jax.nn.relu(x + y), state


class ResNet(eqx.Module):
    """torchvision's ResNet; ``cifar``: 3×3/1 stem, no max pool."""

    conv1: eqx.nn.Conv2d
    bn1: eqx.nn.BatchNorm
    pool: eqx.nn.MaxPool2d | None
    blocks: list
    fc: eqx.nn.Linear

    def __init__(self, key, block=BasicBlock, depths=(2, 2, 2, 2), cifar=False):
        keys = iter(jax.random.split(key, 2 + sum(depths)))
        self.conv1 = _conv(3, 64, 3, 1, 1, key=next(keys)) if cifar else _conv(3, 64, 7, 2, 3, key=next(keys))
        self.bn1 = _bn(64)
        self.pool = None if cifar else eqx.nn.MaxPool2d(3, 2, 1)
        expansion = 4 if block is Bottleneck else 1
        blocks, cin = [], 64
        for i, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths)):
            for j in range(depth):
                blocks.append(block(cin, planes, (1 if i == 0 else 2) if j == 0 else 1, next(keys)))
                cin = planes * expansion
        self.blocks = blocks
        self.fc = eqx.nn.Linear(cin, C.NUM_CLASSES, key=next(keys))

    def __call__(self, x, state):
        x, state = self.bn1(self.conv1(x), state)
        x = jax.nn.relu(x)
        if self.pool is not None:
            x = self.pool(x)
        for b in self.blocks:
            x, state = b(x, state)
        return self.fc(jnp.mean(x, (1, 2))), state


class VGG11BN(eqx.Module):
    convs: list
    bns: list
    pool: eqx.nn.MaxPool2d
    fcs: list

    def __init__(self, key):
        keys = iter(jax.random.split(key, 11))
        convs, bns, cin = [], [], 3
        for v in C.VGG11:
            if v != "M":
                convs.append(_conv(cin, v, 3, 1, 1, bias=True, key=next(keys)))
                bns.append(_bn(v))
                cin = v
        self.convs, self.bns = convs, bns
        self.pool = eqx.nn.MaxPool2d(2, 2)
        self.fcs = [
            eqx.nn.Linear(512, C.VGG_HIDDEN, key=next(keys)),
            eqx.nn.Linear(C.VGG_HIDDEN, C.VGG_HIDDEN, key=next(keys)),
            eqx.nn.Linear(C.VGG_HIDDEN, C.NUM_CLASSES, key=next(keys)),
        ]

    def __call__(self, x, state):
        i = 0
        for v in C.VGG11:
            if v == "M":
                x = self.pool(x)
            else:
                x, state = self.bns[i](self.convs[i](x), state)
                x = jax.nn.relu(x)
                i += 1
        x = x.reshape(-1)
        x = jax.nn.relu(self.fcs[1](jax.nn.relu(self.fcs[0](x))))
        return self.fcs[2](x), state


class InvertedResidual(eqx.Module):
    expand: Unit | None
    dw: Unit
    project: eqx.nn.Conv2d
    bn: eqx.nn.BatchNorm
    use_res: bool = eqx.field(static=True)

    def __init__(self, cin, cout, stride, t, key):
        k = jax.random.split(key, 3)
        hidden = cin * t
        self.expand = Unit(cin, hidden, 1, key=k[0]) if t != 1 else None
        self.dw = Unit(hidden, hidden, 3, stride, hidden, key=k[1])
        self.project, self.bn = _conv(hidden, cout, 1, key=k[2]), _bn(cout)
        self.use_res = stride == 1 and cin == cout

    def __call__(self, x, state):
        y = x
        if self.expand is not None:
            y, state = self.expand(y, state)
        y, state = self.dw(y, state)
        y, state = self.bn(self.project(y), state)
        return (x + y if self.use_res else y), state


class MobileNetV2(eqx.Module):
    layers: list
    fc: eqx.nn.Linear

    def __init__(self, key):
        keys = iter(jax.random.split(key, 32))
        layers, cin = [Unit(3, 32, 3, 2, key=next(keys))], 32
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
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t, next(keys)))
                cin = c
        layers.append(Unit(cin, 1280, 1, key=next(keys)))
        self.layers = layers
        self.fc = eqx.nn.Linear(1280, C.NUM_CLASSES, key=next(keys))

    def __call__(self, x, state):
        for layer in self.layers:
            x, state = layer(x, state)
        return self.fc(jnp.mean(x, (1, 2))), state


MODELS = {
    "lenet5": LeNet5,
    "resnet18": ResNet,
    "mobilenet_v2": MobileNetV2,
    "vgg11_bn": VGG11BN,
    "cifar_resnet18": lambda key: ResNet(key, cifar=True),
    "resnet50": lambda key: ResNet(key, Bottleneck, (3, 4, 6, 3)),
}


def build(model: str, batch: int, size: int, *, seed: int = 0) -> C.Impl:
    def create(key: jax.Array) -> tuple[eqx.Module, eqx.nn.State]:
        net, bn_state = eqx.nn.make_with_state(MODELS[model])(key)
        # Equinox creates float64 weights when jax_enable_x64 is on (as in the test suite); the benchmark is
        # float32.
        return jax.tree_util.tree_map(
            lambda a: a.astype(jnp.float32) if eqx.is_inexact_array(a) else a, (net, bn_state)
        )

    # One jitted program, with jax's "unsafe_rbg" generator: init is not timed, and with threefry XLA takes
    # ~10 s to compile a CIFAR ResNet-18's init here (eager or jitted), a third of --quick's budget.
    net, bn_state = eqx.filter_jit(create)(jax.random.key(seed, impl="unsafe_rbg"))
    params, static = eqx.partition(net, eqx.is_array)
    opt = optax.sgd(C.LR, momentum=C.MOMENTUM)
    x, y = C.example_batch(model, batch, size, seed)
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # Equinox convs are channel-first

    def forward(p, s, xb, inference):
        m = eqx.combine(p, static)
        if inference:
            m = eqx.nn.inference_mode(m)
        return jax.vmap(m, axis_name="batch", in_axes=(0, None), out_axes=(0, None))(xb, s)

    def train_step(carry, xb, yb):
        p, s, o = carry

        def loss_fn(p):
            logits, s2 = forward(p, s, xb, False)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean(), s2

        (loss, s2), grads = jax.value_and_grad(loss_fn, has_aux=True)(p)
        updates, o = opt.update(grads, o, p)
        return (optax.apply_updates(p, updates), s2, o), loss

    def predict(carry, xb):
        return forward(carry[0], carry[1], xb, True)[0]

    snapshot = jax.tree_util.tree_map(np.array, (params, bn_state))  # host copies: no compile per shape

    def logits(xb: np.ndarray) -> np.ndarray:
        return np.asarray(predict(snapshot, jnp.asarray(xb.transpose(0, 3, 1, 2))))

    return C.jax_impl(train_step, (params, bn_state, jax.jit(opt.init)(params)), predict, x, y, logits)
