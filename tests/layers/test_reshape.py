"""Flatten (order vs torch) and Reshape: shapes, batch -1, and every error."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jcnn.layers import Dense, Flatten, Reshape, serial
from tests.helpers import assert_close, to_torch_layout
from tests.layers._util import random

KEY = jax.random.PRNGKey(0)


def test_flatten_is_row_major_over_channels_last():
    x = random((2, 3, 4, 5), 1)
    assert Flatten() is Flatten
    out, params, state = Flatten.init(KEY, (-1, 3, 4, 5))
    assert out == (-1, 60) and params == {} and state == {}
    y, _ = Flatten.apply({}, {}, jnp.asarray(x), train=False)
    # torch.nn.Flatten on the same channels-last tensor: C varies fastest.
    assert_close(y, torch.nn.Flatten()(torch.from_numpy(x)).numpy())
    # torch's usual NCHW flatten is a permutation of it: index c·H·W + h·W + w ↔ ours h·W·C + w·C + c.
    t = torch.nn.Flatten()(to_torch_layout(x)).numpy()
    perm = np.arange(60).reshape(5, 3, 4).transpose(1, 2, 0).ravel()
    assert_close(y, t[:, perm])


def test_flatten_then_dense_equals_torch_with_permuted_weights():
    """A torch Linear after an NCHW flatten equals our Dense after Flatten once its rows are permuted."""
    x = random((2, 3, 4, 5), 2)
    model = serial(Flatten, Dense(6))
    _, params, state = model.init(KEY, x.shape)
    w = np.asarray(params["dense_1"]["kernel"])  # (60, 6) over our (h, w, c) order
    linear = torch.nn.Linear(60, 6)
    perm = np.arange(60).reshape(5, 3, 4).transpose(1, 2, 0).ravel()  # ours → torch's index
    w_torch = np.empty_like(w)
    w_torch[perm] = w
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(w_torch.T.copy()))
        linear.bias.copy_(torch.from_numpy(np.array(params["dense_1"]["bias"])))
    y, _ = model.apply(params, state, jnp.asarray(x), train=False)
    ty = linear(torch.nn.Flatten()(to_torch_layout(x))).detach().numpy()
    assert_close(y, ty)


@pytest.mark.parametrize(
    "target, shape, expected",
    [
        ((-1, 4), (2, 3, 4, 2), (2, 6, 4)),
        ((24,), (-1, 3, 4, 2), (-1, 24)),
        ((2, -1, 3), (5, 12), (5, 2, 2, 3)),
    ],
)
def test_reshape(target, shape, expected):
    layer = Reshape(target)
    out, _, _ = layer.init(KEY, shape)
    assert out == expected
    x = jnp.arange(np.prod([abs(d) for d in shape]), dtype=jnp.float32).reshape([abs(d) for d in shape])
    y, _ = layer.apply({}, {}, x, train=False)
    assert y.shape == (x.shape[0],) + tuple(expected[1:])
    assert_close(y.reshape(-1), x.reshape(-1))


def test_errors():
    with pytest.raises(ValueError, match=r"Reshape: shape needs dims >= 1 and at most one -1, got \(-1, -1\)"):
        Reshape((-1, -1))
    with pytest.raises(ValueError, match="Reshape: shape needs dims >= 1"):
        Reshape((0, 3))
    with pytest.raises(TypeError, match="Reshape: shape must be a sequence of ints"):
        Reshape(5)
    with pytest.raises(
        ValueError, match=r"Reshape: cannot reshape non-batch dims \(3, 4\) \(size 12\) to \(5,\) \(size 5\)"
    ):
        Reshape((5,)).init(KEY, (2, 3, 4))
    with pytest.raises(
        ValueError,
        match=r"Reshape: cannot reshape non-batch dims \(3, 4\) \(size 12\) to \(-1, 5\): 12 is not a multiple of 5",
    ):
        Reshape((-1, 5)).init(KEY, (2, 3, 4))
    layer = Reshape((6,))
    layer.init(KEY, (2, 2, 3))
    with pytest.raises(ValueError, match=r"Reshape: cannot reshape non-batch dims \(7,\)"):
        layer.apply({}, {}, jnp.ones((2, 7), jnp.float32), train=False)
    with pytest.raises(ValueError, match=r"Reshape: expected an input with a batch dim, got shape \(\)"):
        layer.apply({}, {}, jnp.ones((), jnp.float32), train=False)
    with pytest.raises(ValueError, match=r"Flatten: expected an input of rank >= 2 \(N, ...\), got shape \(4,\)"):
        Flatten.init(KEY, (4,))
    with pytest.raises(ValueError, match=r"Flatten: expected an input of rank >= 2"):
        Flatten.apply({}, {}, jnp.ones((4,), jnp.float32), train=False)
