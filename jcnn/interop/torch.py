"""PyTorch ``state_dict`` ⇄ jcnn ``(params, state)``, for every layer and every zoo model.

A torch key is the jcnn path of a leaf joined by dots, with the leaf renamed: ``kernel``/``scale``/``alpha``
→ ``weight``, ``bias`` → ``bias``, state ``mean``/``var``/``count`` → ``running_mean``/``running_var``/
``num_batches_tracked`` (every layer with running statistics exports ``num_batches_tracked``: its ``count``,
else 0; on import it is optional and only read into a ``count``). So ``{"layer1": {"0": {"conv1":
{"kernel"}}}}`` is ``layer1.0.conv1.weight``, and a zoo model's keys are torchvision's.

Every layout conversion lives here (DESIGN.md §1):

- conv kernels ``(*K, C_in/g, C_out)`` ⇄ torch ``(C_out, C_in/g, *K)``;
- transposed-conv kernels ``(*K, C_in, C_out/g)`` ⇄ torch ``(C_in, C_out/g, *K)``;
- dense kernels ``(in, out)`` ⇄ ``Linear.weight`` ``(out, in)``; for the first dense layer after a flatten
  of ``(N, *S, C)`` (jcnn flattens channels-last, torch ``(N, C, *S)``) the ``in`` axis is also reordered
  from ``(*S, C)`` to ``(C, *S)``, as are the per-feature vectors of shape-preserving layers in between;
- other params with more than one axis (LayerNorm over ``(H, W, C)``) move the channel axis first.

The structure is read from the model itself: ``init`` traced abstractly (no FLOPs, no weights) for the
params/state shapes, and a walk over :attr:`Layer.children` for the layer kinds and the flatten positions.
torch itself is imported only for ``as_tensors=True``; tensors passed in are read with ``.numpy()``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jcnn._types import Params, ShapeTree, State
from jcnn.layers.base import Layer, is_shape

_PARAM_NAMES = {"kernel": "weight", "scale": "weight", "alpha": "weight", "bias": "bias"}
_STATE_NAMES = {"mean": "running_mean", "var": "running_var", "count": "num_batches_tracked"}
_TRACKED = "num_batches_tracked"


class _Entry(NamedTuple):
    """One torch tensor: where it lives in jcnn (``tree`` is ``"params"``/``"state"``/``None`` for an
    exported-only ``num_batches_tracked``), its leaf index there, and the layout conversion."""

    key: str
    tree: str | None
    index: int
    conversion: str
    jcnn_shape: tuple[int, ...]
    layout: tuple[tuple[int, ...], int] | None  # (spatial S, channels C) of a preceding flatten


class _Plan(NamedTuple):
    name: str
    entries: list[_Entry]
    params_def: Any
    state_def: Any
    params_leaves: list[Any]
    state_leaves: list[Any]


# ---------------------------------------------------------------------------------------------- layouts


def _to_torch(x: np.ndarray, conversion: str, layout: tuple[tuple[int, ...], int] | None) -> np.ndarray:
    n = x.ndim - 2
    if conversion == "conv":
        return x.transpose((n + 1, n) + tuple(range(n)))
    if conversion == "conv_transpose":
        return x.transpose((n, n + 1) + tuple(range(n)))
    if conversion == "linear":
        if layout is not None:
            spatial, c = layout
            x = x.reshape(*spatial, c, x.shape[-1])
            x = np.moveaxis(x, -2, 0).reshape(x.shape[-2] * math.prod(spatial), x.shape[-1])
        return x.T
    if conversion == "flat_vector":
        spatial, c = layout  # type: ignore[misc]
        return np.moveaxis(x.reshape(*spatial, c), -1, 0).reshape(-1)
    if conversion == "channels_first":
        return np.moveaxis(x, -1, 0)
    return x


def _from_torch(t: np.ndarray, conversion: str, layout: tuple[tuple[int, ...], int] | None) -> np.ndarray:
    n = t.ndim - 2
    if conversion == "conv":
        return t.transpose(tuple(range(2, n + 2)) + (1, 0))
    if conversion == "conv_transpose":
        return t.transpose(tuple(range(2, n + 2)) + (0, 1))
    if conversion == "linear":
        x = t.T
        if layout is not None:
            spatial, c = layout
            x = np.moveaxis(x.reshape(c, *spatial, x.shape[-1]), 0, -2).reshape(-1, x.shape[-1])
        return x
    if conversion == "flat_vector":
        spatial, c = layout  # type: ignore[misc]
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
    box: dict[str, Any] = {}

    def run(key: Any) -> tuple[Params, State]:
        box["shape"], params, state = layer.init(key, input_shape)
        return params, state

    params, state = jax.eval_shape(run, jax.random.PRNGKey(0))
    return box["shape"], params, state


def _layer_hints(layer: Layer, input_shape: ShapeTree) -> tuple[dict[tuple[str, ...], str], dict]:
    """Kinds of every sub-layer by path, and the flatten layout ``(S, C)`` that reaches each layer which
    consumes a channels-last flatten (the first dense layer after it, and the layers in between)."""
    kinds: dict[tuple[str, ...], str] = {}
    layouts: dict[tuple[str, ...], tuple[tuple[int, ...], int]] = {}

    def walk(node: Layer, path: tuple[str, ...], shape: Any, pending: Any) -> tuple[Any, Any]:
        kinds[path] = node.kind
        children = tuple(getattr(node.init, "jcnn_children", ()))
        if children and node.kind == "serial":
            for name, child in children:
                shape, pending = walk(child, path + (name,), shape, pending)
            return shape, pending
        out = _abstract_init(node, shape)[0] if shape is not None else None
        if children:  # other combinators: only the kinds of their children matter here
            for name, child in children:
                walk(child, path + (name,), None, None)
            return out, None
        if pending is not None and node.kind == "dense":
            layouts[path] = pending
            return out, None
        if (shape is not None and is_shape(shape) and is_shape(out) and len(shape) >= 3 and len(out) == 2
                and out[1] == math.prod(shape[1:]) and math.prod(shape[1:-1]) > 1):
            return out, (tuple(shape[1:-1]), shape[-1])
        if pending is not None and out is not None and tuple(out) == tuple(shape):
            layouts[path] = pending
            return out, pending
        return out, None

    walk(layer, (), input_shape, None)
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
                    conversion = ("conv_transpose" if kinds.get(module) == "conv_transpose"
                                  else "linear" if len(shape) == 2 else "conv" if len(shape) >= 3 else "none")
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
            entries.append(_Entry(".".join(module + (torch_name,)), tree, index, conversion, shape,
                                  layout if conversion in ("linear", "flat_vector") else None))
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
        return value.numpy()
    return np.asarray(value)


def _resolve(model: str | Layer, input_shape: ShapeTree | None, model_kwargs: dict[str, Any],
             shape_of: Any, caller: str) -> _Plan:
    """The plan of the layer and input shape to trace: a zoo name (classes and channels read through
    ``shape_of(torch key)`` unless given) or a Layer with its ``input_shape``."""
    if isinstance(model, str):
        from jcnn.models import MODELS, get_model

        if model not in MODELS:
            raise ValueError(f"{caller}: unknown model {model!r}; expected a Layer or one of {sorted(MODELS)}")
        info = MODELS[model]
        kwargs = dict(model_kwargs)
        if "num_classes" not in kwargs:
            shape = shape_of(info.classifier)
            kwargs["num_classes"] = shape[0] if shape else info.num_classes
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
        raise ValueError(f"{caller}: a Layer needs input_shape=(N, *spatial, C) to trace its params "
                         "(the shapes decide the flatten order before dense layers)")
    return _cached_plan((model, input_shape), model.kind, model, input_shape)


# ---------------------------------------------------------------------------------------------- public


def import_state_dict(model: str | Layer, state_dict: Mapping[str, Any], *, input_shape: ShapeTree | None = None,
                      **model_kwargs: Any) -> tuple[Params, State]:
    """A PyTorch ``state_dict`` (tensors or arrays) → jcnn ``(params, state)`` for ``model``.

    ``model`` is a zoo name (``"resnet18"``: a torchvision ``state_dict()`` loads unchanged; ``num_classes``
    and ``in_channels`` are read from the weights unless given; other keywords go to the model function)
    or a ``Layer`` with its ``input_shape``. Layouts are converted (module docstring); values are cast to
    the dtypes ``init`` gives. Every missing key, unexpected key and wrong shape is listed in one
    ``ValueError``.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"import_state_dict: state_dict must be a mapping of names to tensors, "
                        f"got {type(state_dict).__name__}")

    def shape_of(key: str) -> tuple[int, ...] | None:
        return tuple(state_dict[key].shape) if key in state_dict else None

    plan = _resolve(model, input_shape, model_kwargs, shape_of, "import_state_dict")
    name = plan.name
    problems = []
    expected = {e.key for e in plan.entries}
    for e in plan.entries:
        if e.key not in state_dict:
            if e.tree is not None and not e.key.endswith(_TRACKED):
                problems.append(f"missing key {e.key!r} (expected shape {_torch_shape(e.jcnn_shape, e.conversion)})")
        elif tuple(state_dict[e.key].shape) != _torch_shape(e.jcnn_shape, e.conversion):
            problems.append(f"shape mismatch for {e.key!r}: got {tuple(state_dict[e.key].shape)}, "
                            f"expected {_torch_shape(e.jcnn_shape, e.conversion)}")
    for key in state_dict:
        if key not in expected:
            problems.append(f"unexpected key {key!r} (shape {tuple(state_dict[key].shape)})")
    if problems:
        raise ValueError(f"import_state_dict({name}): the state_dict does not match the model "
                         f"({len(problems)} problems):\n  " + "\n  ".join(problems))
    p_leaves: list[Any] = list(plan.params_leaves)
    s_leaves: list[Any] = list(plan.state_leaves)
    for e in plan.entries:
        leaves = p_leaves if e.tree == "params" else s_leaves
        if e.tree is None:
            continue
        template = leaves[e.index]
        if e.key not in state_dict:  # an optional num_batches_tracked feeding a count
            leaves[e.index] = jnp.zeros(template.shape, template.dtype)
            continue
        value = _from_torch(_to_numpy(state_dict[e.key]), e.conversion, e.layout)
        # A copy: torch's .numpy() shares the tensor's memory, and jnp.asarray may too on CPU.
        leaves[e.index] = jnp.array(np.array(value, dtype=template.dtype), copy=True)
    return (jax.tree_util.tree_unflatten(plan.params_def, p_leaves),
            jax.tree_util.tree_unflatten(plan.state_def, s_leaves))


