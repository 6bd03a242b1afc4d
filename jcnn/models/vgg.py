"""VGG-11/13/16 (Simonyan & Zisserman 2015, configurations A, B, D), with or without BatchNorm, as torchvision.

``features``: 3×3 convs (padding 1) each followed by ``[BatchNorm,] ReLU`` and 2×2 max pools, numbered as
torchvision's ``nn.Sequential`` (``features.0.weight``, ``features.1.running_mean`` with BN…);
``avgpool``: adaptive average pool to 7×7 (so 32×32 inputs work too); ``classifier``: dense 4096, ReLU,
dropout, dense 4096, ReLU, dropout, dense ``num_classes`` (``classifier.0/3/6``). The flatten before
``classifier.0`` is channels-last here; :mod:`jcnn.interop.torch` reorders that weight.
"""

from __future__ import annotations

from jcnn import initializers as inits
from jcnn import layers as L
from jcnn.layers.base import Layer, constructor
from jcnn.models import _blocks as B

CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}
"""The VGG feature configurations: conv widths, ``"M"`` for a 2×2 max pool."""


def _vgg(
    name: str,
    cfg: str,
    batch_norm: bool,
    num_classes: int,
    in_channels: int,
    dropout: float,
    hidden_features: int,
    pool_size: int,
) -> Layer:
    B.check_classes(name, num_classes)
    for what, value in (("hidden_features", hidden_features), ("pool_size", pool_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}: {what} must be an int >= 1, got {value!r}")
    features: list[Layer] = []
    for v in CONFIGS[cfg]:
        if v == "M":
            features.append(L.MaxPool(2, 2))
            continue
        features.append(B.conv(int(v), 3, padding=1, use_bias=True))
        if batch_norm:
            features.append(B.batch_norm())
        features.append(L.Relu)

    def dense(n: int) -> Layer:  # torchvision: N(0, 0.01) weights, zero bias
        return L.Dense(n, kernel_init=inits.normal(0.01), bias_init=inits.zeros)

    classifier = B.sequential(
        dense(hidden_features),
        L.Relu,
        L.Dropout(dropout),
        dense(hidden_features),
        L.Relu,
        L.Dropout(dropout),
        dense(num_classes),
    )
    model = L.serial(
        ("features", B.sequential(*features)),
        ("avgpool", L.AdaptiveAvgPool((pool_size, pool_size))),
        ("flatten", L.Flatten),
        ("classifier", classifier),
    )
    return B.expect_input(model, name, in_channels)


@constructor
def vgg11(
    num_classes: int = 1000,
    in_channels: int = 3,
    *,
    dropout: float = 0.5,
    hidden_features: int = 4096,
    pool_size: int = 7,
) -> Layer:
    """VGG11: ``(N, H, W, in_channels)`` (224×224 or 32×32) → logits ``(N, num_classes)``.

    ``dropout`` is the classifier's drop rate; ``hidden_features`` (4096) and ``pool_size`` (7) shrink the
    classifier for small experiments, keeping every key."""
    return _vgg("vgg11", "vgg11", False, num_classes, in_channels, dropout, hidden_features, pool_size)


@constructor
def vgg11_bn(
    num_classes: int = 1000,
    in_channels: int = 3,
    *,
    dropout: float = 0.5,
    hidden_features: int = 4096,
    pool_size: int = 7,
) -> Layer:
    """VGG11 with BatchNorm: ``(N, H, W, in_channels)`` → logits ``(N, num_classes)``; options as :func:`vgg11`."""
    return _vgg("vgg11_bn", "vgg11", True, num_classes, in_channels, dropout, hidden_features, pool_size)


@constructor
def vgg13(
    num_classes: int = 1000,
    in_channels: int = 3,
    *,
    dropout: float = 0.5,
    hidden_features: int = 4096,
    pool_size: int = 7,
) -> Layer:
    """VGG13: ``(N, H, W, in_channels)`` → logits ``(N, num_classes)``; options as :func:`vgg11`."""
    return _vgg("vgg13", "vgg13", False, num_classes, in_channels, dropout, hidden_features, pool_size)


@constructor
def vgg13_bn(
    num_classes: int = 1000,
    in_channels: int = 3,
    *,
    dropout: float = 0.5,
    hidden_features: int = 4096,
    pool_size: int = 7,
) -> Layer:
    """VGG13 with BatchNorm: ``(N, H, W, in_channels)`` → logits ``(N, num_classes)``; options as :func:`vgg11`."""
    return _vgg("vgg13_bn", "vgg13", True, num_classes, in_channels, dropout, hidden_features, pool_size)


@constructor
def vgg16(
    num_classes: int = 1000,
    in_channels: int = 3,
    *,
    dropout: float = 0.5,
    hidden_features: int = 4096,
    pool_size: int = 7,
) -> Layer:
    """VGG16: ``(N, H, W, in_channels)`` → logits ``(N, num_classes)``; options as :func:`vgg11`."""
    return _vgg("vgg16", "vgg16", False, num_classes, in_channels, dropout, hidden_features, pool_size)


@constructor
def vgg16_bn(
    num_classes: int = 1000,
    in_channels: int = 3,
    *,
    dropout: float = 0.5,
    hidden_features: int = 4096,
    pool_size: int = 7,
) -> Layer:
    """VGG16 with BatchNorm: ``(N, H, W, in_channels)`` → logits ``(N, num_classes)``; options as :func:`vgg11`."""
    return _vgg("vgg16_bn", "vgg16", True, num_classes, in_channels, dropout, hidden_features, pool_size)
