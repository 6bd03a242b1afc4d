"""The catalog of ``jcnn verify``: one :class:`Check` per op, layer, loss, optimizer and zoo model,
each running jcnn and torch on the same random inputs (channels-last ⇄ channels-first) and returning the
pairs to compare — the forward result and, where there is one, the gradient of ``Σ y·c`` for a random
cotangent ``c`` w.r.t. every input and parameter. Layers get torch's weights through
:mod:`jcnn.interop.torch`; optimizers run the same gradients for a few steps; models compare logits in
eval and train mode. :mod:`jcnn.interop.verify` runs them. This module imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F

import jcnn
from jcnn.interop.torch import export_state_dict, import_state_dict

__all__ = ["Check", "all_checks"]

F32 = 1e-5  # one op in float32: a few roundings, normwise
MODEL_TOL = 1e-4  # tens of float32 layers (issue 6)
GROUPS = ("ops", "layers", "losses", "optim", "models")
_Pairs = list[tuple[np.ndarray, np.ndarray]]
"""What a check's ``run`` returns: ``(jcnn value, torch value)`` pairs."""


class Check(NamedTuple):
    """One comparison: ``run(rng)`` returns ``[(jcnn value, torch value), …]`` as NumPy arrays."""

    component: str
    config: str
    run: Callable[[np.random.Generator], _Pairs]
    tolerance: float = F32
    slow: bool = False


# ------------------------------------------------------------------------------------------ layouts


def _cf(x: np.ndarray, kind: str) -> np.ndarray:
    """jcnn layout → torch layout: ``image`` (N, *S, C) → (N, C, *S); ``conv``/``tconv`` kernels; else as is."""
    n = x.ndim - 2
    if kind == "image":
        return np.moveaxis(x, -1, 1)
    if kind == "conv":  # np.transpose: NumPy's stubs type the method's result as Any under Python 3.10
        return np.transpose(x, (n + 1, n) + tuple(range(n)))
    if kind == "tconv":
        return np.transpose(x, (n, n + 1) + tuple(range(n)))
    return x


def _cl(t: Any, kind: str) -> np.ndarray:
    """torch layout → jcnn layout (inverse of :func:`_cf`)."""
    x = t.detach().numpy().copy() if hasattr(t, "detach") else np.asarray(t)
    n = x.ndim - 2
    if kind == "image":
        return np.moveaxis(x, 1, -1)
    if kind == "conv":
        return np.transpose(x, tuple(range(2, n + 2)) + (1, 0))
    if kind == "tconv":
        return np.transpose(x, tuple(range(2, n + 2)) + (0, 1))
    return x


def _c(x: np.ndarray) -> np.ndarray:
    """A C-contiguous copy that keeps 0-d arrays 0-d (``np.ascontiguousarray`` makes them 1-d)."""
    return np.array(x, order="C", copy=True)


def _function_pairs(
    jfn: Callable[..., Any],
    tfn: Callable[..., Any],
    args: Sequence[tuple[np.ndarray, str]],
    out_kind: str,
    rng: np.random.Generator,
) -> _Pairs:
    """Forward and the VJP of a random cotangent, w.r.t. every float input (kinds as :func:`_cf`)."""
    jx = [jnp.asarray(a) for a, _ in args]
    tx = [torch.tensor(_c(_cf(a, k)), requires_grad=a.dtype.kind == "f") for a, k in args]
    floats = [i for i, (a, _) in enumerate(args) if a.dtype.kind == "f"]

    def f(*fx: Any) -> Any:
        full = list(jx)
        for i, v in zip(floats, fx):
            full[i] = v
        return jfn(*full)

    # Under jit: the forward and the pullback compile once each (eagerly, every primitive compiles).
    y, vjp = jax.vjp(jax.jit(f), *[jx[i] for i in floats])
    ty = tfn(*tx)
    ct = rng.standard_normal(y.shape).astype(np.float32)
    grads = vjp(jnp.asarray(ct, y.dtype))
    ty.backward(torch.from_numpy(_c(_cf(ct, out_kind))))
    pairs = [(np.asarray(y), _cl(ty, out_kind))]
    pairs += [(np.asarray(g), _cl(tx[i].grad, args[i][1])) for g, i in zip(grads, floats)]
    return pairs


