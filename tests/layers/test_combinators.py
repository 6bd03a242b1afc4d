"""Tests of ``jcnn.layers.combinators``. Combinators: child naming, key splitting, state threading, tuple wiring, nesting and every error."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jcnn.layers import (
    Conv,
    Dense,
    Dropout,
    Flatten,
    Identity,
    Layer,
    Relu,
    add,
    concat,
    fan_out,
    make_layer,
    parallel,
    residual,
    serial,
)
from tests.helpers import assert_close

KEY = jax.random.PRNGKey(0)


def _counter() -> Layer:
    """A test layer with state: counts its training calls, adds its param ``b`` to the input."""

    def init(key, shape):
        return shape, {"b": jnp.ones((), jnp.float32)}, {"n": jnp.zeros((), jnp.int32)}

    def apply(params, state, x, *, train, key=None):
        return x + params["b"], {"n": state["n"] + (1 if train else 0)}

    return make_layer("counter", init, apply)


def test_default_and_given_names():
    model = serial(Conv(4, 3), Relu, ("head", Dense(2)), Conv(2, 1))
    _, params, state = model.init(KEY, (1, 5, 5, 3))
    assert list(params) == ["conv_0", "relu_1", "head", "conv_3"]
    assert [n for n, _ in model.children] == ["conv_0", "relu_1", "head", "conv_3"]
    assert set(state) == set(params)
    assert model.kind == "serial" and parallel(Relu).kind == "parallel"


def test_naming_errors():
    with pytest.raises(ValueError, match=r"serial: child names must be unique, got duplicates \['a'\]"):
        serial(("a", Relu), ("a", Dense(2)))
    with pytest.raises(ValueError, match=r"parallel: child names must be unique, got duplicates \['relu_0'\]"):
        parallel(Relu, ("relu_0", Relu))
    with pytest.raises(TypeError, match="serial: each child must be a Layer or a \\(name, Layer\\) pair, got 3"):
        serial(Relu, 3)
    with pytest.raises(TypeError, match=r"Dense is a layer constructor: call it \(e.g. Dense\(...\)\) to get a Layer"):
        serial(Dense)
    with pytest.raises(
        TypeError,
        match=r"at position 1; jax.numpy.tanh is an array function, not a Layer: use the "
        r"layer jcnn.Tanh",
    ):
        serial(Dense(3), jnp.tanh)
    with pytest.raises(TypeError, match=r"is a plain function, not a Layer: build one with jcnn.layers.make_layer"):
        serial(lambda x: x)
    with pytest.raises(ValueError, match="serial: needs at least one child layer"):
        serial()


def test_keys_are_split_so_two_dropouts_get_different_masks():
    model = serial(("a", Dropout(0.5)), ("b", Dropout(0.5)))
    _, params, state = model.init(KEY, (1, 256))
    x = jnp.ones((1, 256), jnp.float32)
    key = jax.random.PRNGKey(7)
    y, _ = model.apply(params, state, x, train=True, key=key)
    ka, kb = jax.random.split(key)
    ya, _ = Dropout(0.5).apply({}, {}, x, train=True, key=ka)
    yb, _ = Dropout(0.5).apply({}, {}, ya, train=True, key=kb)
    assert bool(jnp.all(y == yb))
    mask_a = Dropout(0.5).apply({}, {}, x, train=True, key=ka)[0] != 0
    mask_b = Dropout(0.5).apply({}, {}, x, train=True, key=kb)[0] != 0
    assert not bool(jnp.all(mask_a == mask_b))
    # In parallel branches too.
    branches = serial(fan_out(2), parallel(Dropout(0.5), Dropout(0.5)))
    _, p, s = branches.init(KEY, (1, 256))
    (u, v), _ = branches.apply(p, s, x, train=True, key=key)
    assert not bool(jnp.all((u != 0) == (v != 0)))


def test_state_is_threaded_through_nested_combinators():
    model = serial(_counter(), residual(serial(_counter(), Relu)), ("last", _counter()))
    _, params, state = model.init(KEY, (2, 3))
    x = jnp.zeros((2, 3), jnp.float32)
    y, new_state = model.apply(params, state, x, train=True)
    assert jax.tree_util.tree_structure(new_state) == jax.tree_util.tree_structure(state)
    counts = jax.tree_util.tree_leaves(new_state)
    assert [int(c) for c in counts] == [1, 1, 1]
    # counter_0: x+1 = 1; residual: relu(1+1) + 1 = 3; last: 4
    assert_close(y, np.full((2, 3), 4.0))
    _, eval_state = model.apply(params, new_state, x, train=False)
    assert [int(c) for c in jax.tree_util.tree_leaves(eval_state)] == [1, 1, 1]
    y2, twice = model.apply(params, new_state, x, train=True)
    assert [int(c) for c in jax.tree_util.tree_leaves(twice)] == [2, 2, 2]


def test_parallel_fan_out_concat_add_shapes():
    model = serial(fan_out(3), parallel(Dense(4), Dense(2), Identity), concat())
    out, params, _ = model.init(KEY, (-1, 5))
    assert out == (-1, 11)
    assert list(params["parallel_1"]) == ["dense_0", "dense_1", "identity_2"]
    x = jnp.ones((3, 5), jnp.float32)
    y, _ = model.apply(
        params,
        {"fan_out_0": {}, "parallel_1": {"dense_0": {}, "dense_1": {}, "identity_2": {}}, "concat_2": {}},
        x,
        train=False,
    )
    assert y.shape == (3, 11)
    assert concat(axis=1).init(KEY, ((2, 3, 4), (2, 5, 4)))[0] == (2, 8, 4)
    assert concat(axis=0).init(KEY, ((2, 3), (-1, 3)))[0] == (-1, 3)
    assert add().init(KEY, ((2, 3), (2, 3), (2, 3)))[0] == (2, 3)
    s = serial(fan_out(2), parallel(Relu, Identity), add())
    _, p, st = s.init(KEY, (2, 3))
    xx = jnp.asarray([[-1.0, 2.0, 0.5]] * 2, jnp.float32)
    assert_close(s.apply(p, st, xx, train=False)[0], np.maximum(xx, 0) + xx)


def test_residual_with_projection_and_names():
    block = serial(Conv(8, 3, stride=2, padding=1), Relu)
    model = residual(block, Conv(8, 1, stride=2), block_name="main", shortcut_name="proj")
    out, params, state = model.init(KEY, (2, 6, 6, 3))
    assert out == (2, 3, 3, 8) and set(params) == {"main", "proj"}
    assert [n for n, _ in model.children] == ["main", "proj"]
    y, _ = model.apply(params, state, jnp.ones((2, 6, 6, 3), jnp.float32), train=False)
    assert y.shape == out
    assert Identity() is Identity


def test_wiring_errors():
    with pytest.raises(
        ValueError, match=r"residual: the block's output shape \(2, 3, 3, 8\) differs from the shortcut's"
    ):
        residual(Conv(8, 3, stride=2, padding=1)).init(KEY, (2, 6, 6, 8))
    with pytest.raises(ValueError, match="residual: block_name and shortcut_name must differ"):
        residual(Relu, block_name="x", shortcut_name="x")
    with pytest.raises(TypeError, match="residual: shortcut must be a Layer, got function"):
        residual(Relu, shortcut=Dense)
    with pytest.raises(TypeError, match="residual: post must be a Layer or None"):
        residual(Relu, post="relu")
    with pytest.raises(ValueError, match="residual: post must be parameterless, Dense has params"):
        residual(Relu, post=Dense(3)).init(KEY, (2, 3))
    with pytest.raises(ValueError, match="parallel: expected a tuple of 2 input shapes, one per child"):
        parallel(Relu, Relu).init(KEY, (2, 3))
    with pytest.raises(ValueError, match="parallel: expected a tuple of 2 inputs, one per child"):
        p = parallel(Relu, Relu)
        p.apply({"relu_0": {}, "relu_1": {}}, {"relu_0": {}, "relu_1": {}}, jnp.ones(3), train=False)
    with pytest.raises(ValueError, match=r"concat: inputs must agree on every dim but axis -1"):
        concat().init(KEY, ((2, 3, 4), (2, 4, 4)))
    with pytest.raises(ValueError, match=r"concat: inputs must share one rank"):
        concat().init(KEY, ((2, 3), (2, 3, 1)))
    with pytest.raises(ValueError, match=r"concat: axis 2 is out of range for rank-2 inputs"):
        concat(axis=2).init(KEY, ((2, 3), (2, 3)))
    with pytest.raises(ValueError, match=r"concat: expected a tuple of input shapes"):
        concat().init(KEY, (2, 3))
    with pytest.raises(ValueError, match=r"add: every input must have the same shape"):
        add().init(KEY, ((2, 3), (2, 4)))
    with pytest.raises(ValueError, match=r"add: every input must have the same shape"):
        add().apply({}, {}, (jnp.ones((2, 3)), jnp.ones((3, 2))), train=False)
    with pytest.raises(ValueError, match=r"add: expected a non-empty tuple of arrays"):
        add().apply({}, {}, jnp.ones((2, 3)), train=False)
    with pytest.raises(ValueError, match="fan_out: num must be an int >= 1"):
        fan_out(0)


def test_mismatched_param_trees_are_type_errors():
    model = serial(Dense(2), Relu)
    _, params, state = model.init(KEY, (1, 3))
    with pytest.raises(
        TypeError,
        match=r"serial: params must be a dict keyed by the children \['dense_0', 'relu_1'\], got \['dense_0'\]",
    ):
        model.apply({"dense_0": params["dense_0"]}, state, jnp.ones((1, 3), jnp.float32), train=False)
    with pytest.raises(TypeError, match=r"residual: state must be a dict keyed by the children"):
        r = residual(Relu)
        r.apply({"block": {}, "shortcut": {}}, [], jnp.ones(3), train=False)


def test_nesting_params_are_readable_paths():
    model = serial(("features", serial(Conv(4, 3), Relu, Flatten)), ("classifier", serial(Dense(3), ("out", Dense(2)))))
    _, params, _ = model.init(KEY, (1, 5, 5, 1))
    paths = {"/".join(str(k.key) for k in path) for path, _ in jax.tree_util.tree_leaves_with_path(params)}
    assert paths == {
        "features/conv_0/kernel",
        "features/conv_0/bias",
        "classifier/dense_0/kernel",
        "classifier/dense_0/bias",
        "classifier/out/kernel",
        "classifier/out/bias",
    }
