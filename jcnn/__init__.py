"""jcnn: a functional convolutional-network library on JAX.

Layers are pure ``(init, apply)`` pairs over parameter pytrees (``jcnn.layers``, re-exported here),
built on explicit ``jax.lax`` ops (``jcnn.ops``), checked against NumPy oracles (``jcnn.reference``).
"""

from jcnn import _moved, initializers, layers, ops
from jcnn.layers import *  # noqa: F401,F403
from jcnn.layers import __all__ as _layer_names

__version__ = "0.1.0"  # the one place the version is written: pyproject.toml reads it from here

# The public names (tests/test_docs.py checks that every public attribute is listed and documented).
__all__ = [
    *_layer_names,
    "layers",
    "initializers",
    "ops",
    "models",
    "losses",
    "metrics",
    "optim",
    "train",
    "data",
    "checkpoint",
    "precision",
    "paths",
    "summary",
    "intermediates",
    "feature_extractor",
]

# -- exports (each module adds its own line below) --
from jcnn import data, losses, metrics, models, optim
from jcnn.inspection import paths
from jcnn.inspection.intermediates import feature_extractor, intermediates
from jcnn.inspection.summary import summary
from jcnn.scale import precision
from jcnn.training import checkpoint, train

_moved.install()  # the flat names of 0.1 (jcnn.train, jcnn.checkpoint, ...) import from their new homes
