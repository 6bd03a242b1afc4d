"""The generic Layer contract (DESIGN.md §3), checked on ONE table of every layer in ``jcnn.layers``.

Each row is ``pytest.param(name, layer_factory, input_shape)``: ``name`` is the exported constructor (or
ready layer, or combinator) the row covers; ``input_shape`` is a shape, or a tuple of shapes for layers
that take a tuple of inputs. Every test below runs on every row.
"""

from __future__ import annotations

import functools
import inspect
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jcnn.layers as L
from tests.helpers import assert_close

TABLE = [
    # -- convolution and dense --
    pytest.param("Conv", lambda: L.Conv(4, (3, 3), padding=1), (2, 6, 5, 3), id="Conv-2d"),
    pytest.param(
        "Conv",
        lambda: L.Conv(6, (3,), stride=2, padding=1, groups=3, padding_mode="reflect"),
        (2, 9, 3),
        id="Conv-1d-groups-reflect",
    ),
    pytest.param(
        "Conv",
        lambda: L.Conv(2, (2, 2, 2), dilation=(1, 2, 1), use_bias=False, flip=True),
        (1, 4, 5, 3, 2),
        id="Conv-3d-dilated-nobias",
    ),
    pytest.param(
        "ConvTranspose",
        lambda: L.ConvTranspose(4, 3, stride=2, padding=1, output_padding=1),
        (2, 4, 3, 3),
        id="ConvTranspose-2d",
    ),
    pytest.param(
        "ConvTranspose",
        lambda: L.ConvTranspose(4, 2, groups=2, use_bias=False, spatial_dims=1),
        (2, 5, 2),
        id="ConvTranspose-1d-groups",
    ),
    pytest.param("Dense", lambda: L.Dense(5), (3, 4), id="Dense"),
    pytest.param("Dense", lambda: L.Dense(2, use_bias=False), (2, 3, 4), id="Dense-leading-axes"),
    # -- pooling --
    pytest.param("MaxPool", lambda: L.MaxPool(2), (2, 6, 6, 3), id="MaxPool"),
    pytest.param(
        "MaxPool", lambda: L.MaxPool((3,), stride=2, padding=1, ceil_mode=True), (2, 8, 3), id="MaxPool-1d-ceil"
    ),
    pytest.param(
        "AvgPool", lambda: L.AvgPool((2, 3), stride=1, padding=1, count_include_pad=False), (2, 5, 6, 3), id="AvgPool"
    ),
    pytest.param("LPPool", lambda: L.LPPool(2, 2), (2, 6, 6, 3), id="LPPool"),
    pytest.param("GlobalAvgPool", lambda: L.GlobalAvgPool, (2, 5, 4, 3), id="GlobalAvgPool"),
    pytest.param("GlobalMaxPool", lambda: L.GlobalMaxPool, (2, 4, 4, 2, 3), id="GlobalMaxPool-3d"),
    pytest.param("AdaptiveAvgPool", lambda: L.AdaptiveAvgPool((2, 3)), (2, 5, 7, 3), id="AdaptiveAvgPool"),
    pytest.param("AdaptiveMaxPool", lambda: L.AdaptiveMaxPool(2, spatial_dims=1), (2, 5, 3), id="AdaptiveMaxPool-1d"),
    # -- shape, dropout --
    pytest.param("Flatten", lambda: L.Flatten, (2, 3, 4, 2), id="Flatten"),
    pytest.param("Reshape", lambda: L.Reshape((-1, 4)), (2, 3, 4, 2), id="Reshape"),
    pytest.param("Dropout", lambda: L.Dropout(0.5), (2, 6, 3), id="Dropout"),
    pytest.param("StochasticDepth", lambda: L.StochasticDepth(0.5), (4, 3, 2), id="StochasticDepth"),
    # -- activations --
    pytest.param("Relu", lambda: L.Relu, (2, 5, 3), id="Relu"),
    pytest.param("Relu6", lambda: L.Relu6, (2, 5, 3), id="Relu6"),
    pytest.param("Sigmoid", lambda: L.Sigmoid, (2, 5, 3), id="Sigmoid"),
    pytest.param("Tanh", lambda: L.Tanh, (2, 5, 3), id="Tanh"),
    pytest.param("Silu", lambda: L.Silu, (2, 5, 3), id="Silu"),
    pytest.param("HardTanh", lambda: L.HardTanh, (2, 5, 3), id="HardTanh"),
    pytest.param("LeakyRelu", lambda: L.LeakyRelu(0.1), (2, 5, 3), id="LeakyRelu"),
    pytest.param("Elu", lambda: L.Elu(0.5), (2, 5, 3), id="Elu"),
    pytest.param("Gelu", lambda: L.Gelu(approximate=True), (2, 5, 3), id="Gelu-tanh"),
    pytest.param("Softplus", lambda: L.Softplus(beta=2.0), (2, 5, 3), id="Softplus"),
    pytest.param("Softmax", lambda: L.Softmax(), (2, 5, 3), id="Softmax"),
    pytest.param("LogSoftmax", lambda: L.LogSoftmax(axis=1), (2, 5, 3), id="LogSoftmax-axis1"),
    pytest.param("PRelu", lambda: L.PRelu(3), (2, 5, 3), id="PRelu-per-channel"),
    pytest.param("HardSigmoid", lambda: L.HardSigmoid, (2, 5, 3), id="HardSigmoid"),
    pytest.param("HardSwish", lambda: L.HardSwish, (2, 5, 3), id="HardSwish"),
    # -- modern-CNN blocks --
    pytest.param(
        "SqueezeExcitation",
        lambda: L.SqueezeExcitation(4, 2, scale_activation=L.HardSigmoid),
        (2, 3, 3, 4),
        id="SqueezeExcitation",
    ),
    pytest.param("LayerScale", lambda: L.LayerScale(0.5), (2, 3, 3, 4), id="LayerScale"),
    # -- combinators --
    pytest.param("Identity", lambda: L.Identity, (2, 3), id="Identity"),
    pytest.param(
        "serial", lambda: L.serial(L.Conv(4, 3), L.Relu, L.Flatten, ("head", L.Dense(2))), (2, 5, 5, 2), id="serial"
    ),
    pytest.param("fan_out", lambda: L.fan_out(2), (2, 3), id="fan_out"),
    pytest.param("parallel", lambda: L.parallel(L.Dense(3), L.Tanh), ((2, 4), (2, 3)), id="parallel"),
    pytest.param("concat", lambda: L.concat(), ((2, 4), (2, 3)), id="concat"),
    pytest.param("add", lambda: L.add(), ((2, 3), (2, 3)), id="add"),
    pytest.param(
        "residual", lambda: L.residual(L.serial(L.Conv(3, 3, padding=1), L.Relu)), (2, 4, 4, 3), id="residual"
    ),
    pytest.param("remat", lambda: L.remat(L.serial(L.Dense(4), L.Dropout(0.25))), (2, 3), id="remat"),
    pytest.param("wrapper", lambda: L.wrapper("wrapped", L.Dense(3)), (2, 4), id="wrapper"),
    pytest.param("elementwise", lambda: L.elementwise("Cube", lambda x: x**3), (2, 3), id="elementwise"),
    # -- normalization layers --
    # (this block belongs to the normalization engineer; rows here were seeded by the layers engineer)
    pytest.param("BatchNorm", lambda: L.BatchNorm(), (4, 3, 3, 2), id="BatchNorm"),
    pytest.param("LayerNorm", lambda: L.LayerNorm(), (2, 3, 4), id="LayerNorm"),
    pytest.param("InstanceNorm", lambda: L.InstanceNorm(affine=True), (2, 4, 4, 3), id="InstanceNorm"),
    pytest.param("GroupNorm", lambda: L.GroupNorm(2), (2, 3, 3, 4), id="GroupNorm"),
    pytest.param("LocalResponseNorm", lambda: L.LocalResponseNorm(3), (2, 4, 4, 5), id="LocalResponseNorm"),
    pytest.param("LocalContrastNorm", lambda: L.LocalContrastNorm(3), (2, 6, 6, 2), id="LocalContrastNorm"),
    pytest.param("BatchNorm", lambda: L.BatchNorm(momentum=None), (6, 4), id="BatchNorm-1d-cumulative"),
    pytest.param(
        "BatchNorm", lambda: L.BatchNorm(track_running_stats=False), (2, 3, 2, 3, 2), id="BatchNorm-3d-batch-stats"
    ),
    pytest.param("LayerNorm", lambda: L.LayerNorm(axes=-1), (2, 4, 4, 3), id="LayerNorm-channels"),
    pytest.param(
        "InstanceNorm",
        lambda: L.InstanceNorm(affine=True, track_running_stats=True),
        (2, 5, 3),
        id="InstanceNorm-1d-running",
    ),
    pytest.param("GroupNorm", lambda: L.GroupNorm(1), (2, 5, 3), id="GroupNorm-1d-one-group"),
    pytest.param(
        "LocalContrastNorm",
        lambda: L.LocalContrastNorm((3, 5), window="uniform", divisive="max", across_channels=True),
        (2, 6, 7, 3),
        id="LocalContrastNorm-jarrett",
    ),
    # -- end of normalization layers --
]

