"""MobileNet v1 (Howard et al. 2017: depthwise-separable convs) and v2 (Sandler et al. 2018: inverted residuals,
linear bottlenecks, ReLU6), for 224×224 or 32×32 inputs.

v2 follows torchvision's ``mobilenet_v2`` key for key: ``features.0`` is a ``Conv2dNormActivation``
(``features.0.0.weight`` conv, ``features.0.1.*`` BatchNorm), ``features.1``…``features.17`` are inverted
residuals whose layers sit in ``conv`` (``features.1.conv.0.0.weight`` (depthwise unit),
``features.2.conv.0.0.weight`` (1×1 expansion unit), …, the last two being the linear 1×1 conv and its
BatchNorm), ``features.18`` is the 1×1 to 1280 unit, ``classifier.1`` the final linear layer.

v1 has no torchvision model; its keys follow the same conventions: ``features.0`` = 3×3/2 conv unit to 32
channels (``features.0.0.weight``, ``features.0.1.*``), ``features.1``…``features.13`` = depthwise-separable
blocks, each ``0`` = 3×3 depthwise unit and ``1`` = 1×1 pointwise unit (``features.5.0.0.weight``,
``features.5.1.1.running_var``), then global average pool and ``classifier.1`` (after ``classifier.0``,
dropout). Units are conv (no bias) → BatchNorm → ReLU.
"""

from __future__ import annotations

from jcnn import initializers as inits
from jcnn import layers as L
from jcnn.layers.base import Layer, constructor
from jcnn.models import _blocks as B

# (expansion t, channels c, repeats n, first stride s), as in the v2 paper's Table 2.
V2_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
"""MobileNet v2's inverted-residual stages: (expansion t, channels c, repeats n, first stride s)."""
# (pointwise channels, depthwise stride) of v1's 13 depthwise-separable blocks.
V1_SETTINGS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)
"""MobileNet v1's 13 depthwise-separable blocks: (pointwise channels, depthwise stride)."""


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` (at least ``divisor``), never below 90% of ``value``."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def _check_width(name: str, width_mult: float) -> None:
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or not width_mult > 0:
        raise ValueError(f"{name}: width_mult must be a float > 0, got {width_mult!r}")


def _head(num_classes: int, dropout: float) -> Layer:
    # torchvision: N(0, 0.01) weights, zero bias.
    return B.sequential(L.Dropout(dropout), L.Dense(num_classes, kernel_init=inits.normal(0.01), bias_init=inits.zeros))


def inverted_residual(in_features: int, out_features: int, stride: int, expand_ratio: int) -> Layer:
    """[1×1 expansion unit,] 3×3 depthwise unit (stride), linear 1×1 conv, BatchNorm; plus ``x`` when
    ``stride == 1`` and the channels agree. Params under ``conv`` (torchvision's ``InvertedResidual``)."""
    hidden = int(round(in_features * expand_ratio))
    units = [B.conv_norm_act(hidden, 1, act="relu6")] if expand_ratio != 1 else []
    units += [
        B.conv_norm_act(hidden, 3, stride=stride, groups=hidden, act="relu6"),
        B.conv(out_features, 1),
        B.batch_norm(),
    ]
    body = B.sequential(*units)
    if stride == 1 and in_features == out_features:
        return L.residual(body, L.Identity, block_name="conv", shortcut_name="identity")
    return L.serial(("conv", body))


@constructor
def mobilenet_v2(
    num_classes: int = 1000, in_channels: int = 3, *, width_mult: float = 1.0, dropout: float = 0.2
) -> Layer:
    """MobileNet v2: ``(N, H, W, in_channels)`` (224×224 or 32×32) → logits ``(N, num_classes)``.

    Channels are ``make_divisible(c·width_mult, 8)``; the last unit has ``make_divisible(1280·max(1,
    width_mult))``. Weights: convs kaiming-normal (fan_out), BN γ=1 β=0, classifier N(0, 0.01).
    """
    B.check_classes("mobilenet_v2", num_classes)
    _check_width("mobilenet_v2", width_mult)
    channels = make_divisible(32 * width_mult)
    last = make_divisible(1280 * max(1.0, width_mult))
    features = [B.conv_norm_act(channels, 3, stride=2, act="relu6")]
    for t, c, n, s in V2_SETTINGS:
        out = make_divisible(c * width_mult)
        for i in range(n):
            features.append(inverted_residual(channels, out, s if i == 0 else 1, t))
            channels = out
    features.append(B.conv_norm_act(last, 1, act="relu6"))
    model = L.serial(
        ("features", B.sequential(*features)), ("avgpool", L.GlobalAvgPool), ("classifier", _head(num_classes, dropout))
    )
    return B.expect_input(model, "mobilenet_v2", in_channels)


@constructor
def mobilenet_v1(
    num_classes: int = 1000, in_channels: int = 3, *, width_mult: float = 1.0, dropout: float = 0.2
) -> Layer:
    """MobileNet v1: ``(N, H, W, in_channels)`` (224×224 or 32×32) → logits ``(N, num_classes)``.

    A 3×3/2 conv unit to ``32·α`` channels, then 13 blocks of (3×3 depthwise unit, 1×1 pointwise unit),
    global average pool, dropout, dense; ``α = width_mult`` scales every width (``make_divisible(c·α, 8)``).
    """
    B.check_classes("mobilenet_v1", num_classes)
    _check_width("mobilenet_v1", width_mult)
    channels = make_divisible(32 * width_mult)
    features = [B.conv_norm_act(channels, 3, stride=2)]
    for c, s in V1_SETTINGS:
        out = make_divisible(c * width_mult)
        features.append(B.sequential(B.conv_norm_act(channels, 3, stride=s, groups=channels), B.conv_norm_act(out, 1)))
        channels = out
    model = L.serial(
        ("features", B.sequential(*features)), ("avgpool", L.GlobalAvgPool), ("classifier", _head(num_classes, dropout))
    )
    return B.expect_input(model, "mobilenet_v1", in_channels)
