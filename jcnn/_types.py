"""Type aliases shared across jcnn (documentation only; nothing here is checked at run time)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

import jax
import numpy as np
import numpy.typing as npt

Array = jax.Array
PRNGKey = jax.Array
Shape = tuple[int, ...]
# A layer's input shape: one shape, or (for parallel/concat/add) a tuple of shapes.
ShapeTree = Union[Shape, tuple["ShapeTree", ...]]
Params = Any
State = Any
PaddingLike = Union[int, str, Sequence[int], Sequence[tuple[int, int]]]
IntOrSeq = Union[int, Sequence[int]]
# The NumPy oracles of jcnn.reference compute in float64.
FloatArray = npt.NDArray[np.float64]