# DESIGN.md §3 parameter key names; rows whose name is absent here must have no params at all.
PARAM_KEYS = {
    "Conv": {"kernel", "bias"},
    "ConvTranspose": {"kernel", "bias"},
    "Dense": {"kernel", "bias"},
    "PRelu": {"alpha"},
    "LayerScale": {"scale"},
    "BatchNorm": {"scale", "bias"},
    "LayerNorm": {"scale", "bias"},
    "InstanceNorm": {"scale", "bias"},
    "GroupNorm": {"scale", "bias"},
}
COMBINATORS = {
    "serial",
    "parallel",
    "residual",
    "remat",
    "wrapper",
    "SqueezeExcitation",
}  # params keyed by child names (checked apart)

KEY = jax.random.PRNGKey(0)


def _is_shape(s) -> bool:
    return all(isinstance(d, int) for d in s)


def _map_shapes(fn, shape):
    return fn(shape) if _is_shape(shape) else tuple(_map_shapes(fn, s) for s in shape)


def _random_input(shape, dtype=jnp.float32, seed=1):
    rng = np.random.default_rng(seed)
    return _map_shapes(lambda s: jax.device_put(rng.standard_normal(s).astype(dtype)), shape)


def _tree_shapes(tree):
    return jax.tree_util.tree_map(lambda a: tuple(a.shape), tree)


