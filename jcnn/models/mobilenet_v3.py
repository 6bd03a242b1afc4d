"""MobileNet v3 (Howard et al. 2019: inverted residuals with squeeze-and-excitation and hard-swish) as
torchvision's ``mobilenet_v3_large`` / ``mobilenet_v3_small``, key for key.

``features.0`` is the 3×3/2 stem unit (conv, BatchNorm, HardSwish: ``features.0.0.weight``,
``features.0.1.*``); ``features.1``…``features.n`` are inverted residuals whose units sit in ``block``
(``features.2.block.0.0.weight`` (1×1 expansion), ``block.1`` (depthwise), ``block.2.fc1.weight`` (the
squeeze-and-excitation, hard-sigmoid gate), last the linear 1×1 projection); then the 1×1 unit to 6×
channels, global average pool and ``classifier`` = ``0`` Linear, ``1`` HardSwish, ``2`` Dropout, ``3``
Linear. Every BatchNorm has torchvision's ``eps=0.001, momentum=0.01``. Init: convs kaiming-normal
(fan_out) with zero biases, BN γ = 1, β = 0, linears N(0, 0.01) with zero biases.

At 32×32 (CIFAR) the stride-2 stem and the four stride-2 blocks leave a 1×1 map for the last stage: the
model runs unchanged (no stem adaptation), with ImageNet's downsampling.
"""

from __future__ import annotations

from typing import Any

from jcnn import initializers as inits
from jcnn import layers as L
from jcnn.layers.base import Layer, constructor
from jcnn.models import _blocks as B
from jcnn.models import _modern as M
from jcnn.models.mobilenet import make_divisible

# (in, kernel, expanded, out, SE, activation, stride, dilatable) of the paper's Tables 1 (large) and 2 (small).
LARGE = (
    (16, 3, 16, 16, False, "RE", 1, False),
    (16, 3, 64, 24, False, "RE", 2, False),
    (24, 3, 72, 24, False, "RE", 1, False),
    (24, 5, 72, 40, True, "RE", 2, False),
    (40, 5, 120, 40, True, "RE", 1, False),
    (40, 5, 120, 40, True, "RE", 1, False),
    (40, 3, 240, 80, False, "HS", 2, False),
    (80, 3, 200, 80, False, "HS", 1, False),
    (80, 3, 184, 80, False, "HS", 1, False),
    (80, 3, 184, 80, False, "HS", 1, False),
    (80, 3, 480, 112, True, "HS", 1, False),
    (112, 3, 672, 112, True, "HS", 1, False),
    (112, 5, 672, 160, True, "HS", 2, True),
    (160, 5, 960, 160, True, "HS", 1, True),
    (160, 5, 960, 160, True, "HS", 1, True),
)
SMALL = (
    (16, 3, 16, 16, True, "RE", 2, False),
    (16, 3, 72, 24, False, "RE", 2, False),
    (24, 3, 88, 24, False, "RE", 1, False),
    (24, 5, 96, 40, True, "HS", 2, False),
    (40, 5, 240, 40, True, "HS", 1, False),
    (40, 5, 240, 40, True, "HS", 1, False),
    (40, 5, 120, 48, True, "HS", 1, False),
    (48, 5, 144, 48, True, "HS", 1, False),
    (48, 5, 288, 96, True, "HS", 2, True),
    (96, 5, 576, 96, True, "HS", 1, True),
    (96, 5, 576, 96, True, "HS", 1, True),
)
LAST_CHANNEL = {"mobilenet_v3_large": 1280, "mobilenet_v3_small": 1024}


def _norm() -> Layer:
    return L.BatchNorm(momentum=0.01, eps=1e-3)


def _act(code: str) -> Layer:
    return L.HardSwish if code == "HS" else L.Relu


