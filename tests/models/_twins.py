"""The zoo's PyTorch twins (torchvision's architectures and key names, channels-first) are
``jcnn.interop.torch_twins``, shared with ``jcnn verify``; the tests use the same ones."""

from jcnn.interop.torch_twins import (  # noqa: F401
    VGG,
    BasicBlock,
    Bottleneck,
    InvertedResidual,
    MobileNetV1,
    MobileNetV2,
    ResNet,
    conv_bn_act,
    lenet5,
    make_divisible,
    twin,
)