def _out_shapes(y):
    return tuple(a.shape for a in y) if isinstance(y, tuple) else tuple(y.shape)


@functools.cache
def _built(factory, input_shape):
    layer = factory()
    out_shape, params, state = layer.init(KEY, input_shape)
    x = _random_input(input_shape)
    return layer, out_shape, params, state, x


@functools.cache
def _forward(factory, input_shape):
    """The row's eval-mode apply, jitted once and shared by the tests (compiles dominate their cost)."""
    layer = _built(factory, input_shape)[0]
    return jax.jit(functools.partial(layer.apply, train=False))


ROWS = pytest.mark.parametrize("name, factory, input_shape", TABLE)


@ROWS
def test_declared_output_shape_matches_apply(name, factory, input_shape):
    layer, out_shape, params, state, x = _built(factory, input_shape)
    y, _ = _forward(factory, input_shape)(params, state, x)
    assert _out_shapes(y) == _map_shapes(tuple, out_shape)
    # An unknown batch (-1) gives the same shape with the batch reported back as -1.
    unknown = _map_shapes(lambda s: (-1,) + tuple(s[1:]), input_shape)
    out_unknown, params_u, state_u = layer.init(KEY, unknown)
    assert out_unknown == _map_shapes(lambda s: (-1,) + tuple(s[1:]), _map_shapes(tuple, out_shape))
    assert _tree_shapes(params_u) == _tree_shapes(params)
    assert _tree_shapes(state_u) == _tree_shapes(state)


