"""Every activation visible: the output of each layer of a model, keyed by its dotted path.

``intermediates(model, params, state, x)`` runs ``model.apply`` once and returns ``(y, {path: output})``
for every named layer (``"features.0"``, ``"layer1.0.conv1"``, … — the paths of ``jcnn.interop.torch``
and checkpoints), or only those whose path matches ``select`` (globs: ``"layer*.0.bn1"``; ``*`` stays
within one path component, ``**`` spans several). It works under ``jax.jit`` and ``jax.grad`` (the
outputs are values of the same computation), and costs nothing when not called: the recording happens
while the Python code of ``apply`` runs (at trace time under ``jit``), so a compiled step without it is
unchanged. ``feature_extractor(model, select)`` is a :class:`~jcnn.layers.Layer` whose output is that dict
(timm's ``features_only``, torchvision's ``create_feature_extractor``).

Layers are recorded in the order they finish (children before their parent). A ``remat`` block runs
without rematerialisation while recording, so that its activations can be returned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jcnn._types import Params, PRNGKey, State
from jcnn.inspection import paths as P
from jcnn.layers.base import _CTX, Layer, apply_child, constructor, init_child, wrapper
from jcnn.layers.structure import layer_paths, walk


class _Recorder:
    """Collects ``{path: value}`` for matching paths, relative to where the recording started; forwards to
    an enclosing recorder so that nested recordings both see every layer."""

    def __init__(self, match: Callable[[str], bool], base: list[str], parent: Any) -> None:
        self.values: dict[str, Any] = {}
        self.match = match
        self.base = ".".join(base)
        self.parent = parent

    def record(self, path: str, value: Any) -> None:
        if self.parent is not None:
            self.parent.record(path, value)
        if self.base:
            if not path.startswith(self.base + "."):
                return
            path = path[len(self.base) + 1 :]
        if self.match(path):
            self.values[path] = value


def _check_select(model: Layer, select: P.Patterns | None, who: str) -> Callable[[str], bool]:
    if select is None:
        return lambda path: True
    unused = P.unused_patterns(select, layer_paths(model), prefix=False)
    if unused:
        known = layer_paths(model)
        shown = ", ".join(known[:16]) + (", …" if len(known) > 16 else "")
        raise ValueError(f"{who}: pattern(s) {unused} match no layer path of the model; its paths are: {shown}")
    return P.matcher(select, prefix=False)


def capture(
    model: Layer,
    params: Params,
    state: State,
    x: Any,
    *,
    train: bool = False,
    key: PRNGKey | None = None,
    select: P.Patterns | None = None,
) -> tuple[Any, State, dict[str, Any]]:
    """``(y, new_state, {path: output})``: :func:`intermediates` that also returns the new state."""
    if not isinstance(model, Layer):
        raise TypeError(f"intermediates: expected a jcnn Layer, got {type(model).__name__}")
    match = _check_select(model, select, "intermediates")
    recorder = _Recorder(match, list(_CTX.path), _CTX.capture)
    _CTX.capture = recorder
    try:
        y, new_state = model.apply(params, state, x, train=train, key=key)
    finally:
        _CTX.capture = recorder.parent
    return y, new_state, recorder.values


def intermediates(
    model: Layer,
    params: Params,
    state: State,
    x: Any,
    *,
    train: bool = False,
    select: P.Patterns | None = None,
    key: PRNGKey | None = None,
) -> tuple[Any, dict[str, Any]]:
    """``(y, {path: output})``: the model's output and the output of every named layer (or of the layers
    whose path matches ``select``; a pattern that matches no layer is a ``ValueError``)."""
    y, _, values = capture(model, params, state, x, train=train, key=key, select=select)
    return y, values


@constructor
def feature_extractor(model: Layer, select: P.Patterns) -> Layer:
    """A Layer with ``model``'s params and state whose output is ``{path: output}`` for the layers matching
    ``select`` (e.g. ``["layer1", "layer2", "layer3", "layer4"]`` for a ResNet's feature pyramid). Under
    ``jit`` the layers after the last selected one are not computed (their results are unused)."""
    if not isinstance(model, Layer):
        raise TypeError(f"feature_extractor: expected a jcnn Layer, got {type(model).__name__}")
    _check_select(model, select, "feature_extractor")
    match = P.matcher(select, prefix=False)

    def apply(params: Params, state: State, x: Any, *, train: bool, key: PRNGKey | None = None) -> tuple[Any, State]:
        recorder = _Recorder(match, list(_CTX.path), _CTX.capture)
        _CTX.capture = recorder
        try:
            _, new_state = apply_child(None, model, params, state, x, train=train, key=key)
        finally:
            _CTX.capture = recorder.parent
        return recorder.values, new_state

    def wiring(input_shape: Any) -> tuple[Any, tuple[Any, ...]]:
        shapes = {n.path: n.output_shape for n in walk(model, input_shape) if n.path and match(n.path)}
        return shapes, (input_shape,)

    def init(key: PRNGKey, input_shape: Any) -> tuple[Any, Params, State]:
        _, params, state = init_child(None, model, key, input_shape)
        return wiring(input_shape)[0], params, state

    layer = wrapper("feature_extractor", model, init=init, apply=apply)
    layer._wiring_fn = wiring
    return layer


__all__ = ["intermediates", "feature_extractor", "capture"]
