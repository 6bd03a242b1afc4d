"""The baseline: the models written by hand on ``jax.lax``, channels-last, no library.

Params and state are nested dicts with the same keys as jcnn's zoo (so the tests can feed one model's
weights to the other), but nothing here imports jcnn. ``init`` runs the forward pass once in a mode
that creates each parameter where it is first used.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from benchmarks.impls import common as C

DN = ("NHWC", "HWIO", "NHWC")


class Ctx:
    """Carries params/state through a forward pass; with ``rng`` set it creates them instead."""

    def __init__(self, params: dict, state: dict, train: bool, rng: np.random.Generator | None = None):
        self.params, self.state, self.train, self.rng = params, state, train, rng
        self.new_state: dict = {}

    def child(self, name: str) -> Ctx:
        if self.rng is not None:
            self.params.setdefault(name, {})
            self.state.setdefault(name, {})
        sub = Ctx(self.params.get(name, {}), self.state.get(name, {}), self.train, self.rng)
        sub.new_state = self.new_state.setdefault(name, {})
        return sub


def conv(
    c: Ctx,
    name: str,
    x: jax.Array,
    features: int,
    k: int,
    stride: int = 1,
    pad: int = 0,
    groups: int = 1,
    bias: bool = False,
) -> jax.Array:
    if c.rng is not None:
        fan_in = x.shape[-1] // groups * k * k
        w = c.rng.uniform(-1, 1, (k, k, x.shape[-1] // groups, features)) / np.sqrt(fan_in)
        c.params[name] = {"kernel": w.astype(np.float32)}
        if bias:
            c.params[name]["bias"] = np.zeros((features,), np.float32)
    p = c.params[name]
    y = lax.conv_general_dilated(
        x, p["kernel"], (stride, stride), ((pad, pad), (pad, pad)), dimension_numbers=DN, feature_group_count=groups
    )
    return y + p["bias"] if bias else y


def batch_norm(c: Ctx, name: str, x: jax.Array) -> jax.Array:
    """Training: one pass over ``x`` for ``E[x]`` and ``E[x²]`` (float32), running averages updated."""
    ch = x.shape[-1]
    if c.rng is not None:
        c.params[name] = {"scale": np.ones((ch,), np.float32), "bias": np.zeros((ch,), np.float32)}
        c.state[name] = {"mean": np.zeros((ch,), np.float32), "var": np.ones((ch,), np.float32)}
    p, s = c.params[name], c.state[name]
    if c.train:
        axes = (0, 1, 2)
        mean = jnp.mean(x, axes)
        var = jnp.maximum(jnp.mean(jnp.square(x), axes) - jnp.square(mean), 0.0)
        n = x.size // ch
        m = C.BN_MOMENTUM
        c.new_state[name] = {
            "mean": (1 - m) * s["mean"] + m * mean,
            "var": (1 - m) * s["var"] + m * var * (n / (n - 1)),
        }
    else:
        mean, var = s["mean"], s["var"]
        c.new_state[name] = s
    mul = p["scale"] * lax.rsqrt(var + C.BN_EPS)
    return x * mul + (p["bias"] - mean * mul)


def dense(c: Ctx, name: str, x: jax.Array, features: int) -> jax.Array:
    if c.rng is not None:
        bound = 1 / np.sqrt(x.shape[-1])
        c.params[name] = {
            "kernel": c.rng.uniform(-bound, bound, (x.shape[-1], features)).astype(np.float32),
            "bias": np.zeros((features,), np.float32),
        }
    p = c.params[name]
    return x @ p["kernel"] + p["bias"]


def max_pool(x: jax.Array, k: int, stride: int, pad: int = 0) -> jax.Array:
    return lax.reduce_window(
        x, -jnp.inf, lax.max, (1, k, k, 1), (1, stride, stride, 1), ((0, 0), (pad, pad), (pad, pad), (0, 0))
    )


def lenet5(c: Ctx, x: jax.Array) -> jax.Array:
    f = c.child("features")
    x = max_pool(jax.nn.relu(conv(f, "0", x, 6, 5, bias=True)), 2, 2)
    x = max_pool(jax.nn.relu(conv(f, "3", x, 16, 5, bias=True)), 2, 2)
    # Flatten in (C, H, W) order would need a transpose; the zoo flattens channels-last (H, W, C).
    x = x.reshape(x.shape[0], -1)
    h = c.child("classifier")
    x = jax.nn.relu(dense(h, "0", x, 120))
    x = jax.nn.relu(dense(h, "2", x, 84))
    return dense(h, "4", x, C.NUM_CLASSES)


def _basic(b: Ctx, x: jax.Array, planes: int, stride: int) -> jax.Array:
    y = jax.nn.relu(batch_norm(b, "bn1", conv(b, "conv1", x, planes, 3, stride, 1)))
    y = batch_norm(b, "bn2", conv(b, "conv2", y, planes, 3, 1, 1))
    if stride != 1 or x.shape[-1] != planes:
        d = b.child("downsample")
        x = batch_norm(d, "1", conv(d, "0", x, planes, 1, stride))
    return jax.nn.relu(y + x)


def _bottleneck(b: Ctx, x: jax.Array, planes: int, stride: int) -> jax.Array:
    y = jax.nn.relu(batch_norm(b, "bn1", conv(b, "conv1", x, planes, 1)))
    y = jax.nn.relu(batch_norm(b, "bn2", conv(b, "conv2", y, planes, 3, stride, 1)))
    y = batch_norm(b, "bn3", conv(b, "conv3", y, planes * 4, 1))
    if stride != 1 or x.shape[-1] != planes * 4:
        d = b.child("downsample")
        x = batch_norm(d, "1", conv(d, "0", x, planes * 4, 1, stride))
    return jax.nn.relu(y + x)


def _resnet(c: Ctx, x: jax.Array, block: Any, depths: tuple[int, ...], cifar: bool) -> jax.Array:
    """torchvision's ResNet; ``cifar``: the 3×3/1 stem without max pool (the usual CIFAR variant)."""
    if cifar:
        x = jax.nn.relu(batch_norm(c, "bn1", conv(c, "conv1", x, 64, 3, 1, 1)))
    else:
        x = jax.nn.relu(batch_norm(c, "bn1", conv(c, "conv1", x, 64, 7, 2, 3)))
        x = max_pool(x, 3, 2, 1)
    for stage, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths)):
        layer = c.child(f"layer{stage + 1}")
        for i in range(depth):
            x = block(layer.child(str(i)), x, planes, 2 if stage > 0 and i == 0 else 1)
    return dense(c, "fc", jnp.mean(x, (1, 2)), C.NUM_CLASSES)