@ROWS
def test_jit_equals_eager(name, factory, input_shape):
    layer, _, params, state, x = _built(factory, input_shape)
    eager, eager_state = layer.apply(params, state, x, train=False)
    jitted, jit_state = _forward(factory, input_shape)(params, state, x)
    for a, b in zip(jax.tree_util.tree_leaves(jitted), jax.tree_util.tree_leaves(eager)):
        assert a.dtype == b.dtype
        assert_close(a, b, what=f"{name}: jit vs eager")
    assert jax.tree_util.tree_structure(jit_state) == jax.tree_util.tree_structure(eager_state)


@ROWS
def test_grad_wrt_params_and_input_is_finite(name, factory, input_shape):
    layer, _, params, state, x = _built(factory, input_shape)

    def loss(p, xx):
        y, _ = layer.apply(p, state, xx, train=False)
        # A fixed non-uniform weighting, so that softmax-like layers get a non-zero gradient.
        return sum(
            jnp.sum(jnp.sin(leaf) * jnp.arange(1, leaf.size + 1, dtype=leaf.dtype).reshape(leaf.shape))
            for leaf in jax.tree_util.tree_leaves(y)
        )

    grads_p, grads_x = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, x)
    assert _tree_shapes(grads_p) == _tree_shapes(params)
    # assertions in NumPy: an eager jnp reduction would compile a program per leaf shape
    for g in jax.tree_util.tree_leaves((grads_p, grads_x)):
        assert np.isfinite(np.asarray(g)).all(), name
    assert any(np.asarray(g).any() for g in jax.tree_util.tree_leaves(grads_x)), f"{name}: zero input gradient"


@ROWS
def test_vmap_over_an_extra_leading_axis(name, factory, input_shape):
    layer, _, params, state, _ = _built(factory, input_shape)
    xs = _random_input(_map_shapes(lambda s: (2,) + tuple(s), input_shape), seed=2)

    def run(xx):
        return layer.apply(params, state, xx, train=False)[0]

    batched = jax.jit(jax.vmap(run))(xs)
    for i in range(2):
        # slicing in NumPy: an eager a[i] compiles a program per shape
        element = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a)[i]), xs)
        single = _forward(factory, input_shape)(params, state, element)[0]
        for b, s in zip(jax.tree_util.tree_leaves(batched), jax.tree_util.tree_leaves(single)):
            assert_close(np.asarray(b)[i], s, what=f"{name}: vmap element {i}")


@ROWS
def test_bfloat16_input_stays_bfloat16(name, factory, input_shape):
    layer, _, params, state, _ = _built(factory, input_shape)
    x = _random_input(input_shape, jnp.bfloat16)
    y, new_state = _forward(factory, input_shape)(params, state, x)
    for leaf in jax.tree_util.tree_leaves(y):
        assert leaf.dtype == jnp.bfloat16, f"{name}: output dtype {leaf.dtype}"
        assert np.isfinite(np.asarray(leaf, np.float32)).all(), name
    assert _tree_shapes(new_state) == _tree_shapes(state)


@ROWS
def test_train_mode_keeps_the_state_structure(name, factory, input_shape):
    layer, out_shape, params, state, x = _built(factory, input_shape)
    y, new_state = layer.apply(params, state, x, train=True, key=jax.random.PRNGKey(3))
    assert _out_shapes(y) == _map_shapes(tuple, out_shape)
    assert jax.tree_util.tree_structure(new_state) == jax.tree_util.tree_structure(state)
    for new, old in zip(jax.tree_util.tree_leaves(new_state), jax.tree_util.tree_leaves(state)):
        assert new.shape == old.shape and new.dtype == old.dtype, name