def _image(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------------------------------ ops


def _op(
    name: str,
    config: str,
    jfn: Callable[..., Any],
    tfn: Callable[..., Any],
    shapes: Sequence[tuple[tuple[int, ...], str]],
    out_kind: str = "image",
    tolerance: float = F32,
    scale: float = 1.0,
) -> Check:
    def run(rng: np.random.Generator) -> _Pairs:
        args = [(scale * _image(rng, *s), k) for s, k in shapes]
        return _function_pairs(jfn, tfn, args, out_kind, rng)

    return Check(f"ops.{name}", config, run, tolerance)


def _op_checks() -> list[Check]:
    o = jcnn.ops
    img, ker, tker, vec = "image", "conv", "tconv", "plain"
    checks = [
        _op(
            "conv",
            "2d 3x3 stride 2 pad 1 +bias",
            lambda x, k, b: o.conv(x, k, b, stride=2, padding=1),
            lambda x, k, b: F.conv2d(x, k, b, stride=2, padding=1),
            [((2, 9, 9, 4), img), ((3, 3, 4, 6), ker), ((6,), vec)],
        ),
        _op(
            "conv",
            "2d dilation 2 groups 2 pad (1,2)",
            lambda x, k: o.conv(x, k, dilation=2, groups=2, padding=(1, 2)),
            lambda x, k: F.conv2d(x, k, dilation=2, groups=2, padding=(1, 2)),
            [((2, 10, 9, 4), img), ((3, 3, 2, 6), ker)],
        ),
        _op(
            "conv",
            "2d depthwise reflect pad 1",
            lambda x, k: o.conv(x, k, groups=4, padding=1, padding_mode="reflect"),
            lambda x, k: F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), k, groups=4),
            [((2, 7, 7, 4), img), ((3, 3, 1, 4), ker)],
        ),
        _op(
            "conv",
            "1d k5 stride 3",
            lambda x, k: o.conv(x, k, stride=3),
            lambda x, k: F.conv1d(x, k, stride=3),
            [((2, 17, 3), img), ((5, 3, 4), ker)],
        ),
        _op(
            "conv",
            "3d k3 pad 1",
            lambda x, k: o.conv(x, k, padding=1),
            lambda x, k: F.conv3d(x, k, padding=1),
            [((1, 5, 6, 4, 2), img), ((3, 3, 3, 2, 3), ker)],
        ),
        _op(
            "conv",
            "2d im2col stride 2",
            lambda x, k: o.conv(x, k, stride=2, algorithm="im2col"),
            lambda x, k: F.conv2d(x, k, stride=2),
            [((2, 8, 8, 3), img), ((3, 3, 3, 5), ker)],
        ),
        _op(
            "conv_transpose",
            "2d stride 2 pad 1 out_pad 1 groups 2 +bias",
            lambda x, k, b: o.conv_transpose(x, k, b, stride=2, padding=1, output_padding=1, groups=2),
            lambda x, k, b: F.conv_transpose2d(x, k, b, stride=2, padding=1, output_padding=1, groups=2),
            [((2, 5, 5, 4), img), ((3, 3, 4, 3), tker), ((6,), vec)],
        ),
        _op(
            "conv_transpose",
            "1d k4 stride 3 dilation 2",
            lambda x, k: o.conv_transpose(x, k, stride=3, dilation=2),
            lambda x, k: F.conv_transpose1d(x, k, stride=3, dilation=2),
            [((2, 6, 3), img), ((4, 3, 2), tker)],
        ),
        _op(
            "max_pool",
            "2d 3x3 stride 2 pad 1",
            lambda x: o.max_pool(x, 3, 2, 1),
            lambda x: F.max_pool2d(x, 3, 2, 1),
            [((2, 9, 9, 3), img)],
        ),
        _op(
            "max_pool",
            "2d 2x2 ceil_mode dilation 2",
            lambda x: o.max_pool(x, 2, 2, dilation=2, ceil_mode=True),
            lambda x: F.max_pool2d(x, 2, 2, dilation=2, ceil_mode=True),
            [((2, 8, 9, 3), img)],
        ),
        _op(
            "avg_pool",
            "2d 3x3 stride 2 pad 1 exclude pad",
            lambda x: o.avg_pool(x, 3, 2, 1, count_include_pad=False),
            lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
            [((2, 8, 8, 3), img)],
        ),
        _op(
            "avg_pool",
            "2d 2x2 ceil_mode",
            lambda x: o.avg_pool(x, 2, 2, ceil_mode=True),
            lambda x: F.avg_pool2d(x, 2, 2, ceil_mode=True),
            [((2, 7, 7, 3), img)],
        ),
        _op(
            "avg_pool",
            "1d 3 stride 2",
            lambda x: o.avg_pool(x, 3, 2),
            lambda x: F.avg_pool1d(x, 3, 2),
            [((2, 11, 3), img)],
        ),
        _op(
            "lp_pool",
            "2d p=2 2x2",
            lambda x: o.lp_pool(x, 2.0, 2),
            lambda x: F.lp_pool2d(x, 2.0, 2),
            [((2, 8, 8, 3), img)],
        ),
        _op(
            "adaptive_avg_pool",
            "10x9 -> 4x3",
            lambda x: o.adaptive_avg_pool(x, (4, 3)),
            lambda x: F.adaptive_avg_pool2d(x, (4, 3)),
            [((2, 10, 9, 3), img)],
        ),
        _op(
            "adaptive_max_pool",
            "10x9 -> 4x3",
            lambda x: o.adaptive_max_pool(x, (4, 3)),
            lambda x: F.adaptive_max_pool2d(x, (4, 3)),
            [((2, 10, 9, 3), img)],
        ),
        _op("global_avg_pool", "2d", o.global_avg_pool, lambda x: x.mean((2, 3)), [((2, 5, 6, 3), img)], vec),
        _op("global_max_pool", "2d", o.global_max_pool, lambda x: x.amax((2, 3)), [((2, 5, 6, 3), img)], vec),
    ]
    acts: list[tuple[str, Callable[..., Any], Callable[..., Any]]] = [
        ("relu", o.relu, F.relu),
        ("relu6", o.relu6, F.relu6),
        ("sigmoid", o.sigmoid, torch.sigmoid),
        ("tanh", o.tanh, torch.tanh),
        ("silu", o.silu, F.silu),
        ("hard_tanh", o.hard_tanh, F.hardtanh),
        ("leaky_relu", lambda x: o.leaky_relu(x, 0.2), lambda x: F.leaky_relu(x, 0.2)),
        ("elu", lambda x: o.elu(x, 0.7), lambda x: F.elu(x, 0.7)),
        ("gelu", o.gelu, F.gelu),
        ("gelu", lambda x: o.gelu(x, approximate=True), lambda x: F.gelu(x, approximate="tanh")),
        ("softplus", lambda x: o.softplus(x, 2.0, 5.0), lambda x: F.softplus(x, 2.0, 5.0)),
        ("softmax", lambda x: o.softmax(x, axis=-1), lambda x: F.softmax(x, dim=-1)),
        ("log_softmax", lambda x: o.log_softmax(x, axis=-1), lambda x: F.log_softmax(x, dim=-1)),
    ]
    for i, (name, jf, tf) in enumerate(acts):
        config = "approximate tanh" if name == "gelu" and i == 9 else "(4, 7) x3"
        checks.append(_op(name, config, jf, tf, [((4, 7), "plain")], "plain", scale=3.0))
    checks.append(
        _op(
            "prelu",
            "per channel",
            lambda x, a: o.prelu(x, a),
            lambda x, a: F.prelu(x, a),
            [((2, 5, 5, 3), img), ((3,), vec)],
        )
    )
    return checks


