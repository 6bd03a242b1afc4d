"""PyTorch twins of the zoo (``torch.nn``, channels-first), with torchvision's architectures and key names,
for ``jcnn verify`` and for anyone who needs the torch side of a zoo model without torchvision.

This module imports torch at the top: only `jcnn verify` and the ledger import it (``import jcnn`` never does).
``twin(name, num_classes, in_channels, **kw)`` builds one; ``kw`` mirrors the zoo's options (VGG's
``hidden``/``pool_size``/``dropout``, MobileNet's ``width_mult``/``dropout``, LeNet's ``activation``/``pool``).
The modern CNNs' twins are in :mod:`jcnn.interop.torch_twins_modern`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from jcnn.interop.torch_twins_modern import MODERN_TWINS

# Each forward annotates what a submodule returns: nn.Module.__call__ is typed as returning Any.


def lenet5(num_classes: int = 10, in_channels: int = 1, activation: str = "relu", pool: str = "max") -> nn.Module:
    """The torch twin of :func:`jcnn.models.lenet5` (NCHW, the same key names)."""
    act = nn.ReLU if activation == "relu" else nn.Tanh
    pool_cls = nn.MaxPool2d if pool == "max" else nn.AvgPool2d

    class LeNet5(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, 6, 5), act(), pool_cls(2, 2), nn.Conv2d(6, 16, 5), act(), pool_cls(2, 2)
            )
            self.classifier = nn.Sequential(
                nn.Linear(400, 120), act(), nn.Linear(120, 84), act(), nn.Linear(84, num_classes)
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y: torch.Tensor = self.classifier(torch.flatten(self.features(x), 1))
            return y

    return LeNet5()


VGG_CFGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}
"""torchvision's VGG feature configurations: conv widths, ``"M"`` for a 2×2 max pool."""


class VGG(nn.Module):
    """torchvision's VGG (``cfg`` a key of :data:`VGG_CFGS`), with the zoo's options."""

    def __init__(
        self,
        cfg: str,
        batch_norm: bool,
        num_classes: int,
        in_channels: int,
        hidden: int = 4096,
        pool_size: int = 7,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for v in VGG_CFGS[cfg]:
            if isinstance(v, str):  # "M"
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers.append(nn.Conv2d(c, v, 3, padding=1))
                layers += [nn.BatchNorm2d(v), nn.ReLU(True)] if batch_norm else [nn.ReLU(True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((pool_size, pool_size))
        self.classifier = nn.Sequential(
            nn.Linear(512 * pool_size * pool_size, hidden),
            nn.ReLU(True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))
        return y


class BasicBlock(nn.Module):
    """torchvision's ResNet basic block: two 3×3 convs and a shortcut."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        y: torch.Tensor = self.relu(self.bn2(self.conv2(out)) + identity)
        return y


class Bottleneck(nn.Module):
    """torchvision's ResNet bottleneck: 1×1, 3×3, 1×1 convs (×4 expansion) and a shortcut."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        y: torch.Tensor = self.relu(self.bn3(self.conv3(out)) + identity)
        return y


class ResNet(nn.Module):
    """torchvision's ResNet with ``block`` repeated ``layers`` times per stage."""

    def __init__(
        self, block: type[BasicBlock] | type[Bottleneck], layers: list[int], num_classes: int, in_channels: int
    ) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool: nn.Module = nn.MaxPool2d(3, 2, 1)  # cifar_resnet18 makes it an Identity
        self.layer1 = self._make_layer(block, 64, layers[0], 1)
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(
        self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, 1, None) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        y: torch.Tensor = self.fc(torch.flatten(self.avgpool(x), 1))
        return y


def conv_bn_act(
    cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: Callable[..., nn.Module] = nn.ReLU6
) -> nn.Sequential:
    """torchvision's Conv2dNormActivation."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        act(inplace=True),
    )


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: ``v`` rounded to a multiple of ``divisor``, at least 90 % of ``v``."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class InvertedResidual(nn.Module):
    """torchvision's MobileNet v2 inverted residual: expand 1×1, depthwise 3×3, project 1×1."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = [conv_bn_act(inp, hidden, 1)] if expand_ratio != 1 else []
        layers += [
            conv_bn_act(hidden, hidden, 3, stride, hidden),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.conv(x)
        return x + y if self.use_res_connect else y


class MobileNetV2(nn.Module):
    """torchvision's MobileNet v2."""

    def __init__(self, num_classes: int, in_channels: int, width_mult: float = 1.0, dropout: float = 0.2) -> None:
        super().__init__()
        settings = [
            [1, 16, 1, 1],
            [6, 24, 2, 2],
            [6, 32, 3, 2],
            [6, 64, 4, 2],
            [6, 96, 3, 1],
            [6, 160, 3, 2],
            [6, 320, 1, 1],
        ]
        c = make_divisible(32 * width_mult)
        self.last_channel = make_divisible(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [conv_bn_act(in_channels, c, stride=2)]
        for t, ch, n, s in settings:
            out = make_divisible(ch * width_mult)
            for i in range(n):
                features.append(InvertedResidual(c, out, s if i == 0 else 1, t))
                c = out
        features.append(conv_bn_act(c, self.last_channel, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.last_channel, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        y: torch.Tensor = self.classifier(torch.flatten(x, 1))
        return y


class MobileNetV1(nn.Module):
    """Howard et al. 2017 with jcnn's documented key naming (no torchvision model exists)."""

    def __init__(self, num_classes: int, in_channels: int, width_mult: float = 1.0, dropout: float = 0.2) -> None:
        super().__init__()
        plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
        c = make_divisible(32 * width_mult)
        features: list[nn.Module] = [conv_bn_act(in_channels, c, stride=2, act=nn.ReLU)]
        for ch, s in plan:
            out = make_divisible(ch * width_mult)
            features.append(nn.Sequential(conv_bn_act(c, c, 3, s, c, act=nn.ReLU), conv_bn_act(c, out, 1, act=nn.ReLU)))
            c = out
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(c, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))
        return y


def twin(name: str, num_classes: int, in_channels: int, **kw: Any) -> nn.Module:
    """The torch twin of zoo model ``name``."""
    if name == "lenet5":
        return lenet5(num_classes, in_channels, **kw)
    if name.startswith("vgg"):
        return VGG(name.split("_")[0], name.endswith("_bn"), num_classes, in_channels, **kw)
    if name.startswith("resnet"):
        resnets: dict[str, tuple[type[BasicBlock] | type[Bottleneck], list[int]]] = {
            "resnet18": (BasicBlock, [2, 2, 2, 2]),
            "resnet34": (BasicBlock, [3, 4, 6, 3]),
            "resnet50": (Bottleneck, [3, 4, 6, 3]),
        }
        block, layers = resnets[name]
        return ResNet(block, layers, num_classes, in_channels)
    if name == "mobilenet_v2":
        return MobileNetV2(num_classes, in_channels, **kw)
    if name == "mobilenet_v1":
        return MobileNetV1(num_classes, in_channels, **kw)
    if name in MODERN_TWINS:
        return MODERN_TWINS[name](num_classes, in_channels, **kw)
    raise ValueError(f"twin: no torch twin for {name!r}")


def cifar_resnet18(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """ResNet-18 with the usual CIFAR stem (3×3/1 ``conv1``, no max pool) and torchvision's key names; the
    benchmarks' CIFAR configuration (not a zoo model: ``benchmarks/impls/jcnn_models.py`` builds its jcnn side)."""
    net = ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels)
    net.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
    net.maxpool = nn.Identity()
    return net
