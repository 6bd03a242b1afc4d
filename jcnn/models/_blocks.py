"""Building blocks shared by the zoo: torch-style sequential naming, conv-norm-activation units, a residual
block whose children sit side by side (torchvision's ``conv1``/``bn1``/``downsample`` naming, declared as
``residual`` with an inline body) and the model root's input-channel check."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jcnn import initializers as inits
from jcnn import layers as L
from jcnn._types import ShapeTree
from jcnn.layers.base import Layer, check_shape, wrapper


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


def conv(
    features: int, kernel_size: int, *, stride: int = 1, padding: int = 0, groups: int = 1, use_bias: bool = False
) -> Layer:
    """A 2-D ``Conv`` with torchvision's initialisation."""
    return L.Conv(
        features,
        (kernel_size, kernel_size),
        stride=stride,
        padding=padding,
        groups=groups,
        use_bias=use_bias,
        kernel_init=conv_kernel_init(),
        bias_init=inits.zeros,
    )


def batch_norm(*, zero_scale: bool = False) -> Layer:
    """``BatchNorm`` with torch's defaults (momentum 0.1, eps 1e-5); ``zero_scale`` starts γ at 0."""
    return L.BatchNorm(scale_init=inits.zeros) if zero_scale else as_layer(L.BatchNorm)


def conv_norm_act(features: int, kernel_size: int = 3, *, stride: int = 1, groups: int = 1, act: str = "relu") -> Layer:
    """torchvision's ``Conv2dNormActivation``: ``[Conv (no bias, same padding), BatchNorm, act]`` as ``0, 1, 2``."""
    return sequential(
        conv(features, kernel_size, stride=stride, padding=(kernel_size - 1) // 2, groups=groups),
        batch_norm(),
        activation(act, "conv_norm_act"),
    )


def flat_residual(body: Sequence[tuple[str, Layer]], shortcut: tuple[str, Layer] | None, post: Layer) -> Layer:
    """``y = post(body(x) + shortcut(x))`` with every child's params at one level: ``residual`` with the
    body inline, e.g. ResNet's ``{"conv1", "bn1", …, "downsample"}``, which is what torchvision's
    ``BasicBlock``/``Bottleneck`` state_dict keys need (``layer1.0.conv1.weight``). ``shortcut`` is
    ``(name, layer)`` or ``None`` for the identity."""
    if shortcut is None:
        return L.residual(L.serial(*body), L.Identity, block_name=None, shortcut_name=None, post=post)
    return L.residual(L.serial(*body), shortcut[1], block_name=None, shortcut_name=shortcut[0], post=post)


def expect_input(model: Layer, name: str, in_channels: int) -> Layer:
    """Wrap ``model`` so that ``init`` and the shape rules check for a ``(N, H, W, in_channels)`` input and
    name the model; params and state are ``model``'s."""
    if not isinstance(in_channels, int) or isinstance(in_channels, bool) or in_channels < 1:
        raise ValueError(f"{name}: in_channels must be an int >= 1, got {in_channels!r}")

    def check(input_shape: ShapeTree) -> ShapeTree:
        shape = check_shape(name, input_shape, ndim=4, what="(N, H, W, C)")
        if shape[-1] != in_channels:
            raise ValueError(
                f"{name}: expected {in_channels} input channels (in_channels={in_channels}), got shape {shape}; "
                "build the model with the matching in_channels"
            )
        return shape

    return wrapper(name, model, check=check)
