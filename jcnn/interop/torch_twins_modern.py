"""PyTorch twins of the zoo's modern CNNs (issue 12): MobileNet v3, EfficientNet v1/v2, ConvNeXt and
RegNet X/Y with torchvision's module structure, attribute names (so state_dict keys), defaults and init
schemes, written from torchvision's architecture descriptions (torchvision itself is not importable beside
torch 2.13). :func:`jcnn.interop.torch_twins.twin` builds them by zoo name through :data:`MODERN_TWINS`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
from torch import nn

from jcnn.models import mobilenet_v3 as _mobilenet_v3
from jcnn.models import regnet as _regnet

# Each forward annotates what a submodule returns: nn.Module.__call__ is typed as returning Any.


def _divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """torchvision's ``_make_divisible``."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class Conv2dNormActivation(nn.Sequential):
    """conv (padding ``(k − 1)//2·dilation``, bias iff no norm) → [norm] → [activation], named 0, 1, 2."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        groups: int = 1,
        norm_layer: Callable[[int], nn.Module] | None = nn.BatchNorm2d,
        activation_layer: Callable[[], nn.Module] | None = nn.ReLU,
        dilation: int = 1,
        bias: bool | None = None,
    ) -> None:
        padding = (kernel_size - 1) // 2 * dilation if padding is None else padding
        bias = norm_layer is None if bias is None else bias
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel_size, stride, padding, dilation=dilation, groups=groups, bias=bias)
        ]
        if norm_layer is not None:
            layers.append(norm_layer(cout))
        if activation_layer is not None:
            layers.append(activation_layer())
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """``x · scale_activation(fc2(activation(fc1(avgpool(x)))))`` with 1×1 convs fc1, fc2."""

    def __init__(
        self,
        channels: int,
        squeeze: int,
        activation: Callable[[], nn.Module] = nn.ReLU,
        scale_activation: Callable[[], nn.Module] = nn.Sigmoid,
    ) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale: torch.Tensor = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


def stochastic_depth(x: torch.Tensor, p: float, mode: str, training: bool) -> torch.Tensor:
    """torchvision.ops.stochastic_depth: per-row (or per-batch) Bernoulli(1 − p) mask, kept values / (1 − p)."""
    if not training or p == 0.0:
        return x
    size = [x.shape[0]] + [1] * (x.ndim - 1) if mode == "row" else [1] * x.ndim
    noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(1.0 - p)
    if p < 1.0:
        noise.div_(1.0 - p)
    return x * noise


class StochasticDepth(nn.Module):
    """torchvision's ``StochasticDepth`` module (``p``, ``mode``)."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return stochastic_depth(x, self.p, self.mode, self.training)


class Permute(nn.Module):
    """torchvision's ``Permute`` (ConvNeXt's NCHW ⇄ NHWC)."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an ``(N, C, H, W)`` tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def _init_modules(net: nn.Module, conv: str, linear: str) -> None:
    """The init schemes of the models below: conv ``kaiming`` (normal, fan_out) / ``trunc`` (N(0, 0.02)
    truncated to ±2) / ``regnet`` (N(0, 2/fan_out), biases left at torch's default); linear ``normal``
    (N(0, 0.01)) / ``uniform`` (U(±1/sqrt(out))) / ``trunc``; norms γ = 1, β = 0; other biases 0."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            if conv == "kaiming":
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif conv == "trunc":
                nn.init.trunc_normal_(m.weight, std=0.02)
            else:
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None and conv != "regnet":
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            if linear == "normal":
                nn.init.normal_(m.weight, 0.0, 0.01)
            elif linear == "uniform":
                r = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -r, r)
            else:
                nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)


# -- MobileNet v3 -------------------------------------------------------------------------------------------

# The architecture tables are the zoo's own (one copy): what the twins check independently is the module
# structure, keys and arithmetic; the tables themselves are checked by the parameter counts against
# torchvision's published figures (tests/models/test_modern.py).
V3_LARGE = list(_mobilenet_v3.LARGE)
"""MobileNet v3 Large's blocks (in, kernel, expanded, out, SE, activation, stride, dilatable): the zoo's table."""
V3_SMALL = list(_mobilenet_v3.SMALL)
"""MobileNet v3 Small's blocks, as :data:`V3_LARGE`."""