def settings(
    name: str, width_mult: float = 1.0, reduced_tail: bool = False, dilated: bool = False
) -> tuple[list[tuple[Any, ...]], int]:
    """The block settings ``(in, kernel, expanded, out, SE, activation, stride, dilation)`` after the width
    multiplier (``make_divisible(c·width_mult, 8)``), the reduced tail (the last stage's widths halved, the
    first C4 block keeping its input and expansion) and the dilation (2 in the last stage, no stride there);
    and the classifier's hidden width."""
    table = LARGE if name == "mobilenet_v3_large" else SMALL
    divider = 2 if reduced_tail else 1
    tail = len(table) - 3
    out = []
    for i, (cin, k, exp, cout, se, act, stride, dilatable) in enumerate(table):
        if i >= tail:
            cout //= divider
            if i > tail:
                cin, exp = cin // divider, exp // divider
        dilation = 2 if (dilated and dilatable) else 1
        out.append(
            (
                make_divisible(cin * width_mult),
                k,
                make_divisible(exp * width_mult),
                make_divisible(cout * width_mult),
                se,
                act,
                stride,
                dilation,
            )
        )
    return out, make_divisible(LAST_CHANNEL[name] // divider * width_mult)


def inverted_residual(
    cin: int, kernel: int, expanded: int, cout: int, se: bool, act: str, stride: int, dilation: int
) -> Layer:
    """torchvision's MobileNet v3 ``InvertedResidual``: [1×1 expansion unit,] depthwise unit (stride 1 when
    dilated), [squeeze-and-excitation to ``make_divisible(expanded // 4)``, hard-sigmoid gate,] linear 1×1
    projection with BatchNorm; plus ``x`` when ``stride == 1`` and ``cin == cout``. Params under ``block``."""
    units = []
    if expanded != cin:
        units.append(M.conv_norm_act(expanded, 1, norm=_norm, act=_act(act)))
    units.append(
        M.conv_norm_act(
            expanded,
            kernel,
            stride=1 if dilation > 1 else stride,
            groups=expanded,
            dilation=dilation,
            norm=_norm,
            act=_act(act),
        )
    )
    if se:
        units.append(
            L.SqueezeExcitation(
                expanded,
                make_divisible(expanded // 4),
                scale_activation=L.HardSigmoid,
                kernel_init=M.kaiming_fan_out(),
                bias_init=inits.zeros,
            )
        )
    units.append(M.conv_norm_act(cout, 1, norm=_norm))
    block = B.sequential(*units)
    if stride == 1 and cin == cout:
        return L.residual(block, L.Identity, block_name="block", shortcut_name=None)
    return L.serial(("block", block))


def _mobilenet_v3(
    name: str, num_classes: int, in_channels: int, width_mult: float, reduced_tail: bool, dilated: bool, dropout: float
) -> Layer:
    M.check_positive(name, "width_mult", width_mult)
    table, last = settings(name, width_mult, reduced_tail, dilated)
    return _build(name, table, last, num_classes, in_channels, dropout)


def _build(
    name: str, table: list[tuple[Any, ...]], last: int, num_classes: int, in_channels: int, dropout: float
) -> Layer:
    B.check_classes(name, num_classes)
    M.check_probability(name, "dropout", dropout, closed=False)
    features = [M.conv_norm_act(table[0][0], 3, stride=2, norm=_norm, act=L.HardSwish)]
    features += [inverted_residual(*row) for row in table]
    features.append(M.conv_norm_act(6 * table[-1][3], 1, norm=_norm, act=L.HardSwish))

    def linear(n: int) -> Layer:
        return L.Dense(n, kernel_init=inits.normal(0.01), bias_init=inits.zeros)

    classifier = B.sequential(linear(last), L.HardSwish, L.Dropout(dropout), linear(num_classes))
    model = L.serial(("features", B.sequential(*features)), ("avgpool", L.GlobalAvgPool), ("classifier", classifier))
    return B.expect_input(model, name, in_channels)


@constructor
def mobilenet_v3(
    setting: list[tuple[Any, ...]],
    last_channel: int,
    num_classes: int = 1000,
    in_channels: int = 3,
    *,
    dropout: float = 0.2,
) -> Layer:
    """A MobileNet v3 of any block table (torchvision's ``MobileNetV3(inverted_residual_setting,
    last_channel)``): ``setting`` rows ``(in, kernel, expanded, out, SE, "RE" | "HS", stride, dilation)``
    (as :func:`settings` returns them), ``last_channel`` the classifier's hidden width. Same keys and init
    as :func:`mobilenet_v3_large`."""
    if (
        not isinstance(setting, (list, tuple))
        or not setting
        or any(not isinstance(r, (list, tuple)) or len(r) != 8 or r[5] not in ("RE", "HS") for r in setting)
    ):
        raise ValueError(
            "mobilenet_v3: setting must be a non-empty list of (in, kernel, expanded, out, SE, "
            f"'RE' | 'HS', stride, dilation) rows, got {setting!r}"
        )
    return _build("mobilenet_v3", [tuple(r) for r in setting], last_channel, num_classes, in_channels, dropout)


@constructor
def mobilenet_v3_large(
    num_classes: int = 1000,
    in_channels: int = 3,
    *,
    width_mult: float = 1.0,
    reduced_tail: bool = False,
    dilated: bool = False,
    dropout: float = 0.2,
) -> Layer:
    """MobileNet v3 Large (5,483,032 params, 0.22 GMACs at 224²): ``(N, H, W, in_channels)`` → logits.
    ``reduced_tail`` halves the last stage (torchvision's detection backbones), ``dilated`` dilates it."""
    return _mobilenet_v3("mobilenet_v3_large", num_classes, in_channels, width_mult, reduced_tail, dilated, dropout)


@constructor
def mobilenet_v3_small(
    num_classes: int = 1000,
    in_channels: int = 3,
    *,
    width_mult: float = 1.0,
    reduced_tail: bool = False,
    dilated: bool = False,
    dropout: float = 0.2,
) -> Layer:
    """MobileNet v3 Small (2,542,856 params, 0.06 GMACs at 224²): ``(N, H, W, in_channels)`` → logits."""
    return _mobilenet_v3("mobilenet_v3_small", num_classes, in_channels, width_mult, reduced_tail, dilated, dropout)


__all__ = ["mobilenet_v3_large", "mobilenet_v3_small", "mobilenet_v3", "settings", "inverted_residual"]