# ------------------------------------------------------------------------------------------ layers


def _layer(
    name: str,
    config: str,
    layer: Any,
    module: torch.nn.Module,
    shape: tuple[int, ...],
    *,
    train: bool = False,
    tolerance: float = F32,
    kind: str = "image",
    out_kind: str | None = None,
) -> Check:
    """The layer with the module's weights (through ``import_state_dict``): output, input and parameter
    gradients, and the new state (running statistics) when training."""

    def run(rng: np.random.Generator) -> _Pairs:
        params, state = import_state_dict(layer, module.state_dict(), input_shape=shape)
        x = _image(rng, *shape)
        module.train(train)

        @jax.jit  # one compile for the forward, one for the pullback (eagerly, every primitive compiles)
        def f(p: Any, x: Any) -> Any:
            return layer.apply(p, state, x, train=train, key=jax.random.PRNGKey(0))

        y, vjp, new_state = jax.vjp(f, params, jnp.asarray(x), has_aux=True)
        out = out_kind or kind
        tx = torch.tensor(_c(_cf(x, kind)), requires_grad=True)
        module.zero_grad(set_to_none=True)
        ty = module(tx)
        ct = rng.standard_normal(y.shape).astype(np.float32)
        gp, gx = vjp(jnp.asarray(ct))
        ty.backward(torch.from_numpy(_c(_cf(ct, out))))
        pairs = [(np.asarray(y), _cl(ty, out)), (np.asarray(gx), _cl(tx.grad, kind))]
        grads = export_state_dict(layer, gp, state, input_shape=shape)
        pairs += [(grads[k], _grad(k, p)) for k, p in module.named_parameters()]
        if train and state:
            exported = export_state_dict(layer, params, new_state, input_shape=shape)
            pairs += [(exported[k], b.numpy()) for k, b in module.named_buffers() if "running" in k]
        return pairs

    return Check(f"layers.{name}", config, run, tolerance)


