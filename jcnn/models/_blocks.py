"""Building blocks shared by the zoo: torch-style sequential naming, conv-norm-activation units, a residual
block whose children sit side by side (torchvision's ``conv1``/``bn1``/``downsample`` naming) and an
input-channel check."""

from __future__ import annotations

from typing import Any, Sequence

import jax.numpy as jnp

from jcnn import initializers as inits
from jcnn import layers as L
from jcnn._types import Params, PRNGKey, ShapeTree, State
from jcnn.layers.base import Layer, check_shape, make_layer, split_key


def as_layer(layer: Any) -> Layer:
    """A ready ``Layer`` value as is, a constructor (``Relu``, ``Flatten``) called with no arguments."""
    return layer if isinstance(layer, Layer) else layer()


def sequential(*children: Any) -> Layer:
    """``torch.nn.Sequential``'s naming: children named ``"0"``, ``"1"``, … so params map to ``features.3.weight``."""
    return L.serial(*((str(i), as_layer(c)) for i, c in enumerate(children)))


def check_classes(name: str, num_classes: int) -> None:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"{name}: num_classes must be an int >= 1, got {num_classes!r}")


def activation(name: str, model: str) -> Layer:
    table = {"relu": "Relu", "relu6": "Relu6", "tanh": "Tanh"}
    if name not in table:
        raise ValueError(f"{model}: activation must be one of {sorted(table)}, got {name!r}")
    return as_layer(getattr(L, table[name]))


# torchvision's conv init: kaiming_normal_(mode="fan_out", nonlinearity="relu"), bias 0.
def conv_kernel_init() -> inits.Initializer:
    return inits.kaiming_normal(mode="fan_out", nonlinearity="relu")


def conv(features: int, kernel_size: int, *, stride: int = 1, padding: int = 0, groups: int = 1,
         use_bias: bool = False) -> Layer:
    """A 2-D ``Conv`` with torchvision's initialisation."""
    return L.Conv(features, (kernel_size, kernel_size), stride=stride, padding=padding, groups=groups,
                  use_bias=use_bias, kernel_init=conv_kernel_init(), bias_init=inits.zeros)


def batch_norm(*, zero_scale: bool = False) -> Layer:
    """``BatchNorm`` with torch's defaults (momentum 0.1, eps 1e-5); ``zero_scale`` starts γ at 0."""
    bn = as_layer(L.BatchNorm)
    if not zero_scale:
        return bn

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        out, params, state = bn.init(key, input_shape)
        return out, {**params, "scale": jnp.zeros_like(params["scale"])}, state

    return make_layer(bn.kind, init, bn.apply)


def conv_norm_act(features: int, kernel_size: int = 3, *, stride: int = 1, groups: int = 1,
                  act: str = "relu") -> Layer:
    """torchvision's ``Conv2dNormActivation``: ``[Conv (no bias, same padding), BatchNorm, act]`` as ``0, 1, 2``."""
    return sequential(conv(features, kernel_size, stride=stride, padding=(kernel_size - 1) // 2, groups=groups),
                      batch_norm(), activation(act, "conv_norm_act"))


def side_by_side_residual(body: Sequence[tuple[str, Layer]], shortcut: tuple[str, Layer] | None,
                          post: Layer) -> Layer:
    """``y = post(body(x) + shortcut(x))`` with every child's params at one level.

    ``body`` runs in order; ``shortcut`` is ``(name, layer)`` or ``None`` for the identity. Params are
    ``{body names…, shortcut name}``, e.g. ResNet's ``{"conv1", "bn1", …, "downsample"}``, which is what
    torchvision's ``BasicBlock``/``Bottleneck`` state_dict keys need (``layer1.0.conv1.weight``).
    """
    main = L.serial(*body)
    names = [n for n, _ in body]
    children = list(body) + ([shortcut] if shortcut is not None else [])

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        kb, ks, kp = split_key(key, 3)
        out, params, state = main.init(kb, input_shape)
        if shortcut is not None:
            out_s, params[shortcut[0]], state[shortcut[0]] = shortcut[1].init(ks, input_shape)
        else:
            out_s = tuple(input_shape)
        if tuple(out) != tuple(out_s):
            raise ValueError(
                f"residual block: the body's output shape {tuple(out)} differs from the shortcut's {tuple(out_s)} "
                f"for input {tuple(input_shape)}; give a projection shortcut"
            )
        out, _, _ = post.init(kp, out)
        return out, params, state

    def apply(params: Params, state: State, x: Any, *, train: bool,
              key: PRNGKey | None = None) -> tuple[Any, State]:
        kb, ks, kp = split_key(key, 3)
        y, body_state = main.apply({n: params[n] for n in names}, {n: state[n] for n in names}, x,
                                   train=train, key=kb)
        new_state = dict(body_state)
        if shortcut is not None:
            name, layer = shortcut
            s, new_state[name] = layer.apply(params[name], state[name], x, train=train, key=ks)
        else:
            s = x
        y, _ = post.apply({}, {}, y + s, train=train, key=kp)
        return y, new_state

    return make_layer("residual_block", init, apply, children=children)


def expect_input(model: Layer, name: str, in_channels: int) -> Layer:
    """Wrap ``model`` so that ``init`` checks for a ``(N, H, W, in_channels)`` input and names the model."""
    if not isinstance(in_channels, int) or isinstance(in_channels, bool) or in_channels < 1:
        raise ValueError(f"{name}: in_channels must be an int >= 1, got {in_channels!r}")

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        shape = check_shape(name, input_shape, ndim=4, what="(N, H, W, C)")
        if shape[-1] != in_channels:
            raise ValueError(
                f"{name}: expected {in_channels} input channels (in_channels={in_channels}), got shape {shape}; "
                "build the model with the matching in_channels"
            )
        return model.init(key, shape)

    # Same params as ``model``, so the same children: summaries and jcnn.interop walk through it.
    return make_layer(model.kind, init, model.apply, children=model.children)
