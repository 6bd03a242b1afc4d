"""Integer class labels: the range check made where it is cheap and certain, and its jit-safe twin.

Losses and metrics take class indices ``y`` in ``[0, C)``. A negative index never means "count from
the end" (``ignore_index`` exists for entries to skip) and an index ``>= C`` is never clipped:

* on concrete values (eager calls, also inside an un-jitted ``jax.grad``, where labels are not
  traced) :func:`check_class_indices` raises a ``ValueError`` naming the argument, the first bad
  entry and the valid range;
* on traced values (under ``jax.jit``/``vmap``) nothing can raise, so :func:`invalid` marks the bad
  entries and the caller turns their result into NaN: a bad label never yields a finite, plausible
  number. (``jax.experimental.checkify.checkify(f, errors=checkify.float_checks)`` then reports the
  NaN; the train step's guard stops on it.)

No checked mode built on ``checkify.check``: a check inside a function that is jitted without
``checkify.checkify`` fails to trace ("Cannot abstractly evaluate a checkify.check which was not
functionalized"), so it would break every plain ``jit`` user or need a flag on every loss; ``fit``
checks its whole label arrays once on the host instead, which is exact and costs one pass.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from jcnn._types import Array


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds values now (not a tracer of ``jit``/``grad``/``vmap``)."""
    return not isinstance(x, jax.core.Tracer)


def check_class_indices(
    who: str,
    labels: Any,
    num_classes: int,
    *,
    ignore_index: int | None = None,
    name: str = "labels",
    what: str = "the last axis of the scores",
) -> None:
    """Raise ``ValueError`` when a concrete ``labels`` entry lies outside ``[0, num_classes)`` (entries
    equal to ``ignore_index`` are allowed); a no-op for traced labels."""
    if not is_concrete(labels):
        return
    y = np.asarray(labels)
    if y.size == 0:
        return
    bad = (y < 0) | (y >= num_classes)
    if ignore_index is not None:
        bad &= y != ignore_index
    if not bad.any():
        return
    where = tuple(int(i) for i in np.argwhere(bad)[0])
    value = int(y[where])
    hint = ""
    if value < 0:
        hint = (
            f"; a negative label is not 'the last class': pass ignore_index={value} to skip such entries"
            if ignore_index is None
            else ""
        )
    raise ValueError(
        f"{who}: {name} must be class indices in [0, {num_classes}) ({num_classes} = {what})"
        f"{'' if ignore_index is None else f' or ignore_index={ignore_index}'}, got {value} at index "
        f"{where if len(where) != 1 else where[0]} ({int(bad.sum())} of {y.size} out of range){hint}"
    )


def invalid(labels: Array, num_classes: int, ignore_index: int | None = None) -> Array:
    """Boolean mask of the entries outside ``[0, num_classes)`` that are not ``ignore_index``."""
    bad = (labels < 0) | (labels >= num_classes)
    if ignore_index is not None:
        bad = bad & (labels != ignore_index)
    return bad


def float_class_ids_hint(labels: Array, scores_shape: tuple[int, ...]) -> str:
    """A hint for float labels shaped like class indices (``scores.shape[:-1]``), else ``""``."""
    if len(scores_shape) >= 1 and tuple(labels.shape) == tuple(scores_shape[:-1]):
        return (
            f"; labels of shape {tuple(labels.shape)} look like class indices stored as {labels.dtype}: "
            "cast them to integers (labels.astype(jnp.int32))"
        )
    return ""