def _grad(name: str, p: torch.Tensor) -> np.ndarray:
    """The gradient torch accumulated in ``p`` (a check fails if there is none)."""
    if p.grad is None:
        raise ValueError(f"torch computed no gradient for {name}")
    return p.grad.numpy()


def _dropout_check() -> Check:
    def run(rng: np.random.Generator) -> _Pairs:
        rate, x = 0.3, np.abs(_image(rng, 64, 256)) + 0.5
        layer = jcnn.layers.Dropout(rate)
        y, _ = layer.apply({}, {}, jnp.asarray(x), train=True, key=jax.random.PRNGKey(0))
        y = np.asarray(y)
        kept = y != 0
        ty = F.dropout(torch.from_numpy(x), rate, training=True).numpy()
        ev, _ = layer.apply({}, {}, jnp.asarray(x), train=False)
        # the law torch uses: kept entries are x/(1 − p); the drop fraction is p within 4 standard errors
        se = math.sqrt(rate * (1 - rate) / x.size)
        return [
            (y[kept], x[kept] / (1 - rate)),
            (np.asarray(ev), x),
            (np.array([abs((1 - kept.mean()) - rate) <= 4 * se]), np.array([True])),
            (np.array([abs((ty == 0).mean() - rate) <= 4 * se]), np.array([True])),
        ]

    return Check("layers.Dropout", "rate=0.3 train law and eval identity", run)


