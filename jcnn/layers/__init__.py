"""Layers as pure ``(init, apply)`` pairs with their structure declared as data, re-exported at ``jcnn.*``."""

# -- exports (each module adds its own line below) --
from jcnn.layers.activations import (
    Elu,
    Gelu,
    HardSigmoid,
    HardSwish,
    HardTanh,
    LeakyRelu,
    LogSoftmax,
    PRelu,
    Relu,
    Relu6,
    Sigmoid,
    Silu,
    Softmax,
    Softplus,
    Tanh,
    elementwise,
)
from jcnn.layers.base import Layer, apply_child, init_child, make_layer, wrapper
from jcnn.layers.blocks import LayerScale, SqueezeExcitation
from jcnn.layers.combinators import Identity, add, concat, fan_out, parallel, residual, serial
from jcnn.layers.conv import Conv, ConvTranspose
from jcnn.layers.dense import Dense
from jcnn.layers.dropout import Dropout, StochasticDepth
from jcnn.layers.normalization import (
    BatchNorm,
    GroupNorm,
    InstanceNorm,
    LayerNorm,
    LocalContrastNorm,
    LocalResponseNorm,
)
from jcnn.layers.pooling import AdaptiveAvgPool, AdaptiveMaxPool, AvgPool, GlobalAvgPool, GlobalMaxPool, LPPool, MaxPool
from jcnn.layers.remat import remat
from jcnn.layers.reshape import Flatten, Reshape
from jcnn.layers.structure import walk

# Written out so that type checkers see the re-exports (tests/test_docs.py checks it lists every import above).
__all__ = [
    "Elu",
    "Gelu",
    "HardSigmoid",
    "HardSwish",
    "HardTanh",
    "LeakyRelu",
    "LogSoftmax",
    "PRelu",
    "Relu",
    "Relu6",
    "Sigmoid",
    "Silu",
    "Softmax",
    "Softplus",
    "Tanh",
    "elementwise",
    "Layer",
    "apply_child",
    "init_child",
    "make_layer",
    "wrapper",
    "LayerScale",
    "SqueezeExcitation",
    "Identity",
    "add",
    "concat",
    "fan_out",
    "parallel",
    "residual",
    "serial",
    "Conv",
    "ConvTranspose",
    "Dense",
    "Dropout",
    "StochasticDepth",
    "BatchNorm",
    "GroupNorm",
    "InstanceNorm",
    "LayerNorm",
    "LocalContrastNorm",
    "LocalResponseNorm",
    "AdaptiveAvgPool",
    "AdaptiveMaxPool",
    "AvgPool",
    "GlobalAvgPool",
    "GlobalMaxPool",
    "LPPool",
    "MaxPool",
    "remat",
    "Flatten",
    "Reshape",
    "walk",
]
