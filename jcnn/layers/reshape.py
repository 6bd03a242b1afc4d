"""Shape-only layers: ``Flatten`` (before the first dense layer, docs/fully_connected.md) and ``Reshape``."""

from __future__ import annotations

import math
from collections.abc import Sequence

from jcnn._types import Array, Params, PRNGKey, Shape, ShapeTree, State
from jcnn.layers.base import Layer, ReadyLayer, check_shape, constructor, make_layer, ready_layer


def _flatten() -> ReadyLayer:
    def shape_rule(input_shape: ShapeTree) -> Shape:
        shape = check_shape("Flatten", input_shape, min_ndim=2, what="(N, ...)")
        return (shape[0], math.prod(shape[1:]))

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[Shape, Params, State]:
        return shape_rule(input_shape), {}, {}

    def apply(
        params: Params, state: State, x: Array, *, train: bool, key: PRNGKey | None = None
    ) -> tuple[Array, State]:
        if x.ndim < 2:
            raise ValueError(f"Flatten: expected an input of rank >= 2 (N, ...), got shape {tuple(x.shape)}")
        return x.reshape(x.shape[0], math.prod(x.shape[1:])), state

    return ready_layer("Flatten", init, apply, shape=shape_rule)


Flatten: ReadyLayer = _flatten()
"""``(N, d1, …, dk) → (N, d1·…·dk)``, row-major over the channels-last layout (C varies fastest).

A ready value (``Flatten()`` is the same layer). torch flattens ``(N, C, H, W)``, so a torch dense layer
after ``nn.Flatten`` sees a different order; ``jcnn.interop.torch`` permutes such weights.
"""


@constructor
def Reshape(shape: Sequence[int]) -> Layer:
    """``(N, *rest) → (N, *shape)``: reshape the non-batch dims, row-major; one entry may be ``-1``
    (inferred). The batch dim is kept. Sizes must match: ``prod(rest) == prod(shape)``."""
    try:
        target = tuple(int(d) for d in shape)
    except TypeError:
        raise TypeError(f"Reshape: shape must be a sequence of ints (without the batch), got {shape!r}") from None
    if target.count(-1) > 1 or any(d < 1 and d != -1 for d in target):
        raise ValueError(f"Reshape: shape needs dims >= 1 and at most one -1, got {shape!r}")

    def resolve(rest: Shape) -> Shape:
        size = math.prod(rest)
        known = math.prod(d for d in target if d != -1)
        if -1 in target:
            if size % known:
                raise ValueError(
                    f"Reshape: cannot reshape non-batch dims {rest} (size {size}) to {target}: "
                    f"{size} is not a multiple of {known}"
                )
            return tuple(size // known if d == -1 else d for d in target)
        if known != size:
            raise ValueError(f"Reshape: cannot reshape non-batch dims {rest} (size {size}) to {target} (size {known})")
        return target

    def shape_rule(input_shape: ShapeTree) -> Shape:
        full = check_shape("Reshape", input_shape, min_ndim=1, what="(N, ...)")
        return (full[0],) + resolve(full[1:])

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[Shape, Params, State]:
        return shape_rule(input_shape), {}, {}

    def apply(
        params: Params, state: State, x: Array, *, train: bool, key: PRNGKey | None = None
    ) -> tuple[Array, State]:
        if x.ndim < 1:
            raise ValueError(f"Reshape: expected an input with a batch dim, got shape {tuple(x.shape)}")
        return x.reshape((x.shape[0],) + resolve(tuple(x.shape[1:]))), state

    return make_layer("Reshape", init, apply, shape=shape_rule, host_init=True)
