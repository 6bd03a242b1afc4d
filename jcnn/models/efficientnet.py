"""EfficientNet B0–B7 (Tan & Le 2019) and EfficientNetV2 S/M/L (Tan & Le 2021) as torchvision's
``efficientnet_b0`` … ``efficientnet_v2_l``, key for key.

``features.0`` is the 3×3/2 stem unit (conv, BatchNorm, SiLU); ``features.1``…``features.7`` (V2: ``…6`` or
``…7``) are stages of MBConv blocks whose units sit in ``block`` (``features.2.0.block.0.0.weight`` 1×1
expansion, ``block.1`` depthwise, ``block.2.fc1/fc2`` squeeze-and-excitation to ``max(1, in // 4)``
channels with SiLU, ``block.3`` the linear 1×1 projection) and, on residual blocks, ``stochastic_depth``
(rate ``stochastic_depth_prob · i / total`` for the ``i``-th block: 0 for the first); V2's first stages are
Fused-MBConv (one k×k expansion unit, then the 1×1 projection). Then the 1×1 unit to ``4·320·width``
channels (V2: 1280), global average pool and ``classifier`` = ``0`` Dropout, ``1`` Linear.

BatchNorm: torch's defaults for B0–B4, ``eps=0.001, momentum=0.01`` for B5–B7, ``eps=0.001`` for V2 (as
torchvision). Init: convs kaiming-normal (fan_out) with zero biases, BN γ = 1, β = 0, the linear
U(±1/√num_classes) with a zero bias. Width ``make_divisible(c·width_mult, 8)``, depth ``ceil(n·depth_mult)``.

At 32×32 (CIFAR) the five stride-2 steps leave a 1×1 map for the last stages: the model runs unchanged.
"""

from __future__ import annotations

import math
from typing import Any

from jcnn import initializers as inits
from jcnn import layers as L
from jcnn.layers.base import Layer, constructor
from jcnn.models import _blocks as B
from jcnn.models import _modern as M
from jcnn.models.mobilenet import make_divisible

# (expand ratio, kernel, stride, in, out, layers, fused) per stage.
V1_STAGES = (
    (1, 3, 1, 32, 16, 1, False),
    (6, 3, 2, 16, 24, 2, False),
    (6, 5, 2, 24, 40, 2, False),
    (6, 3, 2, 40, 80, 3, False),
    (6, 5, 1, 80, 112, 3, False),
    (6, 5, 2, 112, 192, 4, False),
    (6, 3, 1, 192, 320, 1, False),
)
V2_STAGES = {
    "efficientnet_v2_s": (
        (1, 3, 1, 24, 24, 2, True),
        (4, 3, 2, 24, 48, 4, True),
        (4, 3, 2, 48, 64, 4, True),
        (4, 3, 2, 64, 128, 6, False),
        (6, 3, 1, 128, 160, 9, False),
        (6, 3, 2, 160, 256, 15, False),
    ),
    "efficientnet_v2_m": (
        (1, 3, 1, 24, 24, 3, True),
        (4, 3, 2, 24, 48, 5, True),
        (4, 3, 2, 48, 80, 5, True),
        (4, 3, 2, 80, 160, 7, False),
        (6, 3, 1, 160, 176, 14, False),
        (6, 3, 2, 176, 304, 18, False),
        (6, 3, 1, 304, 512, 5, False),
    ),
    "efficientnet_v2_l": (
        (1, 3, 1, 32, 32, 4, True),
        (4, 3, 2, 32, 64, 7, True),
        (4, 3, 2, 64, 96, 7, True),
        (4, 3, 2, 96, 192, 10, False),
        (6, 3, 1, 192, 224, 19, False),
        (6, 3, 2, 224, 384, 25, False),
        (6, 3, 1, 384, 640, 7, False),
    ),
}
# name: (width_mult, depth_mult, dropout, BatchNorm eps, BatchNorm momentum, eval crop size)
V1_SCALING = {
    "efficientnet_b0": (1.0, 1.0, 0.2, 1e-5, 0.1, 224),
    "efficientnet_b1": (1.0, 1.1, 0.2, 1e-5, 0.1, 240),
    "efficientnet_b2": (1.1, 1.2, 0.3, 1e-5, 0.1, 288),
    "efficientnet_b3": (1.2, 1.4, 0.3, 1e-5, 0.1, 300),
    "efficientnet_b4": (1.4, 1.8, 0.4, 1e-5, 0.1, 380),
    "efficientnet_b5": (1.6, 2.2, 0.4, 1e-3, 0.01, 456),
    "efficientnet_b6": (1.8, 2.6, 0.5, 1e-3, 0.01, 528),
    "efficientnet_b7": (2.0, 3.1, 0.5, 1e-3, 0.01, 600),
}
# name: (dropout, eval crop size); BatchNorm eps 1e-3, momentum 0.1; last unit 1280 channels.
V2_SCALING = {"efficientnet_v2_s": (0.2, 384), "efficientnet_v2_m": (0.3, 480), "efficientnet_v2_l": (0.4, 480)}


