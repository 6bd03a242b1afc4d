"""PyTorch ``state_dict`` ⇄ jcnn ``(params, state)``, for every layer and every zoo model.

A torch key is the jcnn path of a leaf joined by dots, with the leaf renamed: ``kernel``/``scale``/``alpha``
→ ``weight``, ``bias`` → ``bias``, state ``mean``/``var``/``count`` → ``running_mean``/``running_var``/
``num_batches_tracked`` (every layer with running statistics exports ``num_batches_tracked``: its ``count``,
else 0; on import it is optional and only read into a ``count``). So ``{"layer1": {"0": {"conv1":
{"kernel"}}}}`` is ``layer1.0.conv1.weight``, and a zoo model's keys are torchvision's.

Every layout conversion lives here (docs/design.md §1):

- conv kernels ``(*K, C_in/g, C_out)`` ⇄ torch ``(C_out, C_in/g, *K)``;
- transposed-conv kernels ``(*K, C_in, C_out/g)`` ⇄ torch ``(C_in, C_out/g, *K)``;
- dense kernels ``(in, out)`` ⇄ ``Linear.weight`` ``(out, in)``; for the first dense layer after a flatten
  of ``(N, *S, C)`` (jcnn flattens channels-last, torch ``(N, C, *S)``) the ``in`` axis is also reordered
  from ``(*S, C)`` to ``(C, *S)``, as are the per-feature vectors of shape-preserving layers in between;
- other params with more than one axis (LayerNorm over ``(H, W, C)``) move the channel axis first.

A ``LayerScale``'s ``scale`` ``(1, 1, C)`` is torch's bare parameter ``<path>`` of shape ``(C, 1, 1)``
(torchvision's ``CNBlock.layer_scale``).

The structure is read from the model itself: ``init`` traced abstractly (no FLOPs, no weights) for the
params/state shapes, and the declared tree (:func:`jcnn.layers.structure.walk`'s shape rules) for the layer
kinds and the flatten positions. torch itself is imported only for ``as_tensors=True``; tensors passed in
are read with ``.numpy()``.

torch counts ``num_batches_tracked`` (train-mode calls) in every BatchNorm; jcnn keeps such a count only
for ``momentum=None`` (where the average needs it). :func:`export_state_dict` writes that count, else the
``num_batches_tracked`` you pass (e.g. ``train_state.step``: every BatchNorm of a model trained by
``fit`` sees every step), else 0.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import numpy as np

from jcnn._types import Params, ShapeTree, State
from jcnn.layers.base import Layer, abstract_init, is_shape
from jcnn.layers.structure import child_path

_PARAM_NAMES = {"kernel": "weight", "scale": "weight", "alpha": "weight", "bias": "bias"}
_STATE_NAMES = {"mean": "running_mean", "var": "running_var", "count": "num_batches_tracked"}
_TRACKED = "num_batches_tracked"


_Layout = tuple[tuple[int, ...], int]
"""The ``(spatial S, channels C)`` of a channels-last flatten of ``(N, *S, C)``."""


class _Entry(NamedTuple):
    """One torch tensor: where it lives in jcnn (``tree`` is ``"params"``/``"state"``/``None`` for an
    exported-only ``num_batches_tracked``), its leaf index there, and the layout conversion."""

    key: str
    tree: str | None
    leaf: int  # not ``index``: a NamedTuple field of that name shadows ``tuple.index``
    conversion: str
    jcnn_shape: tuple[int, ...]
    layout: _Layout | None  # (spatial S, channels C) of a preceding flatten


class _Plan(NamedTuple):
    name: str
    entries: list[_Entry]
    params_def: Any
    state_def: Any
    params_leaves: list[Any]
    state_leaves: list[Any]


# ---------------------------------------------------------------------------------------------- layouts


# np.transpose(x, axes) rather than x.transpose(axes) / x.T: NumPy's stubs type those methods' results
# (``Self``) as Any under Python 3.10; the function is the same call.


def _to_torch(x: np.ndarray, conversion: str, layout: _Layout | None) -> np.ndarray:
    n = x.ndim - 2
    if conversion == "conv":
        return np.transpose(x, (n + 1, n) + tuple(range(n)))
    if conversion == "conv_transpose":
        return np.transpose(x, (n, n + 1) + tuple(range(n)))
    if conversion == "linear":
        if layout is not None:
            spatial, c = layout
            x = x.reshape(*spatial, c, x.shape[-1])
            x = np.moveaxis(x, -2, 0).reshape(x.shape[-2] * math.prod(spatial), x.shape[-1])
        return np.transpose(x)
    if conversion == "flat_vector":
        assert layout is not None, "a flat_vector entry carries its flatten layout (_plan)"
        spatial, c = layout
        return np.moveaxis(x.reshape(*spatial, c), -1, 0).reshape(-1)
    if conversion == "channels_first":
        return np.moveaxis(x, -1, 0)
    return x


def _from_torch(t: np.ndarray, conversion: str, layout: _Layout | None) -> np.ndarray:
    n = t.ndim - 2
    if conversion == "conv":
        return np.transpose(t, tuple(range(2, n + 2)) + (1, 0))
    if conversion == "conv_transpose":
        return np.transpose(t, tuple(range(2, n + 2)) + (0, 1))
    if conversion == "linear":
        x = np.transpose(t)
        if layout is not None:
            spatial, c = layout
            x = np.moveaxis(x.reshape(c, *spatial, x.shape[-1]), 0, -2).reshape(-1, x.shape[-1])
        return x
    if conversion == "flat_vector":
        assert layout is not None, "a flat_vector entry carries its flatten layout (_plan)"
        spatial, c = layout
        return np.moveaxis(t.reshape(c, *spatial), 0, -1).reshape(-1)
    if conversion == "channels_first":
        return np.moveaxis(t, 0, -1)
    return t


def _torch_shape(shape: tuple[int, ...], conversion: str) -> tuple[int, ...]:
    n = len(shape) - 2
    if conversion == "conv":
        return (shape[n + 1], shape[n]) + shape[:n]
    if conversion == "conv_transpose":
        return (shape[n], shape[n + 1]) + shape[:n]
    if conversion == "linear":
        return shape[::-1]
    if conversion == "channels_first":
        return (shape[-1],) + shape[:-1]
    return shape


# ---------------------------------------------------------------------------------------------- structure


def _abstract_init(layer: Layer, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
    """``layer.init`` traced with ``jax.eval_shape``: output shape and ShapeDtypeStruct pytrees, no FLOPs."""
    out, (params, state) = abstract_init(layer, input_shape)
    return out, params, state


def _sequential(node: Layer) -> bool:
    """A combinator whose children run one after another on one value: ``serial`` and wrappers."""
    return node.kind == "serial" or (len(node.children) == 1 and node.children[0][0] is None)


def _layer_hints(
    layer: Layer, input_shape: ShapeTree
) -> tuple[dict[tuple[str, ...], str], dict[tuple[str, ...], _Layout]]:
    """Kinds of every leaf layer by path, and the flatten layout ``(S, C)`` that reaches each layer which
    consumes a channels-last flatten (the first dense layer after it, and the layers in between), from
    the declared tree: sequential combinators carry a pending layout from child to child, others start
    each branch afresh."""
    kinds: dict[tuple[str, ...], str] = {}
    layouts: dict[tuple[str, ...], _Layout] = {}

    def key(path: str) -> tuple[str, ...]:
        return tuple(path.split(".")) if path else ()

    def visit(node: Layer, path: str, shape: Any, pending: Any) -> Any:
        if node.children:
            wired = node.wiring(shape) if shape is not None else None
            inputs = wired[1] if wired is not None else [None] * len(node.children)
            for (name, child), child_shape in zip(node.children, inputs):
                carried = visit(child, child_path(path, name), child_shape, pending if _sequential(node) else None)
                if _sequential(node):
                    pending = carried
            return pending if _sequential(node) else None
        kinds[key(path)] = node.kind
        if shape is None:
            return None
        out = node.output_shape(shape)
        if pending is not None and node.kind == "Dense":
            layouts[key(path)] = pending
            return None
        if (
            is_shape(shape)
            and is_shape(out)
            and len(shape) >= 3
            and len(out) == 2
            and out[1] == math.prod(shape[1:])
            and math.prod(shape[1:-1]) > 1
        ):
            return (tuple(shape[1:-1]), shape[-1])
        if pending is not None and tuple(out) == tuple(shape):
            layouts[key(path)] = pending
            return pending
        return None

    visit(layer, "", input_shape, None)
    return kinds, layouts


def _path_names(path: tuple[Any, ...]) -> tuple[str, ...]:
    names = []
    for p in path:
        for attr in ("key", "name", "idx"):
            if hasattr(p, attr):
                names.append(str(getattr(p, attr)))
                break
        else:
            names.append(str(p))
    return tuple(names)


def _plan(name: str, layer: Layer, input_shape: ShapeTree) -> _Plan:
    _, params, state = _abstract_init(layer, input_shape)
    kinds, layouts = _layer_hints(layer, input_shape)
    p_leaves, p_def = jax.tree_util.tree_flatten_with_path(params)
    s_leaves, s_def = jax.tree_util.tree_flatten_with_path(state)
    entries: list[_Entry] = []
    stats_modules: dict[tuple[str, ...], bool] = {}
    for tree, leaves in (("params", p_leaves), ("state", s_leaves)):
        for index, (path, leaf) in enumerate(leaves):
            names = _path_names(path)
            module, leaf_name = names[:-1], names[-1]
            shape = tuple(leaf.shape)
            layout = layouts.get(module)
            if tree == "params":
                torch_name = _PARAM_NAMES.get(leaf_name, leaf_name)
                if leaf_name == "kernel":
                    conversion = (
                        "conv_transpose"
                        if kinds.get(module) == "ConvTranspose"
                        else "linear"
                        if len(shape) == 2
                        else "conv"
                        if len(shape) >= 3
                        else "none"
                    )
                elif layout is not None and shape == (math.prod(layout[0]) * layout[1],):
                    conversion = "flat_vector"
                else:
                    conversion = "channels_first" if len(shape) > 1 else "none"
            else:
                torch_name = _STATE_NAMES.get(leaf_name, leaf_name)
                if layout is not None and shape == (math.prod(layout[0]) * layout[1],):
                    conversion = "flat_vector"
                else:
                    conversion = "channels_first" if len(shape) > 1 else "none"
                if leaf_name in ("mean", "var"):
                    stats_modules.setdefault(module, False)
                if leaf_name == "count":
                    stats_modules[module] = True
            parts = module + (torch_name,)
            if tree == "params" and kinds.get(module) == "LayerScale":
                # torch keeps a layer scale as a bare nn.Parameter named after the layer (torchvision's
                # CNBlock.layer_scale): its key is the layer's own path, with no ".weight"
                parts = module
            entries.append(
                _Entry(
                    ".".join(parts),
                    tree,
                    index,
                    conversion,
                    shape,
                    layout if conversion in ("linear", "flat_vector") else None,
                )
            )
    for module, has_count in stats_modules.items():
        if not has_count:
            entries.append(_Entry(".".join(module + (_TRACKED,)), None, -1, "none", (), None))
    keys = [e.key for e in entries]
    clashes = sorted({k for k in keys if keys.count(k) > 1})
    if clashes:
        raise ValueError(f"{name}: several jcnn leaves map to the same torch keys {clashes}; rename the layers")
    return _Plan(name, entries, p_def, s_def, [leaf for _, leaf in p_leaves], [leaf for _, leaf in s_leaves])


_PLANS: OrderedDict[Any, _Plan] = OrderedDict()


def _cached_plan(key: Any, name: str, layer: Layer, input_shape: ShapeTree) -> _Plan:
    """:func:`_plan`, remembered for the 16 latest (model, input shape) pairs: tracing a zoo model takes
    seconds and a round trip needs its plan twice."""
    try:
        hash(key)
    except TypeError:
        return _plan(name, layer, input_shape)
    if key in _PLANS:
        _PLANS.move_to_end(key)
        return _PLANS[key]
    plan = _PLANS[key] = _plan(name, layer, input_shape)
    if len(_PLANS) > 16:
        _PLANS.popitem(last=False)
    return plan


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor; bfloat16 has no NumPy dtype
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        array: np.ndarray = value.numpy()
        return array
    return np.asarray(value)


def _resolve(
    model: str | Layer, input_shape: ShapeTree | None, model_kwargs: dict[str, Any], shape_of: Any, caller: str
) -> _Plan:
    """The plan of the layer and input shape to trace: a zoo name (classes and channels read through
    ``shape_of(torch key)`` unless given) or a Layer with its ``input_shape``."""
    if isinstance(model, str):
        from jcnn.models import MODELS, get_model

        if model not in MODELS:
            raise ValueError(f"{caller}: unknown model {model!r}; expected a Layer or one of {sorted(MODELS)}")
        info = MODELS[model]
        kwargs = dict(model_kwargs)
        if "num_classes" not in kwargs:
            # the bias first: a transposed weight would otherwise give its input size as the class count
            bias, weight = shape_of(info.classifier[: -len("weight")] + "bias"), shape_of(info.classifier)
            kwargs["num_classes"] = bias[0] if bias else weight[0] if weight else info.num_classes
        if "in_channels" not in kwargs:
            shape = shape_of(info.first_conv)
            kwargs["in_channels"] = shape[1] if shape else info.in_channels
        layer = get_model(model, **kwargs)
        if input_shape is None:
            input_shape = (1, *info.input_size, kwargs["in_channels"])
        return _cached_plan((model, tuple(sorted(kwargs.items())), input_shape), model, layer, input_shape)
    if not isinstance(model, Layer):
        raise TypeError(f"{caller}: model must be a zoo name or a Layer, got {type(model).__name__}")
    if model_kwargs:
        raise TypeError(f"{caller}: model keywords {sorted(model_kwargs)} only apply to zoo names")
    if input_shape is None:
        raise ValueError(
            f"{caller}: a Layer needs input_shape=(N, *spatial, C) to trace its params "
            "(the shapes decide the flatten order before dense layers)"
        )
    return _cached_plan((model, input_shape), model.kind, model, input_shape)


# ---------------------------------------------------------------------------------------------- public


class LoadReport(NamedTuple):
    """What a ``strict=False`` import left out: torch keys the model has but the state_dict lacks
    (``missing``), keys the model does not have (``unexpected``), and keys whose shapes differ
    (``mismatched``: ``(key, got, expected)``). Those params keep the values of ``into``."""

    missing: list[str]
    unexpected: list[str]
    mismatched: list[list[str | tuple[int, ...]]]


def _as_arrays(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """The state_dict's values as things with a ``shape`` (tensors and arrays as they are; nested lists of
    numbers become arrays); a value that is not numeric is a ``TypeError`` naming its key."""
    out = {}
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise TypeError(f"import_state_dict: state_dict keys must be strings, got {key!r}")
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            out[key] = value
            continue
        array = np.asarray(value)
        if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise TypeError(
                f"import_state_dict: the value of {key!r} is not a tensor or array of numbers, "
                f"got {type(value).__name__}"
            )
        out[key] = array
    return out


def import_state_dict(
    model: str | Layer,
    state_dict: Mapping[str, Any],
    *,
    input_shape: ShapeTree | None = None,
    strict: bool = True,
    into: tuple[Params, State] | None = None,
    **model_kwargs: Any,
) -> Any:
    """A PyTorch ``state_dict`` (tensors or arrays) → jcnn ``(params, state)`` for ``model``.

    ``model`` is a zoo name (``"resnet18"``: a torchvision ``state_dict()`` loads unchanged; ``num_classes``
    and ``in_channels`` are read from the weights unless given — the classes from the classifier's bias;
    other keywords go to the model function) or a ``Layer`` with its ``input_shape``. Layouts are converted
    (module docstring); values are cast to the dtypes ``init`` gives. Every missing key, unexpected key and
    wrong shape is listed in one ``ValueError``.

    ``strict=False`` loads what matches into ``into=(params, state)`` (e.g. a fresh ``init``: a new head for
    fine-tuning keeps its initial weights) and returns ``(params, state, LoadReport)``.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"import_state_dict: state_dict must be a mapping of names to tensors, got {type(state_dict).__name__}"
        )
    if not isinstance(strict, bool):
        raise TypeError(f"import_state_dict: strict must be True or False, got {strict!r}")
    if not strict and into is None:
        raise ValueError(
            "import_state_dict: strict=False needs into=(params, state) to keep the params the "
            "state_dict does not give (e.g. into=model.init(key, input_shape)[1:])"
        )
    arrays = _as_arrays(state_dict)

    def shape_of(key: str) -> tuple[int, ...] | None:
        return tuple(arrays[key].shape) if key in arrays else None

    plan = _resolve(model, input_shape, model_kwargs, shape_of, "import_state_dict")
    name = plan.name
    missing, unexpected, mismatched = [], [], []
    expected = {e.key for e in plan.entries}
    for e in plan.entries:
        want = _torch_shape(e.jcnn_shape, e.conversion)
        if e.key not in arrays:
            if e.tree is not None and not e.key.endswith(_TRACKED):
                missing.append(e.key)
        elif tuple(arrays[e.key].shape) != want:
            mismatched.append((e.key, tuple(arrays[e.key].shape), want))
    unexpected = [key for key in arrays if key not in expected]
    if strict and (missing or unexpected or mismatched):
        problems = (
            [
                f"missing key {k!r} (expected shape {_torch_shape(e.jcnn_shape, e.conversion)})"
                for e in plan.entries
                for k in [e.key]
                if k in missing
            ]
            + [f"shape mismatch for {k!r}: got {got}, expected {want}" for k, got, want in mismatched]
            + [f"unexpected key {k!r} (shape {tuple(arrays[k].shape)})" for k in unexpected]
        )
        raise ValueError(
            f"import_state_dict({name}): the state_dict does not match the model "
            f"({len(problems)} problems):\n  "
            + "\n  ".join(problems)
            + "\n(strict=False, into=(params, state) loads what matches)"
        )
    if into is not None:
        base_p, base_s = _check_into(name, into, plan)
    else:
        base_p, base_s = list(plan.params_leaves), list(plan.state_leaves)
    p_leaves: list[Any] = list(base_p)
    s_leaves: list[Any] = list(base_s)
    skip = set(missing) | {k for k, _, _ in mismatched}
    for e in plan.entries:
        leaves = p_leaves if e.tree == "params" else s_leaves
        if e.tree is None or e.key in skip:
            continue
        template = plan.params_leaves[e.leaf] if e.tree == "params" else plan.state_leaves[e.leaf]
        if e.key not in arrays:  # an optional num_batches_tracked feeding a count
            if into is None:
                leaves[e.leaf] = jax.device_put(np.zeros(template.shape, template.dtype))
            continue
        value = _from_torch(_to_numpy(arrays[e.key]), e.conversion, e.layout)
        # A copy: torch's .numpy() shares the tensor's memory, and JAX may alias host memory on CPU; the
        # fresh NumPy copy is JAX's alone. device_put: jnp.array/asarray compile a copy per shape (~0.05 s).
        leaves[e.leaf] = jax.device_put(np.array(value, dtype=template.dtype, copy=True))
    params = jax.tree_util.tree_unflatten(plan.params_def, p_leaves)
    state = jax.tree_util.tree_unflatten(plan.state_def, s_leaves)
    if strict:
        return params, state
    return params, state, LoadReport(missing, unexpected, [list(m) for m in mismatched])


