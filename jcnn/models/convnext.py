"""ConvNeXt (Liu et al. 2022, "A ConvNet for the 2020s") as torchvision's ``convnext_tiny`` … ``convnext_large``,
key for key.

``features.0`` is the patchify stem (``0`` 4×4/4 conv with bias, ``1`` LayerNorm over channels);
``features.1, 3, 5, 7`` are stages of ConvNeXt blocks, ``features.2, 4, 6`` the downsamplers (``0``
LayerNorm, ``1`` 2×2/2 conv). A block is ``x + stochastic_depth(layer_scale · block(x))`` with ``block`` =
``0`` 7×7 depthwise conv, ``2`` LayerNorm(eps 1e-6), ``3`` Linear to 4×, ``4`` GELU, ``5`` Linear back
(``features.1.0.block.3.weight``; ``1`` and ``6`` are torchvision's NCHW⇄NHWC permutes, identities on
jcnn's channels-last data) and ``layer_scale`` a per-channel γ (``features.1.0.layer_scale``, torch shape
``(C, 1, 1)``, initialised to ``layer_scale``). The stochastic-depth rate grows linearly from 0 to
``stochastic_depth_prob`` over the blocks. Head: global average pool, ``classifier`` = ``0`` LayerNorm,
``1`` Flatten, ``2`` Linear. Every LayerNorm is ``LayerNorm(axes=-1, eps=1e-6)``, i.e. torchvision's
``LayerNorm2d``: over channels, biased variance, affine γ = 1, β = 0. Init: convs and linears
N(0, 0.02) truncated to ±2 (torch's ``trunc_normal_``), zero biases.

Input sizes: multiples of 32 (32×32 for CIFAR gives 8×8 after the stem and a 1×1 last stage; no stem
adaptation is made, as for every zoo model at 32×32).
"""

from __future__ import annotations

from jcnn import initializers as inits
from jcnn import layers as L
from jcnn.layers.base import Layer, constructor
from jcnn.models import _blocks as B
from jcnn.models import _modern as M

# name: (stage widths, stage depths, default stochastic depth probability)
SIZES = {
    "convnext_tiny": ((96, 192, 384, 768), (3, 3, 9, 3), 0.1),
    "convnext_small": ((96, 192, 384, 768), (3, 3, 27, 3), 0.4),
    "convnext_base": ((128, 256, 512, 1024), (3, 3, 27, 3), 0.5),
    "convnext_large": ((192, 384, 768, 1536), (3, 3, 27, 3), 0.5),
}


def _norm() -> Layer:
    return L.LayerNorm(axes=-1, eps=1e-6)


def _conv(features: int, kernel: int, *, stride: int = 1, padding: int = 0, groups: int = 1) -> Layer:
    return L.Conv(
        features,
        (kernel, kernel),
        stride=stride,
        padding=padding,
        groups=groups,
        kernel_init=M.trunc_normal_002(),
        bias_init=inits.zeros,
    )


def _linear(features: int) -> Layer:
    return L.Dense(features, kernel_init=M.trunc_normal_002(), bias_init=inits.zeros)


def cn_block(dim: int, layer_scale: float, sd_prob: float) -> Layer:
    """torchvision's ``CNBlock``: ``x + stochastic_depth(layer_scale · block(x))``."""
    block = B.sequential(
        _conv(dim, 7, padding=3, groups=dim), L.Identity, _norm(), _linear(4 * dim), L.Gelu(), _linear(dim), L.Identity
    )
    body = L.serial(
        ("block", block),
        ("layer_scale", L.LayerScale(layer_scale)),
        ("stochastic_depth", L.StochasticDepth(sd_prob, "row")),
    )
    return L.residual(body, L.Identity, block_name=None, shortcut_name=None)