def resnet18(c: Ctx, x: jax.Array) -> jax.Array:
    return _resnet(c, x, _basic, (2, 2, 2, 2), cifar=False)


def cifar_resnet18(c: Ctx, x: jax.Array) -> jax.Array:
    return _resnet(c, x, _basic, (2, 2, 2, 2), cifar=True)


def resnet50(c: Ctx, x: jax.Array) -> jax.Array:
    return _resnet(c, x, _bottleneck, (3, 4, 6, 3), cifar=False)


def vgg11_bn(c: Ctx, x: jax.Array) -> jax.Array:
    """VGG-11 with BatchNorm for 32² inputs: torchvision's features, a 1×1 average pool, 512-wide head."""
    f = c.child("features")
    index = 0
    for v in C.VGG11:
        if v == "M":
            x = max_pool(x, 2, 2)
            index += 1
        else:
            x = jax.nn.relu(batch_norm(f, str(index + 1), conv(f, str(index), x, v, 3, 1, 1, bias=True)))
            index += 3
    x = x.reshape(x.shape[0], -1)  # the 1×1 map: adaptive average pool to 1×1 and flatten are the identity
    h = c.child("classifier")
    x = jax.nn.relu(dense(h, "0", x, C.VGG_HIDDEN))
    x = jax.nn.relu(dense(h, "3", x, C.VGG_HIDDEN))
    return dense(h, "6", x, C.NUM_CLASSES)


