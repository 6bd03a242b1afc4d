"""RegNetX and RegNetY (Radosavovic et al. 2020, "Designing Network Design Spaces") as torchvision's
``regnet_x_400mf`` … ``regnet_y_128gf``, key for key.

``stem`` is a 3×3/2 unit to 32 channels (``stem.0.weight`` conv, ``stem.1.*`` BatchNorm, ReLU);
``trunk_output.block1``…``block4`` are the stages, whose blocks are named ``block{s}-{i}``
(``trunk_output.block2.block2-0.f.a.0.weight``). A block is ``relu(shortcut(x) + f(x))``: ``f`` = ``a`` 1×1
unit, ``b`` 3×3 grouped unit (stride on the first block of a stage; groups = width / group width),
``se`` (RegNetY: squeeze-and-excitation to ``round(0.25·block input width)``, ReLU, sigmoid), ``c`` linear
1×1 unit; the shortcut is ``proj`` (1×1/stride conv and BatchNorm) where the shape changes. Then global
average pool and ``fc``. The stage widths and depths come from the quantized linear rule (``w_0``,
``w_a``, ``w_m``, computed in float32 as torchvision's ``BlockParams.from_init_params``).

Init as torchvision: convs N(0, 2/fan_out) (kaiming-normal fan_out), the SE convs' biases keep torch's
default U(±1/√fan_in), BN γ = 1, β = 0, ``fc`` N(0, 0.01) with a zero bias. BatchNorm eps 1e-5, momentum 0.1.

At 32×32 (CIFAR) the stem and the four stages' stride 2 leave a 1×1 last stage: the model runs unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from jcnn import initializers as inits
from jcnn import layers as L
from jcnn.layers.base import Layer, constructor
from jcnn.models import _blocks as B
from jcnn.models import _modern as M
from jcnn.models.mobilenet import make_divisible

# name: (depth, w_0, w_a, w_m, group width, SE ratio), torchvision's BlockParams.from_init_params arguments.
CONFIGS = {
    "regnet_y_400mf": (16, 48, 27.89, 2.09, 8, 0.25),
    "regnet_y_800mf": (14, 56, 38.84, 2.4, 16, 0.25),
    "regnet_y_1_6gf": (27, 48, 20.71, 2.65, 24, 0.25),
    "regnet_y_3_2gf": (21, 80, 42.63, 2.66, 24, 0.25),
    "regnet_y_8gf": (17, 192, 76.82, 2.19, 56, 0.25),
    "regnet_y_16gf": (18, 200, 106.23, 2.48, 112, 0.25),
    "regnet_y_32gf": (20, 232, 115.89, 2.53, 232, 0.25),
    "regnet_y_128gf": (27, 456, 160.83, 2.52, 264, 0.25),
    "regnet_x_400mf": (22, 24, 24.48, 2.54, 16, None),
    "regnet_x_800mf": (16, 56, 35.73, 2.28, 16, None),
    "regnet_x_1_6gf": (18, 80, 34.01, 2.25, 24, None),
    "regnet_x_3_2gf": (25, 88, 26.31, 2.25, 48, None),
    "regnet_x_8gf": (23, 80, 49.56, 2.88, 120, None),
    "regnet_x_16gf": (22, 216, 55.59, 2.1, 128, None),
    "regnet_x_32gf": (23, 320, 69.86, 2.0, 168, None),
}
STEM_WIDTH = 32


def stage_settings(depth: int, w_0: int, w_a: float, w_m: float, group_width: int) -> list[tuple[int, int, int]]:
    """``(width, depth, group width)`` of each stage: block ``j``'s continuous width ``u_j = w_0 + w_a·j``
    is quantized in log space to ``w_0·w_m^round(log(u_j/w_0)/log w_m)``, rounded to a multiple of 8; runs
    of equal widths are stages; each width is then made divisible by ``min(group_width, width)``. Computed
    in float32 with round-half-to-even, as torchvision computes it with torch tensors."""
    if w_a < 0 or w_0 <= 0 or w_m <= 1 or w_0 % 8:
        raise ValueError(
            f"regnet: invalid settings w_0={w_0}, w_a={w_a}, w_m={w_m} (need w_a >= 0, w_0 > 0 and "
            "divisible by 8, w_m > 1)"
        )
    f32 = np.float32
    continuous = np.arange(depth).astype(f32) * f32(w_a) + f32(w_0)
    capacity = np.round(np.log(continuous / f32(w_0)) / f32(math.log(w_m)))
    widths = (np.round(f32(w_0) * np.power(f32(w_m), capacity) / f32(8)) * f32(8)).astype(np.int32).tolist()
    runs: list[list[int]] = []
    for w in widths:
        if runs and runs[-1][0] == w:
            runs[-1][1] += 1
        else:
            runs.append([w, 1])
    return [(make_divisible(w, min(group_width, w)), d, min(group_width, w)) for w, d in runs]


def res_bottleneck_block(width_in: int, width_out: int, stride: int, group_width: int, se_ratio: float | None) -> Layer:
    """torchvision's ``ResBottleneckBlock`` (bottleneck multiplier 1): params ``f`` (``a``, ``b``, [``se``], ``c``)
    and, where the shape changes, ``proj``."""
    norm = M.batch_norm()
    transform = [
        ("a", M.conv_norm_act(width_out, 1, norm=norm, act=L.Relu)),
        ("b", M.conv_norm_act(width_out, 3, stride=stride, groups=width_out // group_width, norm=norm, act=L.Relu)),
    ]
    if se_ratio:
        # torchvision leaves the SE convs' biases at torch's default init (bias_init None: U(±1/sqrt(fan_in)))
        transform.append(
            ("se", L.SqueezeExcitation(width_out, int(round(se_ratio * width_in)), kernel_init=M.kaiming_fan_out()))
        )
    transform.append(("c", M.conv_norm_act(width_out, 1, norm=norm)))
    shortcut = (
        ("proj", M.conv_norm_act(width_out, 1, stride=stride, norm=norm))
        if width_in != width_out or stride != 1
        else None
    )
    return B.flat_residual([("f", L.serial(*transform))], shortcut, L.Relu)


def _regnet(name: str, num_classes: int, in_channels: int, config: tuple[Any, ...] | None = None) -> Layer:
    B.check_classes(name, num_classes)
    depth, w_0, w_a, w_m, group_width, se_ratio = CONFIGS[name] if config is None else config
    stages, width = [], STEM_WIDTH
    for s, (w, d, g) in enumerate(stage_settings(depth, w_0, w_a, w_m, group_width), start=1):
        blocks = [
            (f"block{s}-{i}", res_bottleneck_block(width if i == 0 else w, w, 2 if i == 0 else 1, g, se_ratio))
            for i in range(d)
        ]
        stages.append((f"block{s}", L.serial(*blocks)))
        width = w
    model = L.serial(
        ("stem", M.conv_norm_act(STEM_WIDTH, 3, stride=2, norm=M.batch_norm(), act=L.Relu)),
        ("trunk_output", L.serial(*stages)),
        ("avgpool", L.GlobalAvgPool),
        ("fc", L.Dense(num_classes, kernel_init=inits.normal(0.01), bias_init=inits.zeros)),
    )
    return B.expect_input(model, name, in_channels)


@constructor
def regnet(
    depth: int,
    w_0: int,
    w_a: float,
    w_m: float,
    group_width: int,
    se_ratio: float | None = None,
    num_classes: int = 1000,
    in_channels: int = 3,
) -> Layer:
    """A RegNet of any design-space point (torchvision's ``RegNet(BlockParams.from_init_params(depth, w_0,
    w_a, w_m, group_width, se_ratio=se_ratio))``); ``se_ratio`` None is RegNetX. Same keys and init as
    :func:`regnet_y_400mf`."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"regnet: depth must be an int >= 1, got {depth!r}")
    if isinstance(group_width, bool) or not isinstance(group_width, int) or group_width < 1:
        raise ValueError(f"regnet: group_width must be an int >= 1, got {group_width!r}")
    return _regnet("regnet", num_classes, in_channels, (depth, w_0, w_a, w_m, group_width, se_ratio))


