"""The model zoo: functions named as torchvision names them, each ``f(num_classes, in_channels, ...) -> Layer``
on channels-last ``(N, H, W, C)`` images, with params that map one-to-one onto the torchvision
``state_dict`` keys (see :mod:`jcnn.interop.torch`).

``MODELS`` maps each name to a :class:`ModelInfo` (the function, default input size, classes and channels);
``get_model(name, ...)`` builds one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from jcnn.layers.base import Layer
from jcnn.models import convnext as _convnext
from jcnn.models import efficientnet as _efficientnet
from jcnn.models import regnet as _regnet
from jcnn.models.convnext import convnext_base, convnext_large, convnext_small, convnext_tiny
from jcnn.models.efficientnet import (
    efficientnet_b0,
    efficientnet_b1,
    efficientnet_b2,
    efficientnet_b3,
    efficientnet_b4,
    efficientnet_b5,
    efficientnet_b6,
    efficientnet_b7,
    efficientnet_v2_l,
    efficientnet_v2_m,
    efficientnet_v2_s,
)
from jcnn.models.lenet import lenet5
from jcnn.models.mobilenet import mobilenet_v1, mobilenet_v2
from jcnn.models.mobilenet_v3 import mobilenet_v3_large, mobilenet_v3_small
from jcnn.models.regnet import (
    regnet_x_1_6gf,
    regnet_x_3_2gf,
    regnet_x_8gf,
    regnet_x_16gf,
    regnet_x_32gf,
    regnet_x_400mf,
    regnet_x_800mf,
    regnet_y_1_6gf,
    regnet_y_3_2gf,
    regnet_y_8gf,
    regnet_y_16gf,
    regnet_y_32gf,
    regnet_y_128gf,
    regnet_y_400mf,
    regnet_y_800mf,
)
from jcnn.models.resnet import resnet18, resnet34, resnet50
from jcnn.models.vgg import vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn


class ModelInfo(NamedTuple):
    """What the zoo knows about a model. Fields read as attributes or by name (``info["input_size"]``).

    ``input_size`` is the ``(H, W)`` the model is meant for; ``first_conv`` / ``classifier`` are the torch
    keys of the first conv weight and the last linear weight (in_channels and num_classes are read there).
    """

    fn: Callable[..., Layer]
    input_size: tuple[int, int]
    num_classes: int
    in_channels: int
    description: str
    first_conv: str
    classifier: str

    def __getitem__(self, item: Any) -> Any:
        return getattr(self, item) if isinstance(item, str) else tuple.__getitem__(self, item)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """``(1, H, W, in_channels)`` with the defaults."""
        return (1, *self.input_size, self.in_channels)


MODELS: dict[str, ModelInfo] = {
    "lenet5": ModelInfo(
        lenet5, (32, 32), 10, 1, "LeNet-5 (6-16-120-84), 32x32 inputs", "features.0.weight", "classifier.4.weight"
    ),
    **{
        name: ModelInfo(
            fn,
            (224, 224),
            1000,
            3,
            f"{name.upper().replace('_BN', ' with BatchNorm')} (torchvision)",
            "features.0.weight",
            "classifier.6.weight",
        )
        for name, fn in (
            ("vgg11", vgg11),
            ("vgg11_bn", vgg11_bn),
            ("vgg13", vgg13),
            ("vgg13_bn", vgg13_bn),
            ("vgg16", vgg16),
            ("vgg16_bn", vgg16_bn),
        )
    },
    **{
        name: ModelInfo(
            fn, (224, 224), 1000, 3, f"ResNet-{name[6:]} ({kind}, torchvision)", "conv1.weight", "fc.weight"
        )
        for name, fn, kind in (
            ("resnet18", resnet18, "basic blocks"),
            ("resnet34", resnet34, "basic blocks"),
            ("resnet50", resnet50, "bottlenecks"),
        )
    },
    "mobilenet_v1": ModelInfo(
        mobilenet_v1,
        (224, 224),
        1000,
        3,
        "MobileNet v1 (depthwise-separable)",
        "features.0.0.weight",
        "classifier.1.weight",
    ),
    "mobilenet_v2": ModelInfo(
        mobilenet_v2,
        (224, 224),
        1000,
        3,
        "MobileNet v2 (inverted residuals, torchvision)",
        "features.0.0.weight",
        "classifier.1.weight",
    ),
    # -- modern CNNs (torchvision's keys); input_size is torchvision's evaluation crop --
    "mobilenet_v3_large": ModelInfo(
        mobilenet_v3_large,
        (224, 224),
        1000,
        3,
        "MobileNet v3 Large (SE, hard-swish, torchvision)",
        "features.0.0.weight",
        "classifier.3.weight",
    ),
    "mobilenet_v3_small": ModelInfo(
        mobilenet_v3_small,
        (224, 224),
        1000,
        3,
        "MobileNet v3 Small (SE, hard-swish, torchvision)",
        "features.0.0.weight",
        "classifier.3.weight",
    ),
    **{
        name: ModelInfo(
            globals()[name],
            (size, size),
            1000,
            3,
            f"EfficientNet-{name[13:].upper().replace('_', '-')} (MBConv + SE, torchvision)",
            "features.0.0.weight",
            "classifier.1.weight",
        )
        # the tables' last column is the crop size; merged, the checker sees int | float there
        for name, size in [(n, int(v[-1])) for n, v in {**_efficientnet.V1_SCALING, **_efficientnet.V2_SCALING}.items()]
    },
    **{
        name: ModelInfo(
            globals()[name],
            (224, 224),
            1000,
            3,
            f"ConvNeXt-{name[9:].capitalize()} (torchvision)",
            "features.0.0.weight",
            "classifier.2.weight",
        )
        for name in _convnext.SIZES
    },
    **{
        name: ModelInfo(
            globals()[name],
            (224, 224),
            1000,
            3,
            f"RegNet{name[7].upper()}-{name[9:].upper().replace('_', '.')} (torchvision)",
            "stem.0.weight",
            "fc.weight",
        )
        for name in _regnet.CONFIGS
    },
}
"""Every zoo model by name, with what the zoo knows about it."""


def get_model(name: str, num_classes: int | None = None, in_channels: int | None = None, **kwargs: Any) -> Layer:
    """Build the zoo model ``name`` (a key of ``MODELS``); unset ``num_classes``/``in_channels`` take its
    defaults, other keywords go to the model function (e.g. ``zero_init_residual=True``)."""
    if name not in MODELS:
        raise ValueError(f"get_model: unknown model {name!r}; expected one of {sorted(MODELS)}")
    info = MODELS[name]
    return info.fn(
        num_classes=info.num_classes if num_classes is None else num_classes,
        in_channels=info.in_channels if in_channels is None else in_channels,
        **kwargs,
    )


__all__ = [
    "MODELS",
    "ModelInfo",
    "get_model",
    "lenet5",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "resnet18",
    "resnet34",
    "resnet50",
    "mobilenet_v1",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    *_efficientnet.V1_SCALING,
    *_efficientnet.V2_SCALING,
    *_convnext.SIZES,
    *_regnet.CONFIGS,
]
