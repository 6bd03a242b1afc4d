"""ResNet-18/34 (basic blocks) and ResNet-50 (bottlenecks, stride on the 3×3: "v1.5") as torchvision.

Stem ``conv1`` 7×7/2, ``bn1``, ReLU, ``maxpool`` 3×3/2; ``layer1``…``layer4`` of blocks (64, 128, 256, 512
planes; stride 2 from ``layer2`` on), each block's params side by side as torchvision's (``layer1.0.conv1``,
``layer1.0.bn1``, …, ``layer2.0.downsample.0``/``.1`` for the 1×1 projection); global average pool; ``fc``.
``zero_init_residual`` starts the last BatchNorm γ of every block at 0, so each block begins as the identity.
"""

from __future__ import annotations

from jcnn import layers as L
from jcnn.layers.base import Layer, constructor
from jcnn.models import _blocks as B


def _downsample(features: int, stride: int) -> Layer:
    return B.sequential(B.conv(features, 1, stride=stride), B.batch_norm())


def basic_block(planes: int, stride: int, downsample: bool, zero_init_residual: bool) -> Layer:
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`` with 3×3 convs; output ``planes`` channels."""
    body = [
        ("conv1", B.conv(planes, 3, stride=stride, padding=1)),
        ("bn1", B.batch_norm()),
        ("relu", L.Relu),
        ("conv2", B.conv(planes, 3, padding=1)),
        ("bn2", B.batch_norm(zero_scale=zero_init_residual)),
    ]
    shortcut = ("downsample", _downsample(planes, stride)) if downsample else None
    return B.flat_residual(body, shortcut, L.Relu)


def bottleneck(planes: int, stride: int, downsample: bool, zero_init_residual: bool) -> Layer:
    """1×1 → ``planes``, 3×3 (stride) → ``planes``, 1×1 → ``4·planes``, each with BN, plus the shortcut, ReLU."""
    body = [
        ("conv1", B.conv(planes, 1)),
        ("bn1", B.batch_norm()),
        ("relu1", L.Relu),
        ("conv2", B.conv(planes, 3, stride=stride, padding=1)),
        ("bn2", B.batch_norm()),
        ("relu2", L.Relu),
        ("conv3", B.conv(planes * 4, 1)),
        ("bn3", B.batch_norm(zero_scale=zero_init_residual)),
    ]
    shortcut = ("downsample", _downsample(planes * 4, stride)) if downsample else None
    return B.flat_residual(body, shortcut, L.Relu)


def _resnet(
    name: str,
    block: str,
    depths: tuple[int, int, int, int],
    num_classes: int,
    in_channels: int,
    zero_init_residual: bool,
) -> Layer:
    B.check_classes(name, num_classes)
    make, expansion = (basic_block, 1) if block == "basic" else (bottleneck, 4)
    stages = []
    channels = 64
    for index, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths)):
        stride = 1 if index == 0 else 2
        blocks = []
        for i in range(depth):
            s = stride if i == 0 else 1
            blocks.append(make(planes, s, s != 1 or channels != planes * expansion, zero_init_residual))
            channels = planes * expansion
        stages.append((f"layer{index + 1}", B.sequential(*blocks)))
    model = L.serial(
        ("conv1", B.conv(64, 7, stride=2, padding=3)),
        ("bn1", B.batch_norm()),
        ("relu", L.Relu),
        ("maxpool", L.MaxPool(3, 2, 1)),
        *stages,
        ("avgpool", L.GlobalAvgPool),
        ("fc", L.Dense(num_classes)),
    )
    return B.expect_input(model, name, in_channels)


@constructor
def resnet18(num_classes: int = 1000, in_channels: int = 3, *, zero_init_residual: bool = False) -> Layer:
    """ResNet-18 (basic blocks 2-2-2-2): ``(N, H, W, in_channels)`` (224×224 or 32×32) → ``(N, num_classes)``."""
    return _resnet("resnet18", "basic", (2, 2, 2, 2), num_classes, in_channels, zero_init_residual)


@constructor
def resnet34(num_classes: int = 1000, in_channels: int = 3, *, zero_init_residual: bool = False) -> Layer:
    """ResNet-34 (basic blocks 3-4-6-3): ``(N, H, W, in_channels)`` (224×224 or 32×32) → ``(N, num_classes)``."""
    return _resnet("resnet34", "basic", (3, 4, 6, 3), num_classes, in_channels, zero_init_residual)


@constructor
def resnet50(num_classes: int = 1000, in_channels: int = 3, *, zero_init_residual: bool = False) -> Layer:
    """ResNet-50 (bottlenecks 3-4-6-3, ×4 expansion): ``(N, H, W, in_channels)`` → ``(N, num_classes)``."""
    return _resnet("resnet50", "bottleneck", (3, 4, 6, 3), num_classes, in_channels, zero_init_residual)