@constructor
def regnet_y_400mf(num_classes: int = 1000, in_channels: int = 3) -> Layer:
    """RegNetY-400MF (4,344,144 params, 0.402 GMACs at 224²): ``(N, H, W, in_channels)`` →
    logits ``(N, num_classes)``."""
    return _regnet("regnet_y_400mf", num_classes, in_channels)


@constructor
def regnet_y_800mf(num_classes: int = 1000, in_channels: int = 3) -> Layer:
    """RegNetY-800MF (6,432,512 params, 0.834 GMACs at 224²): ``(N, H, W, in_channels)`` →
    logits ``(N, num_classes)``."""
    return _regnet("regnet_y_800mf", num_classes, in_channels)


@constructor
def regnet_y_1_6gf(num_classes: int = 1000, in_channels: int = 3) -> Layer:
    """RegNetY-1.6GF (11,202,430 params, 1.612 GMACs at 224²): ``(N, H, W, in_channels)`` →
    logits ``(N, num_classes)``."""
    return _regnet("regnet_y_1_6gf", num_classes, in_channels)


@constructor
def regnet_y_3_2gf(num_classes: int = 1000, in_channels: int = 3) -> Layer:
    """RegNetY-3.2GF (19,436,338 params, 3.176 GMACs at 224²): ``(N, H, W, in_channels)`` →
    logits ``(N, num_classes)``."""
    return _regnet("regnet_y_3_2gf", num_classes, in_channels)