class InvertedResidualV3(nn.Module):
    """torchvision's MobileNet v3 ``InvertedResidual`` (units under ``block``)."""

    def __init__(
        self,
        cin: int,
        k: int,
        exp: int,
        cout: int,
        se: bool,
        act: str,
        stride: int,
        dilation: int,
        norm: Callable[[int], nn.Module],
    ) -> None:
        super().__init__()
        self.use_res_connect = stride == 1 and cin == cout
        act_layer = nn.Hardswish if act == "HS" else nn.ReLU
        layers: list[nn.Module] = []
        if exp != cin:
            layers.append(Conv2dNormActivation(cin, exp, 1, norm_layer=norm, activation_layer=act_layer))
        layers.append(
            Conv2dNormActivation(
                exp,
                exp,
                k,
                1 if dilation > 1 else stride,
                groups=exp,
                norm_layer=norm,
                activation_layer=act_layer,
                dilation=dilation,
            )
        )
        if se:
            layers.append(SqueezeExcitation(exp, _divisible(exp // 4, 8), scale_activation=nn.Hardsigmoid))
        layers.append(Conv2dNormActivation(exp, cout, 1, norm_layer=norm, activation_layer=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.block(x)
        return y + x if self.use_res_connect else y


class MobileNetV3(nn.Module):
    """torchvision's ``MobileNetV3`` (``features``, ``avgpool``, ``classifier``)."""

    def __init__(
        self,
        arch: str,
        num_classes: int,
        in_channels: int,
        width_mult: float = 1.0,
        reduced_tail: bool = False,
        dilated: bool = False,
        dropout: float = 0.2,
        setting: Sequence[Sequence[Any]] | None = None,
        last_channel: int | None = None,
    ) -> None:
        """``arch`` "large" / "small", or "custom" with ``setting`` rows (in, kernel, expanded, out, SE, act,
        stride, dilation) and ``last_channel`` given as they are (no width multiplier)."""
        super().__init__()
        div = 2 if reduced_tail else 1
        norm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        table = V3_LARGE if arch == "large" else V3_SMALL
        last = 1280 if arch == "large" else 1024
        tail = len(table) - 3  # the last three blocks (C4 on) take the reduced tail and the dilation

        def ch(c: int) -> int:
            return _divisible(c * width_mult, 8)

        settings: list[tuple[Any, ...]] = []
        for i, (cin, k, exp, cout, se, act, s, dil) in enumerate(table):
            if i >= tail:  # the first C4 block keeps its input and expansion widths
                cout //= div
                if i > tail:
                    cin, exp = cin // div, exp // div
            settings.append((ch(cin), k, ch(exp), ch(cout), se, act, s, 2 if (dil and dilated) else 1))
        if arch == "custom":
            if setting is None or last_channel is None:
                raise TypeError("MobileNetV3: arch='custom' needs setting= and last_channel=")
            settings, last = [tuple(r) for r in setting], last_channel
        else:
            last = ch(last // div)
        layers: list[nn.Module] = [
            Conv2dNormActivation(in_channels, settings[0][0], 3, 2, norm_layer=norm, activation_layer=nn.Hardswish)
        ]
        layers += [
            InvertedResidualV3(cin, k, exp, cout, se, act, s, dil, norm=norm)
            for cin, k, exp, cout, se, act, s, dil in settings
        ]
        c = settings[-1][3]
        layers.append(Conv2dNormActivation(c, 6 * c, 1, norm_layer=norm, activation_layer=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(6 * c, last), nn.Hardswish(), nn.Dropout(dropout), nn.Linear(last, num_classes)
        )
        _init_modules(self, "kaiming", "normal")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))
        return y


# -- EfficientNet v1 (b0-b7) and v2 (s, m, l) -----------------------------------------------------------------

# (expand, kernel, stride, in, out, layers[, fused]) as torchvision's configurations.
EFFNET_V1 = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
]
"""EfficientNet B0's stages (expand, kernel, stride, in, out, layers)."""
EFFNET_V2 = {
    "s": [
        (1, 3, 1, 24, 24, 2, True),
        (4, 3, 2, 24, 48, 4, True),
        (4, 3, 2, 48, 64, 4, True),
        (4, 3, 2, 64, 128, 6, False),
        (6, 3, 1, 128, 160, 9, False),
        (6, 3, 2, 160, 256, 15, False),
    ],
    "m": [
        (1, 3, 1, 24, 24, 3, True),
        (4, 3, 2, 24, 48, 5, True),
        (4, 3, 2, 48, 80, 5, True),
        (4, 3, 2, 80, 160, 7, False),
        (6, 3, 1, 160, 176, 14, False),
        (6, 3, 2, 176, 304, 18, False),
        (6, 3, 1, 304, 512, 5, False),
    ],
    "l": [
        (1, 3, 1, 32, 32, 4, True),
        (4, 3, 2, 32, 64, 7, True),
        (4, 3, 2, 64, 96, 7, True),
        (4, 3, 2, 96, 192, 10, False),
        (6, 3, 1, 192, 224, 19, False),
        (6, 3, 2, 224, 384, 25, False),
        (6, 3, 1, 384, 640, 7, False),
    ],
}
"""EfficientNetV2's stages (expand, kernel, stride, in, out, layers, fused) per size."""
# name: (width_mult, depth_mult, dropout, bn eps, bn momentum)
EFFNET_B = {
    "b0": (1.0, 1.0, 0.2, 1e-5, 0.1),
    "b1": (1.0, 1.1, 0.2, 1e-5, 0.1),
    "b2": (1.1, 1.2, 0.3, 1e-5, 0.1),
    "b3": (1.2, 1.4, 0.3, 1e-5, 0.1),
    "b4": (1.4, 1.8, 0.4, 1e-5, 0.1),
    "b5": (1.6, 2.2, 0.4, 1e-3, 0.01),
    "b6": (1.8, 2.6, 0.5, 1e-3, 0.01),
    "b7": (2.0, 3.1, 0.5, 1e-3, 0.01),
}
"""EfficientNet B0–B7: (width_mult, depth_mult, dropout, BatchNorm eps, BatchNorm momentum)."""
EFFNET_V2_DROPOUT = {"s": 0.2, "m": 0.3, "l": 0.4}
"""EfficientNetV2's classifier dropout per size."""


class MBConv(nn.Module):
    """torchvision's ``MBConv``: 1×1 expansion, depthwise, squeeze-and-excitation, 1×1 projection."""

    def __init__(
        self,
        expand: float,
        k: int,
        stride: int,
        cin: int,
        cout: int,
        sd_prob: float,
        norm: Callable[[int], nn.Module],
    ) -> None:
        super().__init__()
        self.use_res_connect = stride == 1 and cin == cout
        exp = _divisible(cin * expand, 8)
        layers: list[nn.Module] = []
        if exp != cin:
            layers.append(Conv2dNormActivation(cin, exp, 1, norm_layer=norm, activation_layer=nn.SiLU))
        layers.append(Conv2dNormActivation(exp, exp, k, stride, groups=exp, norm_layer=norm, activation_layer=nn.SiLU))
        layers.append(SqueezeExcitation(exp, max(1, cin // 4), activation=nn.SiLU))
        layers.append(Conv2dNormActivation(exp, cout, 1, norm_layer=norm, activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(sd_prob, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.block(x)
        if not self.use_res_connect:
            return y
        dropped: torch.Tensor = self.stochastic_depth(y)
        return dropped + x


class FusedMBConv(nn.Module):
    """torchvision's ``FusedMBConv`` (EfficientNetV2): k×k expansion (or one k×k unit), 1×1 projection."""

    def __init__(
        self,
        expand: float,
        k: int,
        stride: int,
        cin: int,
        cout: int,
        sd_prob: float,
        norm: Callable[[int], nn.Module],
    ) -> None:
        super().__init__()
        self.use_res_connect = stride == 1 and cin == cout
        exp = _divisible(cin * expand, 8)
        if exp != cin:
            layers = [
                Conv2dNormActivation(cin, exp, k, stride, norm_layer=norm, activation_layer=nn.SiLU),
                Conv2dNormActivation(exp, cout, 1, norm_layer=norm, activation_layer=None),
            ]
        else:
            layers = [Conv2dNormActivation(cin, cout, k, stride, norm_layer=norm, activation_layer=nn.SiLU)]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(sd_prob, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.block(x)
        if not self.use_res_connect:
            return y
        dropped: torch.Tensor = self.stochastic_depth(y)
        return dropped + x


class EfficientNet(nn.Module):
    """torchvision's ``EfficientNet`` B0–B7 and V2 (``features``, ``avgpool``, ``classifier``)."""

    def __init__(
        self,
        variant: str,
        num_classes: int,
        in_channels: int,
        dropout: float | None = None,
        stochastic_depth_prob: float = 0.2,
        stages: Sequence[Sequence[Any]] | None = None,
        last_channel: int | None = None,
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
    ) -> None:
        """``variant`` "b0" … "b7", "v2_s" … "v2_l", or "custom" with ``stages`` rows (expand, kernel, stride,
        in, out, layers, fused), ``last_channel`` and the BatchNorm's ``norm_eps`` / ``norm_momentum``."""
        super().__init__()
        if variant == "custom":
            if stages is None:
                raise TypeError("EfficientNet: variant='custom' needs stages=")
            table, default_dropout, eps, momentum, last = (
                [tuple(r) for r in stages],
                0.2,
                norm_eps,
                norm_momentum,
                last_channel,
            )
        elif variant in EFFNET_B:
            width, depth, default_dropout, eps, momentum = EFFNET_B[variant]
            table = [
                (e, k, s, _divisible(i * width, 8), _divisible(o * width, 8), int(math.ceil(n * depth)), False)
                for e, k, s, i, o, n in EFFNET_V1
            ]
            last = None
        else:
            size = variant[len("v2_") :]
            table, default_dropout, eps, momentum, last = EFFNET_V2[size], EFFNET_V2_DROPOUT[size], 1e-3, 0.1, 1280
        dropout = default_dropout if dropout is None else dropout
        norm = partial(nn.BatchNorm2d, eps=eps, momentum=momentum)
        layers: list[nn.Module] = [
            Conv2dNormActivation(in_channels, table[0][3], 3, 2, norm_layer=norm, activation_layer=nn.SiLU)
        ]
        total = sum(row[5] for row in table)
        block_id = 0
        for expand, k, stride, cin, cout, n, fused in table:
            stage: list[nn.Module] = []
            for i in range(n):
                block = FusedMBConv if fused else MBConv
                stage.append(
                    block(
                        expand,
                        k,
                        stride if i == 0 else 1,
                        cin if i == 0 else cout,
                        cout,
                        stochastic_depth_prob * float(block_id) / total,
                        norm,
                    )
                )
                block_id += 1
            layers.append(nn.Sequential(*stage))
        c = table[-1][4]
        last = 4 * c if last is None else last
        layers.append(Conv2dNormActivation(c, last, 1, norm_layer=norm, activation_layer=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))
        _init_modules(self, "kaiming", "uniform")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))
        return y


# -- ConvNeXt -------------------------------------------------------------------------------------------------

# name: (stage widths, stage depths, default stochastic depth probability)
CONVNEXT = {
    "tiny": ((96, 192, 384, 768), (3, 3, 9, 3), 0.1),
    "small": ((96, 192, 384, 768), (3, 3, 27, 3), 0.4),
    "base": ((128, 256, 512, 1024), (3, 3, 27, 3), 0.5),
    "large": ((192, 384, 768, 1536), (3, 3, 27, 3), 0.5),
}
"""ConvNeXt sizes: (stage widths, stage depths, default stochastic depth probability)."""


class CNBlock(nn.Module):
    """torchvision's ConvNeXt block: ``x + stochastic_depth(layer_scale · block(x))``."""

    def __init__(self, dim: int, layer_scale: float, sd_prob: float) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, 7, padding=3, groups=dim),
            Permute([0, 2, 3, 1]),
            nn.LayerNorm(dim, eps=1e-6),
            nn.Linear(dim, 4 * dim),
            nn.GELU(),
            nn.Linear(4 * dim, dim),
            Permute([0, 3, 1, 2]),
        )
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)
        self.stochastic_depth = StochasticDepth(sd_prob, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.stochastic_depth(self.layer_scale * self.block(x))
        return y + x


class ConvNeXt(nn.Module):
    """torchvision's ``ConvNeXt`` (``features``, ``avgpool``, ``classifier``)."""

    def __init__(
        self,
        size: str,
        num_classes: int,
        in_channels: int,
        stochastic_depth_prob: float | None = None,
        layer_scale: float = 1e-6,
        widths: tuple[int, ...] | None = None,
        depths: tuple[int, ...] | None = None,
    ) -> None:
        """``size`` "tiny" … "large", or "custom" with the stage ``widths`` and ``depths``."""
        super().__init__()
        if size != "custom":
            widths, depths, default_sd = CONVNEXT[size]
        elif widths is None or depths is None:
            raise TypeError("ConvNeXt: size='custom' needs widths= and depths=")
        else:
            default_sd = 0.1
        sd = default_sd if stochastic_depth_prob is None else stochastic_depth_prob
        norm = partial(LayerNorm2d, eps=1e-6)
        layers: list[nn.Module] = [
            Conv2dNormActivation(in_channels, widths[0], 4, 4, 0, norm_layer=norm, activation_layer=None, bias=True)
        ]
        total, block_id = sum(depths), 0
        for i, (width, depth) in enumerate(zip(widths, depths)):
            stage = []
            for _ in range(depth):
                stage.append(CNBlock(width, layer_scale, sd * block_id / max(total - 1.0, 1.0)))
                block_id += 1
            layers.append(nn.Sequential(*stage))
            if i + 1 < len(widths):
                layers.append(nn.Sequential(norm(width), nn.Conv2d(width, widths[i + 1], 2, 2)))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(norm(widths[-1]), nn.Flatten(1), nn.Linear(widths[-1], num_classes))
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.classifier(self.avgpool(self.features(x)))
        return y


# -- RegNet X / Y ---------------------------------------------------------------------------------------------

REGNET = {name.removeprefix("regnet_"): config for name, config in _regnet.CONFIGS.items()}
"""RegNet sizes: (depth, w_0, w_a, w_m, group width, SE ratio) of torchvision's BlockParams."""


def regnet_stages(depth: int, w_0: int, w_a: float, w_m: float, group_width: int) -> list[tuple[int, int, int]]:
    """``(width, depth, group width)`` per stage, computed in torch float32 as torchvision does."""
    widths_cont = torch.arange(depth, device="cpu") * w_a + w_0  # cpu: also under a meta-device context
    capacity = torch.round(torch.log(widths_cont / w_0) / math.log(w_m))
    block_widths = (torch.round(torch.divide(w_0 * torch.pow(w_m, capacity), 8)) * 8).int().tolist()
    stages: list[list[int]] = []
    for w in block_widths:
        if stages and stages[-1][0] == w:
            stages[-1][1] += 1
        else:
            stages.append([w, 1])
    out = []
    for w, d in stages:
        g = min(group_width, w)
        out.append((int(_divisible(w, g) / 1.0), d, g))
    return out


class ResBottleneckBlock(nn.Module):
    """torchvision's RegNet ``ResBottleneckBlock``: ``relu(proj(x) or x + f(x))``."""

    def __init__(self, cin: int, cout: int, stride: int, group_width: int, se_ratio: float | None) -> None:
        super().__init__()
        self.proj = (
            Conv2dNormActivation(cin, cout, 1, stride, activation_layer=None) if cin != cout or stride != 1 else None
        )
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["a"] = Conv2dNormActivation(cin, cout, 1)
        layers["b"] = Conv2dNormActivation(cout, cout, 3, stride, groups=cout // group_width)
        if se_ratio:
            layers["se"] = SqueezeExcitation(cout, int(round(se_ratio * cin)))
        layers["c"] = Conv2dNormActivation(cout, cout, 1, activation_layer=None)
        self.f = nn.Sequential(layers)
        self.activation = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.proj is None else self.proj(x)
        y: torch.Tensor = self.activation(shortcut + self.f(x))
        return y


class RegNet(nn.Module):
    """torchvision's ``RegNet`` (``stem``, ``trunk_output``, ``avgpool``, ``fc``)."""

    def __init__(
        self,
        size: str,
        num_classes: int,
        in_channels: int,
        config: tuple[int, int, float, float, int, float | None] | None = None,
    ) -> None:
        """``size`` "y_400mf" … "x_32gf", or "custom" with ``config`` = (depth, w_0, w_a, w_m, group width,
        SE ratio or None)."""
        super().__init__()
        if size != "custom":
            config = REGNET[size]
        elif config is None:
            raise TypeError("RegNet: size='custom' needs config=")
        depth, w_0, w_a, w_m, group_width, se_ratio = config
        self.stem = Conv2dNormActivation(in_channels, 32, 3, 2)
        width = 32
        stages: list[tuple[str, nn.Module]] = []
        for i, (w, d, g) in enumerate(regnet_stages(depth, w_0, w_a, w_m, group_width)):
            blocks: OrderedDict[str, nn.Module] = OrderedDict(
                (f"block{i + 1}-{j}", ResBottleneckBlock(width if j == 0 else w, w, 2 if j == 0 else 1, g, se_ratio))
                for j in range(d)
            )
            stages.append((f"block{i + 1}", nn.Sequential(blocks)))
            width = w
        self.trunk_output = nn.Sequential(OrderedDict(stages))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width, num_classes)
        _init_modules(self, "regnet", "normal")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.fc(torch.flatten(self.avgpool(self.trunk_output(self.stem(x))), 1))
        return y


MODERN_TWINS: dict[str, Callable[..., nn.Module]] = {
    "mobilenet_v3_large": partial(MobileNetV3, "large"),
    "mobilenet_v3_small": partial(MobileNetV3, "small"),
    **{f"efficientnet_{v}": partial(EfficientNet, v) for v in list(EFFNET_B) + [f"v2_{s}" for s in EFFNET_V2]},
    **{f"convnext_{s}": partial(ConvNeXt, s) for s in CONVNEXT},
    **{f"regnet_{s}": partial(RegNet, s) for s in REGNET},
}
"""zoo name → twin constructor ``(num_classes, in_channels, **kw)`` of the modern models."""
