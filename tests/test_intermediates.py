"""jcnn.intermediates / feature_extractor: every named layer's output under its path, select patterns,
jit and grad, the compiled program unchanged when not called, nesting."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jcnn
from jcnn.layers import (
    BatchNorm,
    Conv,
    Dense,
    GlobalAvgPool,
    MaxPool,
    Relu,
    concat,
    fan_out,
    parallel,
    residual,
    serial,
    walk,
)
from tests.helpers import assert_close

KEY = jax.random.PRNGKey(0)
SHAPE = (2, 8, 8, 3)


@functools.cache
def _model():
    block = residual(
        serial(("conv", Conv(4, (3, 3), padding=1)), ("bn", BatchNorm())),
        block_name=None,
        shortcut_name=None,
        post=Relu,
    )
    model = serial(
        ("stem", Conv(4, (3, 3), padding=1)),
        ("block", block),
        ("pool", MaxPool(2)),
        ("branches", serial(fan_out(2), parallel(("a", Relu), ("b", jcnn.remat(Conv(2, (1, 1))))), concat())),
        ("gap", GlobalAvgPool),
        ("head", Dense(5)),
    )
    _, params, state = model.init(KEY, SHAPE)
    x = jnp.asarray(np.random.default_rng(0).standard_normal(SHAPE), jnp.float32)
    return model, params, state, x


def test_every_named_layer_is_recorded_with_its_declared_shape():
    model, params, state, x = _model()
    y, acts = jcnn.intermediates(model, params, state, x)
    expected, _ = model.apply(params, state, x, train=False)
    assert_close(y, expected, rtol=0)
    nodes = {n.path: n for n in walk(model, SHAPE) if n.path}
    assert list(acts) and set(acts) == set(nodes)
    for path, value in acts.items():
        shape = nodes[path].output_shape
        got = tuple(a.shape for a in value) if isinstance(value, tuple) else tuple(value.shape)
        assert got == shape, path
    # each recorded value is that layer's output: the stem's is the first conv of x, the head's is y
    assert_close(acts["stem"], Conv(4, (3, 3), padding=1).apply(params["stem"], {}, x, train=False)[0], rtol=0)
    assert_close(acts["head"], y, rtol=0)
    assert_close(acts["block"], jnp.maximum(acts["block.bn"] + acts["stem"], 0), rtol=1e-6)


def test_select_patterns_pick_exactly_the_matching_paths():
    model, params, state, x = _model()
    _, acts = jcnn.intermediates(model, params, state, x, select=["block.*", "branches.parallel_1.?"])
    assert set(acts) == {"block.conv", "block.bn", "branches.parallel_1.a", "branches.parallel_1.b"}
    _, acts = jcnn.intermediates(model, params, state, x, select="**.b")
    assert set(acts) == {"branches.parallel_1.b"}
    with pytest.raises(
        ValueError,
        match=r"intermediates: pattern\(s\) \['blok'\] match no layer path of the "
        r"model; its paths are: stem, block, block.conv",
    ):
        jcnn.intermediates(model, params, state, x, select=["block", "blok"])


def test_under_jit_and_grad_and_the_program_without_it_is_unchanged():
    model, params, state, x = _model()
    plain = jax.jit(lambda p, s, x: model.apply(p, s, x, train=False)[0]).lower(params, state, x).as_text()
    jitted = jax.jit(lambda p, s, x: jcnn.intermediates(model, params, state, x, select="block.bn")[1])
    eager = jcnn.intermediates(model, params, state, x, select="block.bn")[1]
    assert_close(jitted(params, state, x)["block.bn"], eager["block.bn"], rtol=1e-6)
    again = jax.jit(lambda p, s, x: model.apply(p, s, x, train=False)[0]).lower(params, state, x).as_text()
    assert again == plain  # recording leaves no trace in the program of a plain apply

    def through_intermediate(p):
        return jnp.sum(jcnn.intermediates(model, p, state, x, select="pool")[1]["pool"] ** 2)

    def direct(p):
        h = x
        for name in ("stem", "block", "pool"):
            h, _ = model.children[[n for n, _ in model.children].index(name)][1].apply(
                p[name], state[name], h, train=False
            )
        return jnp.sum(h**2)

    g1, g2 = (
        jax.jit(jax.grad(through_intermediate))(params),
        jax.jit(jax.grad(direct))(params),
    )  # eagerly: a compile per primitive
    for a, b in zip(jax.tree_util.tree_leaves(g1), jax.tree_util.tree_leaves(g2)):
        assert_close(a, b, rtol=1e-6)


def test_feature_extractor_is_a_layer_with_the_models_params_also_when_nested():
    model, params, state, x = _model()
    fe = jcnn.feature_extractor(model, ["block", "gap"])
    out, p2, s2 = fe.init(KEY, SHAPE)
    assert out == {"block": (2, 8, 8, 4), "gap": (2, 6)} == fe.output_shape(SHAPE)
    assert jax.tree_util.tree_structure(p2) == jax.tree_util.tree_structure(params)
    feats, _ = fe.apply(params, state, x, train=False)
    _, acts = jcnn.intermediates(model, params, state, x, select=["block", "gap"])
    assert set(feats) == {"block", "gap"} and all(bool(jnp.all(feats[k] == acts[k])) for k in feats)
    outer = serial(("backbone", fe))
    got, _ = outer.apply({"backbone": params}, {"backbone": state}, x, train=False)
    assert set(got) == {"block", "gap"}  # paths relative to the extracted model, wherever it sits
    _, nested = jcnn.intermediates(outer, {"backbone": params}, {"backbone": state}, x, select="backbone.block")
    assert set(nested) == {"backbone.block"}
    with pytest.raises(ValueError, match=r"feature_extractor: pattern\(s\) \['layer9'\] match no layer path"):
        jcnn.feature_extractor(model, "layer9")


def test_train_mode_capture_returns_the_new_state():
    model, params, state, x = _model()
    from jcnn.inspection.intermediates import capture

    y, new_state, acts = capture(model, params, state, x, train=True, select="block.bn")
    _, expected_state = model.apply(params, state, x, train=True)
    for a, b in zip(jax.tree_util.tree_leaves(new_state), jax.tree_util.tree_leaves(expected_state)):
        assert_close(a, b, rtol=0)
    assert set(acts) == {"block.bn"}