@constructor
def regnet_y_8gf(num_classes: int = 1000, in_channels: int = 3) -> Layer:
    """RegNetY-8GF (39,381,472 params, 8.473 GMACs at 224²): ``(N, H, W, in_channels)`` →
    logits ``(N, num_classes)``."""
    return _regnet("regnet_y_8gf", num_classes, in_channels)


@constructor
def regnet_y_16gf(num_classes: int = 1000, in_channels: int = 3) -> Layer:
    """RegNetY-16GF (83,590,140 params, 15.912 GMACs at 224²): ``(N, H, W, in_channels)`` →
    logits ``(N, num_classes)``."""
    return _regnet("regnet_y_16gf", num_classes, in_channels)


@constructor
def regnet_y_32gf(num_classes: int = 1000, in_channels: int = 3) -> Layer:
    """RegNetY-32GF (145,046,770 params, 32.28 GMACs at 224²): ``(N, H, W, in_channels)`` →
    logits ``(N, num_classes)``."""
    return _regnet("regnet_y_32gf", num_classes, in_channels)


@constructor
def regnet_y_128gf(num_classes: int = 1000, in_channels: int = 3) -> Layer:
    """RegNetY-128GF (644,812,894 params, 127.518 GMACs at 224²): ``(N, H, W, in_channels)`` →
    logits ``(N, num_classes)``."""
    return _regnet("regnet_y_128gf", num_classes, in_channels)


@constructor
def regnet_x_400mf(num_classes: int = 1000, in_channels: int = 3) -> Layer:
    """RegNetX-400MF (5,495,976 params, 0.414 GMACs at 224²): ``(N, H, W, in_channels)`` →
    logits ``(N, num_classes)``."""
    return _regnet("regnet_x_400mf", num_classes, in_channels)


@constructor
def regnet_x_800mf(num_classes: int = 1000, in_channels: int = 3) -> Layer:
    """RegNetX-800MF (7,259,656 params, 0.8 GMACs at 224²): ``(N, H, W, in_channels)`` →
    logits ``(N, num_classes)``."""
    return _regnet("regnet_x_800mf", num_classes, in_channels)


@constructor
def regnet_x_1_6gf(num_classes: int = 1000, in_channels: int = 3) -> Layer:
    """RegNetX-1.6GF (9,190,136 params, 1.603 GMACs at 224²): ``(N, H, W, in_channels)`` →
    logits ``(N, num_classes)``."""
    return _regnet("regnet_x_1_6gf", num_classes, in_channels)


@constructor
def regnet_x_3_2gf(num_classes: int = 1000, in_channels: int = 3) -> Layer:
    """RegNetX-3.2GF (15,296,552 params, 3.177 GMACs at 224²): ``(N, H, W, in_channels)`` →
    logits ``(N, num_classes)``."""
    return _regnet("regnet_x_3_2gf", num_classes, in_channels)


@constructor
def regnet_x_8gf(num_classes: int = 1000, in_channels: int = 3) -> Layer:
    """RegNetX-8GF (39,572,648 params, 7.995 GMACs at 224²): ``(N, H, W, in_channels)`` →
    logits ``(N, num_classes)``."""
    return _regnet("regnet_x_8gf", num_classes, in_channels)


@constructor
def regnet_x_16gf(num_classes: int = 1000, in_channels: int = 3) -> Layer:
    """RegNetX-16GF (54,278,536 params, 15.941 GMACs at 224²): ``(N, H, W, in_channels)`` →
    logits ``(N, num_classes)``."""
    return _regnet("regnet_x_16gf", num_classes, in_channels)


@constructor
def regnet_x_32gf(num_classes: int = 1000, in_channels: int = 3) -> Layer:
    """RegNetX-32GF (107,811,560 params, 31.736 GMACs at 224²): ``(N, H, W, in_channels)`` →
    logits ``(N, num_classes)``."""
    return _regnet("regnet_x_32gf", num_classes, in_channels)


__all__ = [
    "regnet_y_400mf",
    "regnet_y_800mf",
    "regnet_y_1_6gf",
    "regnet_y_3_2gf",
    "regnet_y_8gf",
    "regnet_y_16gf",
    "regnet_y_32gf",
    "regnet_y_128gf",
    "regnet_x_400mf",
    "regnet_x_800mf",
    "regnet_x_1_6gf",
    "regnet_x_3_2gf",
    "regnet_x_8gf",
    "regnet_x_16gf",
    "regnet_x_32gf",
    "regnet",
    "stage_settings",
    "res_bottleneck_block",
]