def _layer_checks() -> list[Check]:
    L, nn = jcnn.layers, torch.nn
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(4)
    assert bn.bias is not None and bn.running_mean is not None and bn.running_var is not None  # affine, tracked
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5), bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.5, 2.0)
    return [
        _layer(
            "Conv",
            "2d 3x3 stride 2 pad 1",
            L.Conv(5, (3, 3), stride=2, padding=1),
            nn.Conv2d(3, 5, 3, 2, 1),
            (2, 8, 8, 3),
        ),
        _layer(
            "Conv",
            "1d k3 groups 2 no bias",
            L.Conv(4, (3,), groups=2, use_bias=False),
            nn.Conv1d(4, 4, 3, groups=2, bias=False),
            (2, 9, 4),
        ),
        _layer(
            "ConvTranspose",
            "2d stride 2 pad 1 out_pad 1",
            L.ConvTranspose(5, (3, 3), stride=2, padding=1, output_padding=1),
            nn.ConvTranspose2d(3, 5, 3, 2, 1, 1),
            (2, 5, 5, 3),
        ),
        _layer("Dense", "(2, 3, 7) -> 5", L.Dense(5), nn.Linear(7, 5), (2, 3, 7), kind="plain"),
        _layer("BatchNorm", "train, momentum 0.1", L.BatchNorm(), bn, (4, 5, 5, 4), train=True),
        _layer("BatchNorm", "eval, running stats", L.BatchNorm(), bn, (4, 5, 5, 4)),
        _layer("LayerNorm", "over (H, W, C)", L.LayerNorm(), nn.LayerNorm([3, 4, 5]), (2, 4, 5, 3)),
        _layer("GroupNorm", "2 groups of 3", L.GroupNorm(2), nn.GroupNorm(2, 6), (2, 4, 4, 6)),
        _layer(
            "InstanceNorm",
            "affine, train",
            L.InstanceNorm(affine=True, track_running_stats=True),
            nn.InstanceNorm2d(3, affine=True, track_running_stats=True),
            (2, 5, 5, 3),
            train=True,
        ),
        _layer("LocalResponseNorm", "size 3", L.LocalResponseNorm(3), nn.LocalResponseNorm(3), (2, 4, 4, 6)),
        _layer("PRelu", "per channel", L.PRelu(3), nn.PReLU(3), (2, 4, 4, 3)),
        _layer("MaxPool", "3x3 stride 2", L.MaxPool(3, 2), nn.MaxPool2d(3, 2), (2, 9, 9, 3)),
        _layer("AvgPool", "2x2", L.AvgPool(2), nn.AvgPool2d(2), (2, 8, 8, 3)),
        _layer("AdaptiveAvgPool", "-> 3x3", L.AdaptiveAvgPool((3, 3)), nn.AdaptiveAvgPool2d((3, 3)), (2, 7, 8, 3)),
        _layer("AdaptiveMaxPool", "-> 3x2", L.AdaptiveMaxPool((3, 2)), nn.AdaptiveMaxPool2d((3, 2)), (2, 7, 8, 3)),
        _layer("LPPool", "p=2 2x2", L.LPPool(2.0, 2), nn.LPPool2d(2.0, 2), (2, 8, 8, 3)),
        _layer(
            "GlobalAvgPool",
            "2d",
            L.GlobalAvgPool,
            nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
            (2, 5, 6, 3),
            out_kind="plain",
        ),
        _layer(
            "GlobalMaxPool",
            "2d",
            L.GlobalMaxPool,
            nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten()),
            (2, 5, 6, 3),
            out_kind="plain",
        ),
        _layer("Relu", "2d", L.Relu, nn.ReLU(), (2, 4, 4, 3)),
        _layer("Tanh", "2d", L.Tanh, nn.Tanh(), (2, 4, 4, 3)),
        _layer("Sigmoid", "2d", L.Sigmoid, nn.Sigmoid(), (2, 4, 4, 3)),
        _layer("LeakyRelu", "slope 0.1", L.LeakyRelu(0.1), nn.LeakyReLU(0.1), (2, 4, 4, 3)),
        _layer("Softmax", "over channels", L.Softmax(-1), nn.Softmax(1), (2, 4, 4, 3)),
        # no conv bias: before a train-mode BatchNorm its gradient is exactly 0, rounding noise on both sides
        _layer(
            "serial",
            "Conv-BatchNorm-Relu-MaxPool, train",
            L.serial(
                ("0", L.Conv(4, 3, padding=1, use_bias=False)), ("1", L.BatchNorm()), ("2", L.Relu), ("3", L.MaxPool(2))
            ),
            nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2)),
            (2, 6, 6, 3),
            train=True,
        ),
        _dropout_check(),
    ]


# ------------------------------------------------------------------------------------------ losses


def _loss(
    name: str,
    config: str,
    jfn: Callable[..., Any],
    tfn: Callable[..., Any],
    make: Callable[[np.random.Generator], list[np.ndarray]],
) -> Check:
    def run(rng: np.random.Generator) -> _Pairs:
        return _function_pairs(jfn, tfn, [(a, "plain") for a in make(rng)], "plain", rng)

    return Check(f"losses.{name}", config, run)


