"""The Layer protocol helpers: check_shape, infer_output_shape, split_key, make_layer, ReadyLayer."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from jcnn.layers import Layer, make_layer
from jcnn.layers.base import ReadyLayer, check_shape, infer_output_shape, is_shape, ready_layer, split_key

KEY = jax.random.PRNGKey(0)


def test_check_shape_accepts_and_normalises():
    assert check_shape("L", [2, 3]) == (2, 3)
    assert check_shape("L", (-1, 4, 4, 3), ndim=(3, 4)) == (-1, 4, 4, 3)
    assert check_shape("L", (2, 3), min_ndim=2) == (2, 3)


@pytest.mark.parametrize("shape, kwargs, match", [
    ("abc", {}, r"L: expected one input shape \(a tuple of ints\), got 'abc'"),
    (((2, 3), (2, 3)), {}, r"L: expected one input shape"),
    ((2, 3), dict(ndim=4, what="(N, H, W, C)"), r"L: expected an input of rank 4 \(N, H, W, C\), got shape \(2, 3\) \(rank 2\)"),
    ((2, 3), dict(ndim=(3, 5)), r"L: expected an input of rank 3 or 5"),
    ((2,), dict(min_ndim=2), r"L: expected an input of rank >= 2, got shape \(2,\)"),
    ((0, 3), {}, r"L: the batch dim must be >= 1 or -1, got shape \(0, 3\)"),
    ((2, 0), {}, r"L: every non-batch dim must be >= 1, got shape \(2, 0\)"),
    ((2, -1), {}, r"L: every non-batch dim must be >= 1"),
])
def test_check_shape_errors(shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        check_shape("L", shape, **kwargs)


def test_infer_output_shape_keeps_an_unknown_batch():
    def apply(params, state, x, *, train, key=None):
        return jnp.concatenate([x, x], axis=-1), state

    assert infer_output_shape(apply, {}, {}, (-1, 3)) == (-1, 6)
    assert infer_output_shape(apply, {}, {}, (5, 3)) == (5, 6)

    def pair(params, state, x, *, train, key=None):
        return (x[0] + x[1], x[0][:, :1]), state

    assert infer_output_shape(pair, {}, {}, ((-1, 3), (-1, 3))) == ((-1, 3), (-1, 1))
    assert is_shape((1, 2)) and not is_shape(((1, 2), (3,)))


def test_split_key():
    assert split_key(None, 3) == [None, None, None]
    keys = split_key(KEY, 3)
    assert len(keys) == 3 and len({tuple(jax.random.key_data(k).ravel().tolist()) for k in keys}) == 3


def test_make_layer_and_ready_layer():
    def init(key, shape):
        return shape, {}, {}

    def apply(params, state, x, *, train, key=None):
        return x, state

    layer = make_layer("thing", init, apply)
    assert isinstance(layer, Layer) and layer.kind == "thing" and layer.children == ()
    assert Layer(lambda k, s: (s, {}, {}), apply).kind == "layer"
    init_fn, apply_fn = layer  # unpacks like stax: the layer's (wrapping) init and apply
    assert init_fn(KEY, (2, 3)) == ((2, 3), {}, {}) and apply_fn({}, {}, 1.0 + jnp.zeros(2), train=False)[0].shape == (2,)
    assert layer[0].__func__ is Layer.init and len(layer) == 2
    ready = ready_layer("same", lambda k, s: (s, {}, {}), apply)
    assert isinstance(ready, ReadyLayer) and isinstance(ready, Layer) and ready() is ready
    assert ready.kind == "same"