def _convnext(
    name: str,
    num_classes: int,
    in_channels: int,
    stochastic_depth_prob: float | None,
    layer_scale: float,
    widths: tuple[int, ...] | None = None,
    depths: tuple[int, ...] | None = None,
) -> Layer:
    B.check_classes(name, num_classes)
    default_sd = 0.1
    if widths is None:
        widths, depths, default_sd = SIZES[name]
    assert depths is not None  # given with widths (convnext) or from SIZES
    sd = default_sd if stochastic_depth_prob is None else stochastic_depth_prob
    M.check_probability(name, "stochastic_depth_prob", sd)
    M.check_positive(name, "layer_scale", layer_scale)
    features = [B.sequential(_conv(widths[0], 4, stride=4), _norm())]
    total, index = sum(depths), 0
    for i, (width, depth) in enumerate(zip(widths, depths)):
        blocks = []
        for _ in range(depth):
            blocks.append(cn_block(width, layer_scale, sd * index / max(total - 1.0, 1.0)))
            index += 1
        features.append(B.sequential(*blocks))
        if i + 1 < len(widths):
            features.append(B.sequential(_norm(), _conv(widths[i + 1], 2, stride=2)))
    classifier = B.sequential(_norm(), L.Flatten, _linear(num_classes))
    model = L.serial(("features", B.sequential(*features)), ("avgpool", L.GlobalAvgPool), ("classifier", classifier))
    return B.expect_input(model, name, in_channels)


@constructor
def convnext(
    widths: tuple[int, ...],
    depths: tuple[int, ...],
    num_classes: int = 1000,
    in_channels: int = 3,
    *,
    stochastic_depth_prob: float = 0.1,
    layer_scale: float = 1e-6,
) -> Layer:
    """A ConvNeXt of any stage widths and depths (torchvision's ``ConvNeXt(block_setting)``); same keys and
    init as :func:`convnext_tiny`."""
    widths, depths = tuple(widths), tuple(depths)
    if (
        not widths
        or len(widths) != len(depths)
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in widths + depths)
    ):
        raise ValueError(
            f"convnext: widths and depths must be equally long tuples of ints >= 1, got {widths!r} and {depths!r}"
        )
    return _convnext("convnext", num_classes, in_channels, stochastic_depth_prob, layer_scale, widths, depths)


@constructor
def convnext_tiny(
    num_classes: int = 1000, in_channels: int = 3, *, stochastic_depth_prob: float = 0.1, layer_scale: float = 1e-6
) -> Layer:
    """ConvNeXt-T (28,589,128 params, 4.46 GMACs at 224²): ``(N, H, W, in_channels)`` → logits."""
    return _convnext("convnext_tiny", num_classes, in_channels, stochastic_depth_prob, layer_scale)


@constructor
def convnext_small(
    num_classes: int = 1000, in_channels: int = 3, *, stochastic_depth_prob: float = 0.4, layer_scale: float = 1e-6
) -> Layer:
    """ConvNeXt-S (50,223,688 params, 8.68 GMACs at 224²): ``(N, H, W, in_channels)`` → logits."""
    return _convnext("convnext_small", num_classes, in_channels, stochastic_depth_prob, layer_scale)


@constructor
def convnext_base(
    num_classes: int = 1000, in_channels: int = 3, *, stochastic_depth_prob: float = 0.5, layer_scale: float = 1e-6
) -> Layer:
    """ConvNeXt-B (88,591,464 params, 15.36 GMACs at 224²): ``(N, H, W, in_channels)`` → logits."""
    return _convnext("convnext_base", num_classes, in_channels, stochastic_depth_prob, layer_scale)


@constructor
def convnext_large(
    num_classes: int = 1000, in_channels: int = 3, *, stochastic_depth_prob: float = 0.5, layer_scale: float = 1e-6
) -> Layer:
    """ConvNeXt-L (197,767,336 params, 34.36 GMACs at 224²): ``(N, H, W, in_channels)`` → logits."""
    return _convnext("convnext_large", num_classes, in_channels, stochastic_depth_prob, layer_scale)


__all__ = ["convnext_tiny", "convnext_small", "convnext_base", "convnext_large", "convnext", "cn_block"]
