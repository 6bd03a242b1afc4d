"""The Layer protocol helpers: check_shape, infer_output_shape, split_key, make_layer, ReadyLayer."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jcnn.layers import Layer, make_layer
from jcnn.layers.base import ReadyLayer, check_shape, infer_output_shape, is_shape, ready_layer, split_key

KEY = jax.random.PRNGKey(0)


def test_check_shape_accepts_and_normalises():
    assert check_shape("L", [2, 3]) == (2, 3)
    assert check_shape("L", (-1, 4, 4, 3), ndim=(3, 4)) == (-1, 4, 4, 3)
    assert check_shape("L", (2, 3), min_ndim=2) == (2, 3)


@pytest.mark.parametrize(
    "shape, kwargs, match",
    [
        ("abc", {}, r"L: expected one input shape \(a tuple of ints\), got 'abc'"),
        (((2, 3), (2, 3)), {}, r"L: expected one input shape"),
        (
            (2, 3),
            dict(ndim=4, what="(N, H, W, C)"),
            r"L: expected an input of rank 4 \(N, H, W, C\), got shape \(2, 3\) \(rank 2\)",
        ),
        ((2, 3), dict(ndim=(3, 5)), r"L: expected an input of rank 3 or 5"),
        ((2,), dict(min_ndim=2), r"L: expected an input of rank >= 2, got shape \(2,\)"),
        ((0, 3), {}, r"L: the batch dim must be >= 1 or -1, got shape \(0, 3\)"),
        ((2, 0), {}, r"L: every non-batch dim must be >= 1, got shape \(2, 0\)"),
        ((2, -1), {}, r"L: every non-batch dim must be >= 1"),
    ],
)
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
    assert init_fn(KEY, (2, 3)) == ((2, 3), {}, {}) and apply_fn({}, {}, 1.0 + jnp.zeros(2), train=False)[0].shape == (
        2,
    )
    assert layer[0].__func__ is Layer.init and len(layer) == 2
    ready = ready_layer("same", lambda k, s: (s, {}, {}), apply)
    assert isinstance(ready, ReadyLayer) and isinstance(ready, Layer) and ready() is ready
    assert ready.kind == "same"


@pytest.mark.parametrize("key, got", [(None, "None"), (0, "the int 0"), (jnp.zeros(3), r"an array of shape \(3,\)")])
def test_init_and_apply_name_a_bad_key(key, got):
    from jcnn.layers import Dense, Dropout

    with pytest.raises(
        TypeError,
        match=rf"Dense.init: key must be a PRNG key such as jax.random.key\(0\) or "
        rf"jax.random.PRNGKey\(0\), got {got}",
    ):
        Dense(3).init(key, (2, 4))
    if key is not None:
        with pytest.raises(TypeError, match=rf"Dropout.apply: key must be a PRNG key .*got {got}"):
            Dropout(0.5).apply({}, {}, jnp.ones((2, 4)), train=True, key=key)


def test_a_traced_train_flag_is_named():
    from jcnn.layers import Dropout

    with pytest.raises(
        TypeError,
        match=r"Dropout.apply: train must be a Python bool, got a traced value.*"
        r"static_argnames='train'",
    ):
        jax.jit(lambda x, t: Dropout(0.5).apply({}, {}, x, train=t, key=KEY)[0])(jnp.ones(3), True)


def test_dense_on_a_shape_without_features_names_the_fix():
    from jcnn.layers import Dense

    with pytest.raises(
        ValueError,
        match=r"Dense: the last dim of the input shape is in_features and must be >= 1, "
        r"got shape \(-1,\); for a batch of vectors give \(N, in_features\)",
    ):
        Dense(3).init(KEY, (-1,))


def test_typed_keys_split_and_init_like_raw_keys():
    from jcnn.layers import Dense

    typed, raw = jax.random.key(3), jax.random.PRNGKey(3)
    assert [bool(jnp.all(jax.random.key_data(a) == b)) for a, b in zip(split_key(typed, 3), split_key(raw, 3))] == [
        True
    ] * 3
    assert all(bool(jnp.all(a == b)) for a, b in zip(split_key(raw, 5), jax.random.split(raw, 5)))
    expected = np.asarray(jax.random.key_data(jax.random.split(typed, 4)))
    got = split_key(typed, 4)  # typed keys stay typed keys of the same impl, one per child
    assert all(jax.dtypes.issubdtype(k.dtype, jax.dtypes.prng_key) and k.shape == () for k in got)
    assert jax.random.key_impl(got[0]) == jax.random.key_impl(typed)
    np.testing.assert_array_equal(np.stack([np.asarray(jax.random.key_data(k)) for k in got]), expected)
    p_typed, p_raw = Dense(4).init(typed, (2, 3))[1], Dense(4).init(raw, (2, 3))[1]
    assert all(
        bool(jnp.all(a == b)) for a, b in zip(jax.tree_util.tree_leaves(p_typed), jax.tree_util.tree_leaves(p_raw))
    )