@ROWS
def test_param_key_names(name, factory, input_shape):
    layer, _, params, _, _ = _built(factory, input_shape)
    assert isinstance(params, dict)
    if name in COMBINATORS:
        expected_children = {child for child, _ in layer.children}
        assert set(params) == expected_children or name in ("remat", "wrapper")
    elif name in PARAM_KEYS:
        assert params and set(params) <= PARAM_KEYS[name], f"{name}: params keys {sorted(params)}"
    else:
        assert params == {}, f"{name} should have no params, got {sorted(params)}"
    for leaf in jax.tree_util.tree_leaves(params):
        assert leaf.dtype == jnp.float32, f"{name}: params must default to float32, got {leaf.dtype}"


@ROWS
def test_apply_without_train_is_a_type_error(name, factory, input_shape):
    layer, _, params, state, x = _built(factory, input_shape)
    with pytest.raises(TypeError, match="train"):
        layer.apply(params, state, x)


def _exported_layers() -> set[str]:
    """Every public name of ``jcnn.layers`` that is a Layer or returns one (by its annotation)."""
    names = set()
    for n in L.__all__:
        value = getattr(L, n)
        if n in ("Layer", "make_layer") or inspect.isclass(value):
            continue
        if isinstance(value, L.Layer):
            names.add(n)
        elif callable(value):
            ret = inspect.signature(value).return_annotation
            if ret in (L.Layer, "Layer") or (isinstance(ret, str) and ret.endswith("Layer")):
                names.add(n)
    return names


def test_every_exported_layer_is_in_the_table():
    covered = {p.values[0] for p in TABLE}
    exported = _exported_layers()
    assert {"Conv", "Relu", "serial", "Dense", "GlobalAvgPool"} <= exported  # the detector itself works
    missing = sorted(exported - covered)
    assert not missing, f"add rows to TABLE for: {missing}"
    assert not covered - exported, f"TABLE names that jcnn.layers does not export: {sorted(covered - exported)}"


@ROWS
def test_declared_structure_rule_repr_and_children(name, factory, input_shape):
    """The declared output-shape rule equals eval_shape of apply; repr names the kind (and a
    hyperparameter where the constructor has one); the children's names are the params keys."""
    from jcnn.layers.base import infer_output_shape, param_keys

    layer, out_shape, params, state, _ = _built(factory, input_shape)
    assert layer.declared, f"{name}: no closed-form shape rule"
    assert layer.output_shape(input_shape) == _map_shapes(tuple, out_shape)
    assert infer_output_shape(layer.apply, params, state, input_shape) == layer.output_shape(input_shape)
    text = repr(layer)
    assert text.startswith(layer.kind) and name in (layer.kind, "wrapper", "elementwise")
    shown = [k for k, v in layer.hparams.items() if not k.endswith("_init") and not isinstance(v, L.Layer)]
    if layer._signature is not None and any(
        p.default is inspect.Parameter.empty for k, p in layer._signature.parameters.items() if k in shown
    ):
        first = next(k for k, p in layer._signature.parameters.items() if k in shown)
        assert repr(layer.hparams[first]) in text, f"{name}: repr {text!r} lacks {first}"
    if layer.children:
        keys = param_keys(layer)
        assert keys is None or (isinstance(params, dict) and set(params) == keys)