def stages(name: str) -> tuple[list[tuple[Any, ...]], int]:
    """Stage settings ``(expand, kernel, stride, in, out, layers, fused)`` after width/depth scaling, and the
    last unit's width."""
    if name in V2_STAGES:
        return list(V2_STAGES[name]), 1280
    width, depth = V1_SCALING[name][:2]
    rows = [
        (e, k, s, make_divisible(i * width), make_divisible(o * width), int(math.ceil(n * depth)), f)
        for e, k, s, i, o, n, f in V1_STAGES
    ]
    return rows, 4 * rows[-1][4]


def mbconv(
    expand: float,
    kernel: int,
    stride: int,
    cin: int,
    cout: int,
    sd_prob: float,
    norm: M.NormFactory,
    fused: bool = False,
) -> Layer:
    """torchvision's ``MBConv`` (or ``FusedMBConv``): units under ``block``; on a residual block
    (``stride == 1`` and ``cin == cout``) ``stochastic_depth`` drops the branch before ``+ x``."""
    expanded = make_divisible(cin * expand)
    if fused:
        units = (
            [
                M.conv_norm_act(expanded, kernel, stride=stride, norm=norm, act=L.Silu),
                M.conv_norm_act(cout, 1, norm=norm),
            ]
            if expanded != cin
            else [M.conv_norm_act(cout, kernel, stride=stride, norm=norm, act=L.Silu)]
        )
    else:
        units = [M.conv_norm_act(expanded, 1, norm=norm, act=L.Silu)] if expanded != cin else []
        units += [
            M.conv_norm_act(expanded, kernel, stride=stride, groups=expanded, norm=norm, act=L.Silu),
            L.SqueezeExcitation(
                expanded, max(1, cin // 4), activation=L.Silu, kernel_init=M.kaiming_fan_out(), bias_init=inits.zeros
            ),
            M.conv_norm_act(cout, 1, norm=norm),
        ]
    block = B.sequential(*units)
    if stride == 1 and cin == cout:
        body = L.serial(("block", block), ("stochastic_depth", L.StochasticDepth(sd_prob, "row")))
        return L.residual(body, L.Identity, block_name=None, shortcut_name=None)
    return L.serial(("block", block))


def _efficientnet(name: str, num_classes: int, in_channels: int, dropout: float, stochastic_depth_prob: float) -> Layer:
    if name in V1_SCALING:
        eps, momentum = V1_SCALING[name][3:5]
    else:
        eps, momentum = 1e-3, 0.1
    rows, last = stages(name)
    return _build(name, rows, last, num_classes, in_channels, dropout, stochastic_depth_prob, eps, momentum)


def _build(
    name: str,
    rows: list[tuple[Any, ...]],
    last: int,
    num_classes: int,
    in_channels: int,
    dropout: float,
    stochastic_depth_prob: float,
    eps: float,
    momentum: float,
) -> Layer:
    B.check_classes(name, num_classes)
    M.check_probability(name, "dropout", dropout, closed=False)
    M.check_probability(name, "stochastic_depth_prob", stochastic_depth_prob)
    norm = M.batch_norm(eps=eps, momentum=momentum)
    features = [M.conv_norm_act(rows[0][3], 3, stride=2, norm=norm, act=L.Silu)]
    total = sum(row[5] for row in rows)
    index = 0
    for expand, kernel, stride, cin, cout, n, fused in rows:
        blocks = []
        for i in range(n):
            blocks.append(
                mbconv(
                    expand,
                    kernel,
                    stride if i == 0 else 1,
                    cin if i == 0 else cout,
                    cout,
                    stochastic_depth_prob * float(index) / total,
                    norm,
                    fused,
                )
            )
            index += 1
        features.append(B.sequential(*blocks))
    features.append(M.conv_norm_act(last, 1, norm=norm, act=L.Silu))
    bound = 1.0 / math.sqrt(num_classes)
    classifier = B.sequential(
        L.Dropout(dropout), L.Dense(num_classes, kernel_init=inits.uniform(-bound, bound), bias_init=inits.zeros)
    )
    model = L.serial(("features", B.sequential(*features)), ("avgpool", L.GlobalAvgPool), ("classifier", classifier))
    return B.expect_input(model, name, in_channels)


@constructor
def efficientnet(
    stages: list[tuple[Any, ...]],
    last_channel: int,
    num_classes: int = 1000,
    in_channels: int = 3,
    *,
    dropout: float = 0.2,
    stochastic_depth_prob: float = 0.2,
    norm_eps: float = 1e-5,
    norm_momentum: float = 0.1,
) -> Layer:
    """An EfficientNet of any stage table (torchvision's ``EfficientNet(inverted_residual_setting,
    dropout, stochastic_depth_prob, last_channel, norm_layer)``): ``stages`` rows ``(expand ratio, kernel,
    stride, in, out, layers, fused)`` with the widths and depths already scaled, ``last_channel`` the
    final 1×1 unit's width. Same keys and init as :func:`efficientnet_b0`."""
    if (
        not isinstance(stages, (list, tuple))
        or not stages
        or any(not isinstance(r, (list, tuple)) or len(r) != 7 for r in stages)
    ):
        raise ValueError(
            "efficientnet: stages must be a non-empty list of (expand, kernel, stride, in, out, "
            f"layers, fused) rows, got {stages!r}"
        )
    M.check_positive("efficientnet", "norm_eps", norm_eps)
    M.check_probability("efficientnet", "norm_momentum", norm_momentum)
    return _build(
        "efficientnet",
        [tuple(r) for r in stages],
        last_channel,
        num_classes,
        in_channels,
        dropout,
        stochastic_depth_prob,
        norm_eps,
        norm_momentum,
    )


@constructor
def efficientnet_b0(
    num_classes: int = 1000, in_channels: int = 3, *, dropout: float = 0.2, stochastic_depth_prob: float = 0.2
) -> Layer:
    """efficientnet_b0 (5,288,548 params, 0.386 GMACs at 224², torchvision's eval size):
    ``(N, H, W, in_channels)`` → logits ``(N, num_classes)``; defaults are torchvision's."""
    return _efficientnet("efficientnet_b0", num_classes, in_channels, dropout, stochastic_depth_prob)


@constructor
def efficientnet_b1(
    num_classes: int = 1000, in_channels: int = 3, *, dropout: float = 0.2, stochastic_depth_prob: float = 0.2
) -> Layer:
    """efficientnet_b1 (7,794,184 params, 0.687 GMACs at 240², torchvision's eval size):
    ``(N, H, W, in_channels)`` → logits ``(N, num_classes)``; defaults are torchvision's."""
    return _efficientnet("efficientnet_b1", num_classes, in_channels, dropout, stochastic_depth_prob)


@constructor
def efficientnet_b2(
    num_classes: int = 1000, in_channels: int = 3, *, dropout: float = 0.3, stochastic_depth_prob: float = 0.2
) -> Layer:
    """efficientnet_b2 (9,109,994 params, 1.088 GMACs at 288², torchvision's eval size):
    ``(N, H, W, in_channels)`` → logits ``(N, num_classes)``; defaults are torchvision's."""
    return _efficientnet("efficientnet_b2", num_classes, in_channels, dropout, stochastic_depth_prob)


@constructor
def efficientnet_b3(
    num_classes: int = 1000, in_channels: int = 3, *, dropout: float = 0.3, stochastic_depth_prob: float = 0.2
) -> Layer:
    """efficientnet_b3 (12,233,232 params, 1.827 GMACs at 300², torchvision's eval size):
    ``(N, H, W, in_channels)`` → logits ``(N, num_classes)``; defaults are torchvision's."""
    return _efficientnet("efficientnet_b3", num_classes, in_channels, dropout, stochastic_depth_prob)


@constructor
def efficientnet_b4(
    num_classes: int = 1000, in_channels: int = 3, *, dropout: float = 0.4, stochastic_depth_prob: float = 0.2
) -> Layer:
    """efficientnet_b4 (19,341,616 params, 4.394 GMACs at 380², torchvision's eval size):
    ``(N, H, W, in_channels)`` → logits ``(N, num_classes)``; defaults are torchvision's."""
    return _efficientnet("efficientnet_b4", num_classes, in_channels, dropout, stochastic_depth_prob)


@constructor
def efficientnet_b5(
    num_classes: int = 1000, in_channels: int = 3, *, dropout: float = 0.4, stochastic_depth_prob: float = 0.2
) -> Layer:
    """efficientnet_b5 (30,389,784 params, 10.266 GMACs at 456², torchvision's eval size):
    ``(N, H, W, in_channels)`` → logits ``(N, num_classes)``; defaults are torchvision's."""
    return _efficientnet("efficientnet_b5", num_classes, in_channels, dropout, stochastic_depth_prob)


@constructor
def efficientnet_b6(
    num_classes: int = 1000, in_channels: int = 3, *, dropout: float = 0.5, stochastic_depth_prob: float = 0.2
) -> Layer:
    """efficientnet_b6 (43,040,704 params, 19.068 GMACs at 528², torchvision's eval size):
    ``(N, H, W, in_channels)`` → logits ``(N, num_classes)``; defaults are torchvision's."""
    return _efficientnet("efficientnet_b6", num_classes, in_channels, dropout, stochastic_depth_prob)


@constructor
def efficientnet_b7(
    num_classes: int = 1000, in_channels: int = 3, *, dropout: float = 0.5, stochastic_depth_prob: float = 0.2
) -> Layer:
    """efficientnet_b7 (66,347,960 params, 37.746 GMACs at 600², torchvision's eval size):
    ``(N, H, W, in_channels)`` → logits ``(N, num_classes)``; defaults are torchvision's."""
    return _efficientnet("efficientnet_b7", num_classes, in_channels, dropout, stochastic_depth_prob)


@constructor
def efficientnet_v2_s(
    num_classes: int = 1000, in_channels: int = 3, *, dropout: float = 0.2, stochastic_depth_prob: float = 0.2
) -> Layer:
    """efficientnet_v2_s (21,458,488 params, 8.366 GMACs at 384², torchvision's eval size):
    ``(N, H, W, in_channels)`` → logits ``(N, num_classes)``; defaults are torchvision's."""
    return _efficientnet("efficientnet_v2_s", num_classes, in_channels, dropout, stochastic_depth_prob)


@constructor
def efficientnet_v2_m(
    num_classes: int = 1000, in_channels: int = 3, *, dropout: float = 0.3, stochastic_depth_prob: float = 0.2
) -> Layer:
    """efficientnet_v2_m (54,139,356 params, 24.582 GMACs at 480², torchvision's eval size):
    ``(N, H, W, in_channels)`` → logits ``(N, num_classes)``; defaults are torchvision's."""
    return _efficientnet("efficientnet_v2_m", num_classes, in_channels, dropout, stochastic_depth_prob)


@constructor
def efficientnet_v2_l(
    num_classes: int = 1000, in_channels: int = 3, *, dropout: float = 0.4, stochastic_depth_prob: float = 0.2
) -> Layer:
    """efficientnet_v2_l (118,515,272 params, 56.08 GMACs at 480², torchvision's eval size):
    ``(N, H, W, in_channels)`` → logits ``(N, num_classes)``; defaults are torchvision's."""
    return _efficientnet("efficientnet_v2_l", num_classes, in_channels, dropout, stochastic_depth_prob)


__all__ = [
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "efficientnet_b4",
    "efficientnet_b5",
    "efficientnet_b6",
    "efficientnet_b7",
    "efficientnet_v2_s",
    "efficientnet_v2_m",
    "efficientnet_v2_l",
    "efficientnet",
    "stages",
    "mbconv",
]