def _check_into(name: str, into: Any, plan: _Plan) -> tuple[list[Any], list[Any]]:
    if not isinstance(into, (tuple, list)) or len(into) != 2:
        raise TypeError(f"import_state_dict({name}): into must be a (params, state) pair, got {type(into).__name__}")
    out = []
    for what, tree, treedef, templates in (
        ("params", into[0], plan.params_def, plan.params_leaves),
        ("state", into[1], plan.state_def, plan.state_leaves),
    ):
        leaves, got = jax.tree_util.tree_flatten(tree)
        if got != treedef:
            raise TypeError(
                f"import_state_dict({name}): into's {what} do not have the model's structure:\n  "
                f"got      {got}\n  expected {treedef}"
            )
        bad = [
            f"{i}: got {tuple(np.shape(a))}, expected {tuple(t.shape)}"
            for i, (a, t) in enumerate(zip(leaves, templates))
            if tuple(np.shape(a)) != tuple(t.shape)
        ]
        if bad:
            raise ValueError(f"import_state_dict({name}): into's {what} shapes differ from the model's: {bad}")
        out.append(leaves)
    return out[0], out[1]


def export_state_dict(
    model: str | Layer,
    params: Params,
    state: State,
    *,
    input_shape: ShapeTree | None = None,
    as_tensors: bool = False,
    num_batches_tracked: int | None = None,
    **model_kwargs: Any,
) -> dict[str, Any]:
    """jcnn ``(params, state)`` of ``model`` → a PyTorch ``state_dict`` of NumPy arrays (torch tensors with
    ``as_tensors=True``) that the torch twin (torchvision for the zoo) loads with ``strict=True``.

    ``model`` is as for :func:`import_state_dict` (a zoo name reads ``num_classes``/``in_channels`` from
    ``params``). ``params``/``state`` must have the model's structure (else ``TypeError`` naming the
    difference) and shapes (else ``ValueError`` listing each). ``num_batches_tracked`` (e.g.
    ``train_state.step``) is written for every BatchNorm that keeps no count of its own (module docstring).
    """
    if num_batches_tracked is not None and (
        isinstance(num_batches_tracked, bool)
        or int(num_batches_tracked) < 0
        or int(num_batches_tracked) != num_batches_tracked
    ):
        raise ValueError(f"export_state_dict: num_batches_tracked must be an int >= 0, got {num_batches_tracked!r}")

    def shape_of(key: str) -> tuple[int, ...] | None:
        module, leaf = key.rsplit(".", 1)
        node = params
        for p in module.split(".") + ["kernel" if leaf == "weight" else leaf]:
            if not isinstance(node, Mapping) or p not in node:
                return None
            node = node[p]
        if leaf != "weight":
            return tuple(node.shape)
        return _torch_shape(tuple(node.shape), "conv" if node.ndim >= 3 else "linear")

    plan = _resolve(model, input_shape, model_kwargs, shape_of, "export_state_dict")
    name = plan.name
    trees = {}
    for what, tree, treedef, templates in (
        ("params", params, plan.params_def, plan.params_leaves),
        ("state", state, plan.state_def, plan.state_leaves),
    ):
        leaves, got = jax.tree_util.tree_flatten(tree)
        if got != treedef:
            raise TypeError(
                f"export_state_dict({name}): {what} do not have the model's structure:\n  got      {got}"
                f"\n  expected {treedef}"
            )
        bad = [
            f"{jax.tree_util.keystr(path)}: got {tuple(np.shape(leaf))}, expected {tuple(t.shape)}"
            for (path, leaf), t in zip(jax.tree_util.tree_flatten_with_path(tree)[0], templates)
            if tuple(np.shape(leaf)) != tuple(t.shape)
        ]
        if bad:
            raise ValueError(
                f"export_state_dict({name}): {what} shapes differ from the model's:\n  " + "\n  ".join(bad)
            )
        trees[what] = leaves
    out: dict[str, Any] = {}
    for e in plan.entries:
        if e.tree is None:
            value = np.asarray(int(num_batches_tracked or 0), np.int64)
        else:
            value = np.asarray(trees[e.tree][e.leaf])
            value = np.array(_to_torch(value, e.conversion, e.layout), order="C")
            if e.key.endswith(_TRACKED):
                value = value.astype(np.int64)
        out[e.key] = value
    if as_tensors:
        import torch

        out = {k: torch.from_numpy(v) for k, v in out.items()}
    return out


def torch_shapes(
    model: str | Layer, *, input_shape: ShapeTree | None = None, **model_kwargs: Any
) -> dict[str, tuple[int, ...]]:
    """The torch ``state_dict`` keys of ``model`` and their shapes, without building any weights."""
    plan = _resolve(model, input_shape, model_kwargs, lambda key: None, "torch_shapes")
    return {e.key: _torch_shape(e.jcnn_shape, e.conversion) for e in plan.entries}


__all__ = ["import_state_dict", "export_state_dict", "torch_shapes", "LoadReport"]