@ROWS
def test_bad_params_and_inputs_name_what_is_wrong(name, factory, input_shape):
    """A missing, an unexpected and a wrong-shaped param are each named by path; train must be a bool;
    complex inputs and Python lists are rejected with a hint."""
    layer, _, params, state, x = _built(factory, input_shape)
    apply = functools.partial(layer.apply, train=False)
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    if leaves:
        path, leaf = leaves[-1]
        dotted = ".".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
        dropped = _without(params, path)
        with pytest.raises(TypeError, match=rf"params missing {re.escape(dotted)} \(expected shape"):
            apply(dropped, state, x)
        grown = _with_extra(params, path, "kernal")
        with pytest.raises(TypeError, match=r"params unexpected .*kernal \(shape \(3,\)\)"):
            apply(grown, state, x)
        wrong = jax.tree_util.tree_unflatten(
            jax.tree_util.tree_structure(params),
            [v if p != path else jnp.asarray(np.zeros(tuple(v.shape) + (2,), v.dtype)) for p, v in leaves],
        )
        with pytest.raises((ValueError, TypeError), match=rf"{re.escape(dotted)}: got shape|{layer.kind}: "):
            apply(wrong, state, x)
    with pytest.raises(TypeError, match=r"train must be True or False, got 'no'"):
        layer.apply(params, state, x, train="no")
    first = jax.tree_util.tree_leaves(x)[0]
    bad = (
        (first.astype(jnp.complex64),) + tuple(jax.tree_util.tree_leaves(x)[1:])
        if isinstance(x, tuple)
        else first.astype(jnp.complex64)
    )
    with pytest.raises(TypeError, match=r"complex inputs are not supported"):
        apply(params, state, bad)
    with pytest.raises(TypeError, match=r"expected an array .* got list; convert it with jnp.asarray"):
        apply(params, state, np.asarray(first).tolist())


def _without(tree, path):
    if len(path) == 1:
        return {k: v for k, v in tree.items() if k != path[0].key}
    return {**tree, path[0].key: _without(tree[path[0].key], path[1:])}


def _with_extra(tree, path, name):
    if len(path) == 1:
        return {**tree, name: jnp.asarray(np.zeros(3, np.float32))}
    return {**tree, path[0].key: _with_extra(tree[path[0].key], path[1:], name)}


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st

_ROWS_WITH_TREES = [p for p in TABLE if p.values[0] not in ("Identity",)]


@given(st.data())
def test_random_malformed_params_and_state_name_the_offending_path(data):
    """Property: a random mutation of a layer's params or state (a leaf dropped, an extra leaf, a wrong
    shape, a leaf replaced by a dict) raises TypeError/ValueError naming the path — never a KeyError or
    a silent result."""
    row = data.draw(st.sampled_from(_ROWS_WITH_TREES), "row")
    name, factory, input_shape = row.values
    layer, _, params, state, x = _built(factory, input_shape)
    which = data.draw(
        st.sampled_from(
            [w for w, t in (("params", params), ("state", state)) if jax.tree_util.tree_leaves(t)] or ["params"]
        ),
        "tree",
    )
    tree = params if which == "params" else state
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    kind = data.draw(st.sampled_from(["drop", "extra", "shape", "nest"] if leaves else ["extra"]), "mutation")
    if leaves:
        path, leaf = leaves[data.draw(st.integers(0, len(leaves) - 1), "leaf")]
        dotted = ".".join(str(k.key) for k in path)
    if kind == "drop":
        bad, expect = _without(tree, path), rf"{which} missing {re.escape(dotted)} "
    elif kind == "extra":
        bad = _with_extra(tree, path, "bogus") if leaves else {"bogus": jnp.asarray(np.zeros(3, np.float32))}
        expect = rf"{which} unexpected (.*\.)?bogus "
    elif kind == "shape":
        new = jnp.asarray(np.zeros(tuple(leaf.shape) + (2,), leaf.dtype))
        bad = jax.tree_util.tree_unflatten(
            jax.tree_util.tree_structure(tree), [new if p == path else v for p, v in leaves]
        )
        expect = rf"{re.escape(dotted)}: got shape|{layer.kind}: "
    else:
        bad = jax.tree_util.tree_unflatten(
            jax.tree_util.tree_structure(tree), [{"inner": v} if p == path else v for p, v in leaves]
        )
        expect = rf"{which} (missing {re.escape(dotted)} |unexpected {re.escape(dotted)}\.inner )"
    args = (bad, state) if which == "params" else (params, bad)
    with pytest.raises((TypeError, ValueError), match=expect):
        layer.apply(*args, x, train=False)