def _loss_checks() -> list[Check]:
    lo = jcnn.losses

    def logits_labels(rng: np.random.Generator) -> list[np.ndarray]:
        return [3 * _image(rng, 8, 5), rng.integers(0, 5, 8)]

    def probs(rng: np.random.Generator) -> list[np.ndarray]:
        return [3 * _image(rng, 8, 5), np.asarray(jax.nn.softmax(_image(rng, 8, 5)))]

    def pair(rng: np.random.Generator) -> list[np.ndarray]:
        return [2 * _image(rng, 6, 4), 2 * _image(rng, 6, 4)]

    def unit(rng: np.random.Generator) -> list[np.ndarray]:
        return [rng.uniform(0.05, 0.95, (6, 4)).astype(np.float32), rng.uniform(0, 1, (6, 4)).astype(np.float32)]

    def logits01(rng: np.random.Generator) -> list[np.ndarray]:
        return [3 * _image(rng, 6, 4), rng.uniform(0, 1, (6, 4)).astype(np.float32)]

    def kl(rng: np.random.Generator) -> list[np.ndarray]:
        return [np.asarray(jax.nn.log_softmax(_image(rng, 6, 4))), np.asarray(jax.nn.softmax(_image(rng, 6, 4)))]

    return [
        _loss("softmax_cross_entropy", "int labels", lo.softmax_cross_entropy, F.cross_entropy, logits_labels),
        _loss(
            "softmax_cross_entropy",
            "label_smoothing 0.1, sum",
            lambda x, y: lo.softmax_cross_entropy(x, y, label_smoothing=0.1, reduction="sum"),
            lambda x, y: F.cross_entropy(x, y, label_smoothing=0.1, reduction="sum"),
            logits_labels,
        ),
        _loss("softmax_cross_entropy", "probability labels", lo.softmax_cross_entropy, F.cross_entropy, probs),
        _loss(
            "nll",
            "log-probabilities",
            lambda x, y: lo.nll(jax.nn.log_softmax(x), y),
            lambda x, y: F.nll_loss(F.log_softmax(x, -1), y),
            logits_labels,
        ),
        _loss("binary_cross_entropy", "mean", lo.binary_cross_entropy, F.binary_cross_entropy, unit),
        _loss(
            "binary_cross_entropy_with_logits",
            "mean",
            lo.binary_cross_entropy_with_logits,
            F.binary_cross_entropy_with_logits,
            logits01,
        ),
        _loss("mse", "mean", lo.mse, F.mse_loss, pair),
        _loss(
            "mae",
            "sum",
            lambda a, b: lo.mae(a, b, reduction="sum"),
            lambda a, b: F.l1_loss(a, b, reduction="sum"),
            pair,
        ),
        _loss(
            "huber",
            "delta 0.5",
            lambda a, b: lo.huber(a, b, delta=0.5),
            lambda a, b: F.huber_loss(a, b, delta=0.5),
            pair,
        ),
        _loss(
            "smooth_l1",
            "beta 0.5",
            lambda a, b: lo.smooth_l1(a, b, beta=0.5),
            lambda a, b: F.smooth_l1_loss(a, b, beta=0.5),
            pair,
        ),
        _loss(
            "kl_div",
            "batchmean",
            lambda a, b: lo.kl_div(a, b, reduction="batchmean"),
            lambda a, b: F.kl_div(a, b, reduction="batchmean"),
            kl,
        ),
        _loss("hinge", "multi-class", lo.hinge, F.multi_margin_loss, logits_labels),
    ]


# ------------------------------------------------------------------------------------------ optimizers


def _optim(
    name: str,
    config: str,
    make: Callable[[], Any],
    torch_make: Callable[[list[torch.nn.Parameter]], Any],
    steps: int = 6,
) -> Check:
    """``steps`` updates from the same gradients; compares the params after every step."""

    def run(rng: np.random.Generator) -> _Pairs:
        params = {"b": _image(rng, 4), "w": _image(rng, 3, 4)}
        grads = [{k: _image(rng, *v.shape) for k, v in params.items()} for _ in range(steps)]
        opt = make()
        p = {k: jnp.asarray(v) for k, v in params.items()}
        state = opt.init(p)
        update = jax.jit(opt.update)  # one compile for the six steps
        tp = [torch.nn.Parameter(torch.from_numpy(params[k].copy())) for k in ("b", "w")]
        topt = torch_make(tp)
        pairs: _Pairs = []
        for g in grads:
            updates, state = update({k: jnp.asarray(v) for k, v in g.items()}, state, p)
            p = jcnn.optim.apply_updates(p, updates)
            for t, k in zip(tp, ("b", "w")):
                t.grad = torch.from_numpy(g[k].copy())
            topt.step()
            pairs += [(np.asarray(p[k]), t.detach().numpy().copy()) for t, k in zip(tp, ("b", "w"))]
        return pairs

    return Check(f"optim.{name}", config, run)


