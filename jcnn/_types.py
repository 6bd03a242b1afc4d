"""Type aliases shared across jcnn (documentation only; nothing here is checked at run time)."""

from __future__ import annotations

from typing import Any, Sequence, Tuple, Union

import jax

Array = jax.Array
PRNGKey = jax.Array
Shape = Tuple[int, ...]
# A layer's input shape: one shape, or (for parallel/concat/add) a tuple of shapes.
ShapeTree = Union[Shape, Tuple["ShapeTree", ...]]
Params = Any
State = Any
PaddingLike = Union[int, str, Sequence[int], Sequence[Tuple[int, int]]]
IntOrSeq = Union[int, Sequence[int]]
