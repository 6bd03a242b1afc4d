"""Layers as pure ``(init, apply)`` pairs (DESIGN.md §3), re-exported at ``jcnn.*``."""

from jcnn.layers.base import Layer, make_layer
from jcnn.layers.combinators import Identity, add, concat, fan_out, parallel, residual, serial

# -- exports (each module adds its own line below) --
from jcnn.layers.normalization import BatchNorm, GroupNorm, InstanceNorm, LayerNorm, LocalContrastNorm, LocalResponseNorm
from jcnn.layers.dense import Dense

import types as _types

__all__ = [n for n, v in dict(globals()).items() if not n.startswith("_") and not isinstance(v, _types.ModuleType)]