def _optim_checks() -> list[Check]:
    o, to = jcnn.optim, torch.optim
    checks = [
        _optim("sgd", "lr 0.1", lambda: o.sgd(0.1), lambda p: to.SGD(p, 0.1)),
        _optim(
            "sgd",
            "momentum 0.9 nesterov wd 1e-2",
            lambda: o.sgd(0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
            lambda p: to.SGD(p, 0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
        ),
        _optim(
            "sgd",
            "momentum 0.9 dampening 0.5",
            lambda: o.sgd(0.1, momentum=0.9, dampening=0.5),
            lambda p: to.SGD(p, 0.1, momentum=0.9, dampening=0.5),
        ),
        _optim(
            "adagrad",
            "lr_decay 0.1 wd 0.1",
            lambda: o.adagrad(0.1, lr_decay=0.1, weight_decay=0.1),
            lambda p: to.Adagrad(p, 0.1, lr_decay=0.1, weight_decay=0.1),
        ),
        _optim(
            "rmsprop",
            "centered momentum 0.5",
            lambda: o.rmsprop(0.01, centered=True, momentum=0.5),
            lambda p: to.RMSprop(p, 0.01, centered=True, momentum=0.5),
        ),
        _optim("adam", "defaults", lambda: o.adam(0.01), lambda p: to.Adam(p, 0.01)),
        _optim(
            "adam",
            "amsgrad wd 0.1",
            lambda: o.adam(0.01, amsgrad=True, weight_decay=0.1),
            lambda p: to.Adam(p, 0.01, amsgrad=True, weight_decay=0.1),
        ),
        _optim(
            "adamw", "wd 0.1", lambda: o.adamw(0.01, weight_decay=0.1), lambda p: to.AdamW(p, 0.01, weight_decay=0.1)
        ),
        _optim("adadelta", "rho 0.9", lambda: o.adadelta(1.0), lambda p: to.Adadelta(p, 1.0)),
        _optim("adamax", "defaults", lambda: o.adamax(0.01), lambda p: to.Adamax(p, 0.01)),
        _optim("nadam", "defaults", lambda: o.nadam(0.01), lambda p: to.NAdam(p, 0.01)),
    ]
    s, sched = o.schedules, to.lr_scheduler

    def schedule(name: str, config: str, ours: Callable[[], Any], theirs: Callable[[Any], Any], n: int = 12) -> Check:
        def run(rng: np.random.Generator) -> _Pairs:
            opt = to.SGD([torch.nn.Parameter(torch.zeros(1))], 0.5)
            lr_t = theirs(opt)
            expected = []
            for _ in range(n):
                expected.append(opt.param_groups[0]["lr"])
                opt.step(), lr_t.step()
            f = ours()
            return [(np.array([float(f(i)) for i in range(n)]), np.array(expected))]

        return Check(f"optim.schedules.{name}", config, run)

    checks += [
        schedule(
            "step_decay", "step 3 gamma 0.5", lambda: s.step_decay(0.5, 3, 0.5), lambda opt: sched.StepLR(opt, 3, 0.5)
        ),
        schedule(
            "multi_step",
            "milestones 2,5",
            lambda: s.multi_step(0.5, [2, 5], 0.1),
            lambda opt: sched.MultiStepLR(opt, [2, 5], 0.1),
        ),
        schedule(
            "exponential_decay",
            "gamma 0.8",
            lambda: s.exponential_decay(0.5, 0.8),
            lambda opt: sched.ExponentialLR(opt, 0.8),
        ),
        schedule(
            "cosine_decay",
            "10 steps alpha 0.1",
            lambda: s.cosine_decay(0.5, 10, 0.1),
            lambda opt: sched.CosineAnnealingLR(opt, 10, 0.05),
            n=11,
        ),
    ]
    return checks


# ------------------------------------------------------------------------------------------ models

# (name, jcnn keywords, twin keywords, slow[, input size]). VGG classifiers are narrowed to 64 hidden units
# (every key stays). MobileNets and the deeper ResNets run at 64×64: at 32×32 their last stages are 1×1 and
# train-mode BatchNorm over 4 values is ill-conditioned in float32 (torch's own float32 logits are 3e-4
# off its float64 ones for MobileNet v2).
_ZooRow = tuple[str, dict[str, Any], dict[str, Any], bool] | tuple[str, dict[str, Any], dict[str, Any], bool, int]
_ZOO: list[_ZooRow] = [
    ("lenet5", {}, {}, False),
    ("lenet5", {"activation": "tanh", "pool": "avg"}, {"activation": "tanh", "pool": "avg"}, False),
    ("resnet18", {}, {}, False),
    ("mobilenet_v1", {"dropout": 0.0}, {"dropout": 0.0}, False, 64),
    ("mobilenet_v2", {"dropout": 0.0}, {"dropout": 0.0}, False, 64),
    ("vgg11_bn", {"hidden_features": 64, "dropout": 0.0}, {"hidden": 64, "dropout": 0.0}, False),
    ("vgg11", {"hidden_features": 64, "dropout": 0.0}, {"hidden": 64, "dropout": 0.0}, True),
    ("vgg13", {"hidden_features": 64, "dropout": 0.0}, {"hidden": 64, "dropout": 0.0}, True),
    ("vgg13_bn", {"hidden_features": 64, "dropout": 0.0}, {"hidden": 64, "dropout": 0.0}, True),
    ("vgg16", {"hidden_features": 64, "dropout": 0.0}, {"hidden": 64, "dropout": 0.0}, True),
    ("vgg16_bn", {"hidden_features": 64, "dropout": 0.0}, {"hidden": 64, "dropout": 0.0}, True),
    ("resnet34", {}, {}, True, 64),
    ("resnet50", {}, {}, True, 64),
]


def _modern_zoo() -> list[_ZooRow]:
    """The modern models (issue 12), full size at 64×64 with dropout and stochastic depth off; slow (each
    compiles for 10-60 s on CPU): ``jcnn verify --full`` or ``--only models.convnext_tiny``."""
    from jcnn.models import MODELS

    out: list[_ZooRow] = []
    for name in MODELS:
        if name.startswith(("mobilenet_v3", "efficientnet", "convnext", "regnet")):
            kw: dict[str, Any] = {"dropout": 0.0} if name.startswith(("mobilenet_v3", "efficientnet")) else {}
            if name.startswith(("efficientnet", "convnext")):
                kw["stochastic_depth_prob"] = 0.0
            out.append((name, kw, kw, True, 64))
    return out


def _model_check(name: str, kw: dict[str, Any], twin_kw: dict[str, Any], slow: bool, hw: int = 32) -> Check:
    def run(rng: np.random.Generator) -> _Pairs:
        from jcnn.interop.torch_twins import twin
        from jcnn.models import MODELS, get_model

        in_channels = MODELS[name].in_channels
        torch.manual_seed(int(rng.integers(1 << 30)))
        net = twin(name, 10, in_channels, **twin_kw)
        with torch.no_grad():  # non-trivial running statistics for eval mode
            for m in net.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    assert m.running_mean is not None and m.running_var is not None  # the twins track them
                    m.running_mean.normal_(0, 0.1), m.running_var.uniform_(0.5, 1.5), m.weight.uniform_(0.5, 1.5)
        shape = (4, hw, hw, in_channels)
        params, state = import_state_dict(name, net.state_dict(), input_shape=(1, *shape[1:]), **kw)
        model = get_model(name, num_classes=10, in_channels=in_channels, **kw)
        x = _image(rng, *shape)
        pairs: _Pairs = []
        for train in (False, True):
            y, _ = jax.jit(lambda p, s, x: model.apply(p, s, x, train=train))(params, state, x)  # noqa: B023 (called in this iteration)
            net.train(train)
            with torch.no_grad():
                pairs.append((np.asarray(y), net(torch.from_numpy(_c(_cf(x, "image")))).numpy()))
        return pairs

    config = f"{hw}x{hw}, eval and train logits" + "".join(f", {k}={v}" for k, v in kw.items())
    return Check(f"models.{name}", config, run, MODEL_TOL, slow)


def all_checks() -> list[Check]:
    """Every check, in the table's order (ops, layers, losses, optimizers, models)."""
    return (
        _op_checks()
        + _layer_checks()
        + _loss_checks()
        + _optim_checks()
        + [_model_check(*z) for z in _ZOO + _modern_zoo()]
    )
