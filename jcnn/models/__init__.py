"""The model zoo: functions named as torchvision names them, each ``f(num_classes, in_channels, ...) -> Layer``
on channels-last ``(N, H, W, C)`` images, with params that map one-to-one onto the torchvision
``state_dict`` keys (see :mod:`jcnn.interop.torch`).

``MODELS`` maps each name to a :class:`ModelInfo` (the function, default input size, classes and channels);
``get_model(name, ...)`` builds one.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from jcnn.layers.base import Layer
from jcnn.models.lenet import lenet5
from jcnn.models.mobilenet import mobilenet_v1, mobilenet_v2
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

    def __getitem__(self, item: Any) -> Any:  # type: ignore[override]
        return getattr(self, item) if isinstance(item, str) else tuple.__getitem__(self, item)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """``(1, H, W, in_channels)`` with the defaults."""
        return (1, *self.input_size, self.in_channels)


MODELS: dict[str, ModelInfo] = {
    "lenet5": ModelInfo(lenet5, (32, 32), 10, 1, "LeNet-5 (6-16-120-84), 32x32 inputs",
                        "features.0.weight", "classifier.4.weight"),
    **{name: ModelInfo(fn, (224, 224), 1000, 3, f"{name.upper().replace('_BN', ' with BatchNorm')} (torchvision)",
                       "features.0.weight", "classifier.6.weight")
       for name, fn in (("vgg11", vgg11), ("vgg11_bn", vgg11_bn), ("vgg13", vgg13), ("vgg13_bn", vgg13_bn),
                        ("vgg16", vgg16), ("vgg16_bn", vgg16_bn))},
    **{name: ModelInfo(fn, (224, 224), 1000, 3, f"ResNet-{name[6:]} ({kind}, torchvision)", "conv1.weight",
                       "fc.weight")
       for name, fn, kind in (("resnet18", resnet18, "basic blocks"), ("resnet34", resnet34, "basic blocks"),
                              ("resnet50", resnet50, "bottlenecks"))},
    "mobilenet_v1": ModelInfo(mobilenet_v1, (224, 224), 1000, 3, "MobileNet v1 (depthwise-separable)",
                              "features.0.0.weight", "classifier.1.weight"),
    "mobilenet_v2": ModelInfo(mobilenet_v2, (224, 224), 1000, 3, "MobileNet v2 (inverted residuals, torchvision)",
                              "features.0.0.weight", "classifier.1.weight"),
}
"""Every zoo model by name, with what the zoo knows about it."""


def get_model(name: str, num_classes: int | None = None, in_channels: int | None = None, **kwargs: Any) -> Layer:
    """Build the zoo model ``name`` (a key of ``MODELS``); unset ``num_classes``/``in_channels`` take its
    defaults, other keywords go to the model function (e.g. ``zero_init_residual=True``)."""
    if name not in MODELS:
        raise ValueError(f"get_model: unknown model {name!r}; expected one of {sorted(MODELS)}")
    info = MODELS[name]
    return info.fn(num_classes=info.num_classes if num_classes is None else num_classes,
                   in_channels=info.in_channels if in_channels is None else in_channels, **kwargs)


__all__ = ["MODELS", "ModelInfo", "get_model", "lenet5", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16",
           "vgg16_bn", "resnet18", "resnet34", "resnet50", "mobilenet_v1", "mobilenet_v2"]
