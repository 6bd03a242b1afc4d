"""Building blocks shared by the modern zoo models (MobileNet v3, EfficientNet, ConvNeXt, RegNet):
torchvision's ``Conv2dNormActivation`` with any norm, activation, dilation and init, the init schemes, and
the argument checks."""

from __future__ import annotations

from collections.abc import Callable

from jcnn import initializers as inits
from jcnn import layers as L
from jcnn.layers.base import Layer
from jcnn.models import _blocks as B

NormFactory = Callable[[], Layer]


def kaiming_fan_out() -> inits.Initializer:
    """torch's ``kaiming_normal_(mode="fan_out")`` (gain √2): MobileNet v3, EfficientNet and RegNet convs."""
    return inits.kaiming_normal(mode="fan_out", nonlinearity="relu")


def trunc_normal_002() -> inits.Initializer:
    """torch's ``trunc_normal_(std=0.02)`` (absolute bounds ±2): ConvNeXt's convs and linears."""
    return inits.truncated_normal(0.02)


def batch_norm(eps: float = 1e-5, momentum: float = 0.1) -> NormFactory:
    """A BatchNorm factory with torch's meaning of ``momentum`` (``running ← (1 − m)·running + m·batch``)."""
    return lambda: L.BatchNorm(momentum=momentum, eps=eps)


def conv_norm_act(
    features: int,
    kernel_size: int = 3,
    *,
    stride: int = 1,
    groups: int = 1,
    dilation: int = 1,
    padding: int | None = None,
    norm: NormFactory | None = None,
    act: Layer | None = None,
    use_bias: bool | None = None,
    kernel_init: inits.Initializer | None = None,
    bias_init: inits.Initializer | None = inits.zeros,
) -> Layer:
    """torchvision's ``Conv2dNormActivation`` as ``sequential`` children ``0`` (conv), ``1`` (norm), ``2`` (act):
    padding ``(k − 1)//2·dilation`` unless given, a conv bias only without a norm (unless ``use_bias``)."""
    padding = (kernel_size - 1) // 2 * dilation if padding is None else padding
    use_bias = norm is None if use_bias is None else use_bias
    conv = L.Conv(
        features,
        (kernel_size, kernel_size),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        use_bias=use_bias,
        kernel_init=kernel_init or kaiming_fan_out(),
        bias_init=bias_init,
    )
    children = [conv] + ([norm()] if norm is not None else []) + ([act] if act is not None else [])
    return B.sequential(*children)


def check_probability(model: str, name: str, value: float, *, closed: bool = True) -> None:
    """``value`` a number in ``[0, 1]`` (``[0, 1)`` unless ``closed``) or a ValueError naming ``model.name``."""
    ok = (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and (0 <= value <= 1 if closed else 0 <= value < 1)
    )
    if not ok:
        interval = "[0, 1]" if closed else "[0, 1)"
        raise ValueError(f"{model}: {name} must be a number in {interval}, got {value!r}")


def check_positive(model: str, name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{model}: {name} must be a number > 0, got {value!r}")