def export_state_dict(model: str | Layer, params: Params, state: State, *, input_shape: ShapeTree | None = None,
                      as_tensors: bool = False, **model_kwargs: Any) -> dict[str, Any]:
    """jcnn ``(params, state)`` of ``model`` → a PyTorch ``state_dict`` of NumPy arrays (torch tensors with
    ``as_tensors=True``) that the torch twin (torchvision for the zoo) loads with ``strict=True``.

    ``model`` is as for :func:`import_state_dict` (a zoo name reads ``num_classes``/``in_channels`` from
    ``params``). ``params``/``state`` must have the model's structure (else ``TypeError`` naming the
    difference) and shapes (else ``ValueError`` listing each).
    """

    def shape_of(key: str) -> tuple[int, ...] | None:
        path = key[: -len(".weight")].split(".") + ["kernel"]
        node = params
        for p in path:
            if not isinstance(node, Mapping) or p not in node:
                return None
            node = node[p]
        return _torch_shape(tuple(node.shape), "conv" if node.ndim >= 3 else "linear")

    plan = _resolve(model, input_shape, model_kwargs, shape_of, "export_state_dict")
    name = plan.name
    trees = {}
    for what, tree, treedef, templates in (("params", params, plan.params_def, plan.params_leaves),
                                           ("state", state, plan.state_def, plan.state_leaves)):
        leaves, got = jax.tree_util.tree_flatten(tree)
        if got != treedef:
            raise TypeError(f"export_state_dict({name}): {what} do not have the model's structure:\n  got      {got}"
                            f"\n  expected {treedef}")
        bad = [f"{jax.tree_util.keystr(path)}: got {tuple(np.shape(leaf))}, expected {tuple(t.shape)}"
               for (path, leaf), t in zip(jax.tree_util.tree_flatten_with_path(tree)[0], templates)
               if tuple(np.shape(leaf)) != tuple(t.shape)]
        if bad:
            raise ValueError(f"export_state_dict({name}): {what} shapes differ from the model's:\n  "
                             + "\n  ".join(bad))
        trees[what] = leaves
    out: dict[str, Any] = {}
    for e in plan.entries:
        if e.tree is None:
            value = np.zeros((), np.int64)
        else:
            value = np.asarray(trees[e.tree][e.index])
            value = np.array(_to_torch(value, e.conversion, e.layout), order="C")
            if e.key.endswith(_TRACKED):
                value = value.astype(np.int64)
        out[e.key] = value
    if as_tensors:
        import torch

        out = {k: torch.from_numpy(v) for k, v in out.items()}
    return out


def torch_shapes(model: str | Layer, *, input_shape: ShapeTree | None = None,
                 **model_kwargs: Any) -> dict[str, tuple[int, ...]]:
    """The torch ``state_dict`` keys of ``model`` and their shapes, without building any weights."""
    plan = _resolve(model, input_shape, model_kwargs, lambda key: None, "torch_shapes")
    return {e.key: _torch_shape(e.jcnn_shape, e.conversion) for e in plan.entries}


__all__ = ["import_state_dict", "export_state_dict", "torch_shapes"]