V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _unit(c: Ctx, x: jax.Array, features: int, k: int, stride: int = 1, groups: int = 1) -> jax.Array:
    x = batch_norm(c, "1", conv(c, "0", x, features, k, stride, (k - 1) // 2, groups))
    return jnp.clip(x, 0.0, 6.0)


def mobilenet_v2(c: Ctx, x: jax.Array) -> jax.Array:
    f = c.child("features")
    x = _unit(f.child("0"), x, 32, 3, 2)
    index = 1
    for t, ch, n, s in V2:
        for i in range(n):
            stride = s if i == 0 else 1
            body = f.child(str(index)).child("conv")
            hidden = x.shape[-1] * t
            y, j = x, 0
            if t != 1:
                y = _unit(body.child("0"), y, hidden, 1)
                j = 1
            y = _unit(body.child(str(j)), y, hidden, 3, stride, groups=hidden)
            y = batch_norm(body, str(j + 2), conv(body, str(j + 1), y, ch, 1))
            x = x + y if stride == 1 and x.shape[-1] == ch else y
            index += 1
    x = _unit(f.child(str(index)), x, 1280, 1)
    return dense(c.child("classifier"), "1", jnp.mean(x, (1, 2)), C.NUM_CLASSES)


FORWARD = {
    "lenet5": lenet5,
    "resnet18": resnet18,
    "mobilenet_v2": mobilenet_v2,
    "cifar_resnet18": cifar_resnet18,
    "resnet50": resnet50,
    "vgg11_bn": vgg11_bn,
}


def init(model: str, size: int, seed: int = 0) -> tuple[dict, dict]:
    """Params and state of ``model`` for ``size``×``size`` inputs (created as NumPy arrays while the
    forward pass is traced for shapes only)."""
    c = Ctx({}, {}, train=False, rng=np.random.default_rng(seed))
    jax.eval_shape(
        lambda x: FORWARD[model](c, x), jax.ShapeDtypeStruct((1, size, size, C.in_channels(model)), jnp.float32)
    )
    return jax.tree_util.tree_map(jnp.asarray, (c.params, c.state))


def apply(model: str, params: dict, state: dict, x: jax.Array, train: bool) -> tuple[jax.Array, dict]:
    """Logits and the new BatchNorm state."""
    c = Ctx(params, state, train)
    out = FORWARD[model](c, x)
    return out, c.new_state


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


def make_train_step(model: str):
    def loss_fn(params, state, x, y):
        logits, new_state = apply(model, params, state, x, train=True)
        return cross_entropy(logits, y), new_state

    def train_step(carry, x, y):
        params, state, buf = carry
        (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, x, y)
        buf = jax.tree_util.tree_map(lambda b, g: C.MOMENTUM * b + g, buf, grads)
        params = jax.tree_util.tree_map(lambda p, b: p - C.LR * b, params, buf)
        return (params, state, buf), loss

    return train_step


def build(model: str, batch: int, size: int, *, seed: int = 0) -> C.Impl:
    params, state = init(model, size, seed)
    buf = jax.tree_util.tree_map(jnp.zeros_like, params)
    x, y = C.example_batch(model, batch, size, seed)

    def predict(carry: Any, xb: jax.Array) -> jax.Array:
        return apply(model, carry[0], carry[1], xb, train=False)[0]

    snapshot = jax.tree_util.tree_map(np.array, (params, state))

    def logits(xb: np.ndarray) -> np.ndarray:
        return np.asarray(apply(model, *snapshot, jnp.asarray(xb), train=False)[0])

    return C.jax_impl(make_train_step(model), (params, state, buf), predict, x, y, logits)
