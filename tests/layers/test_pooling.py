"""Tests of ``jcnn.layers.pooling``. Pooling layers vs torch.nn pools (forward and input gradients), rank inference and every error."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch

from jcnn.layers import AdaptiveAvgPool, AdaptiveMaxPool, AvgPool, GlobalAvgPool, GlobalMaxPool, LPPool, MaxPool
from tests.helpers import assert_close
from tests.layers._util import declared_shape, jax_forward_backward, random, torch_forward_backward

KEY = jax.random.PRNGKey(0)
nn = torch.nn


CASES = [
    # (layer, torch twin, input shape)
    (
        MaxPool((3,), stride=2, padding=1, dilation=2, ceil_mode=True),
        nn.MaxPool1d(3, stride=2, padding=1, dilation=2, ceil_mode=True),
        (2, 12, 3),
    ),
    (MaxPool((2, 3), stride=(2, 1), padding=(1, 1)), nn.MaxPool2d((2, 3), stride=(2, 1), padding=(1, 1)), (2, 7, 6, 3)),
    (MaxPool(2, spatial_dims=3), nn.MaxPool3d(2), (1, 4, 6, 4, 2)),
    (
        AvgPool(3, stride=2, padding=1, count_include_pad=False, ceil_mode=True),
        nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False, ceil_mode=True),
        (2, 8, 7, 3),
    ),
    (AvgPool((2,), padding=1), nn.AvgPool1d(2, padding=1), (2, 9, 3)),
    (LPPool(2, (2, 3), stride=2), nn.LPPool2d(2, (2, 3), stride=2), (2, 6, 7, 3)),
    (LPPool(3, 2, ceil_mode=True, spatial_dims=1), nn.LPPool1d(3, 2, ceil_mode=True), (2, 9, 2)),
    (AdaptiveAvgPool((3, None)), nn.AdaptiveAvgPool2d((3, None)), (2, 7, 5, 3)),
    (AdaptiveMaxPool((4,)), nn.AdaptiveMaxPool1d(4), (2, 10, 3)),
    (AdaptiveAvgPool(2, spatial_dims=3), nn.AdaptiveAvgPool3d(2), (1, 5, 4, 3, 2)),
]


@pytest.mark.parametrize(
    "layer, module, shape", CASES, ids=[f"{c[1].__class__.__name__}-{i}" for i, c in enumerate(CASES)]
)
def test_pool_matches_torch_forward_and_input_gradient(layer, module, shape):
    out_shape, params, state = layer.init(KEY, shape)
    assert params == {} and state == {}
    # LPPool with odd p is only defined for non-negative inputs in torch (a negative sum gives NaN).
    x = random(shape, 1)
    if isinstance(module, nn.LPPool1d):
        x = abs(x)
    cot = random(out_shape, 2)
    y, _, gx = jax_forward_backward(layer, params, x, cot)
    ty, tgx, _ = torch_forward_backward(module, x, cot)
    assert y.shape == tuple(out_shape) and y.dtype == x.dtype
    assert_close(y, ty, what="forward")
    assert_close(gx, tgx, what="grad x")


@pytest.mark.parametrize("layer, reduce", [(GlobalAvgPool, torch.mean), (GlobalMaxPool, torch.amax)])
def test_global_pools_reduce_every_spatial_dim(layer, reduce):
    assert layer() is layer  # a ready value that is also its own constructor
    x = random((2, 5, 4, 3), 3)
    out, _, _ = layer.init(KEY, (-1, 5, 4, 3))
    assert out == (-1, 3)
    cot = random((2, 3), 4)
    y, _, gx = jax_forward_backward(layer, {}, x, cot)
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = reduce(xt, dim=(1, 2))
    yt.backward(torch.from_numpy(cot))
    assert_close(y, yt.detach().numpy(), what="forward")
    assert_close(gx, xt.grad.numpy(), what="grad x")


def test_window_rank_fixes_the_input_rank_and_an_int_window_is_2d_unless_spatial_dims():
    assert MaxPool(2, spatial_dims=1).init(KEY, (1, 8, 3))[0] == (1, 4, 3)
    assert MaxPool(2, spatial_dims=3).init(KEY, (1, 8, 8, 8, 3))[0] == (1, 4, 4, 4, 3)
    assert MaxPool(2).init(KEY, (1, 8, 8, 3))[0] == (1, 4, 4, 3) == MaxPool(2).output_shape((1, 8, 8, 3))
    assert AvgPool((2, 2), stride=1).init(KEY, (-1, 5, 5, 3))[0] == (-1, 4, 4, 3)
    assert MaxPool((2,), padding="SAME").init(KEY, (1, 7, 3))[0] == (1, 4, 3)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: MaxPool(0), "MaxPool: window must be an int >= 1"),
        (lambda: MaxPool((2, 2, 2, 2)), "MaxPool: window needs 1, 2 or 3 entries"),
        (lambda: MaxPool(2, stride=0), "MaxPool: stride must be an int >= 1"),
        (lambda: MaxPool(2, stride=-2), "MaxPool: stride must be an int >= 1"),
        (lambda: MaxPool(2, padding=-1), "MaxPool: padding must be non-negative"),
        (lambda: MaxPool(2, padding="full"), "MaxPool: unknown padding 'full'"),
        (lambda: MaxPool(2, dilation=0), "MaxPool: dilation must be an int >= 1"),
        (lambda: AvgPool(2, padding=(-1, 0)), "AvgPool: padding must be non-negative"),
        (lambda: AvgPool("2"), "AvgPool: window must be an int >= 1"),
        (lambda: LPPool(0, 2), "LPPool: p must be a positive number"),
        (lambda: LPPool(-1.5, 2), "LPPool: p must be a positive number"),
        (lambda: AdaptiveAvgPool(0), "AdaptiveAvgPool: output_size must be an int >= 1"),
        (lambda: AdaptiveMaxPool((2, -1)), "AdaptiveMaxPool: output_size must be an int >= 1"),
        (lambda: MaxPool((2, 2), spatial_dims=3), r"MaxPool: window=\(2, 2\) has 2 entries but spatial_dims=3"),
        (lambda: AdaptiveAvgPool((2, 2, 2, 2)), "AdaptiveAvgPool: output_size needs 1, 2 or 3 entries"),
    ],
)
def test_constructor_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "layer, shape, match",
    [
        (MaxPool(2), (2, 8), r"MaxPool: an int window=2 makes a 2-D layer, .*rank 4, got shape \(2, 8\)"),
        (MaxPool(2), (-1, 28, 28), r"MaxPool: an int window=2 makes a 2-D layer.*reshape them to \(-1, 28, 28, 1\)"),
        (MaxPool((2, 2)), (2, 8, 3), r"MaxPool: expected an input of rank 4 \(N, H, W, C\)"),
        (MaxPool(5), (2, 3, 3, 1), r"MaxPool: input shape \(2, 3, 3, 1\): .*larger than the padded input"),
        (MaxPool((3,), padding=2), (2, 8, 1), r"MaxPool: .*padding must be at most half of the window"),
        (AvgPool(4, stride=(1, 2, 3)), (2, 8, 8, 1), r"AvgPool: .*stride needs one value per spatial dim"),
        (LPPool(2, 9), (2, 8, 8, 1), r"LPPool: input shape .*larger than the padded input"),
        (AdaptiveAvgPool((2, 2)), (2, 8, 1), r"AdaptiveAvgPool: expected an input of rank 4"),
        (GlobalAvgPool, (2, 3), r"GlobalAvgPool: expected an input of rank 3 or 4 or 5"),
        (GlobalMaxPool, (2, 1, 1, 1, 1, 3), r"GlobalMaxPool: expected an input of rank 3 or 4 or 5"),
    ],
)
def test_init_errors(layer, shape, match):
    with pytest.raises(ValueError, match=match):
        layer.init(KEY, shape)


def test_apply_rank_error():
    layer = MaxPool((2, 2))
    with pytest.raises(
        ValueError, match=r"MaxPool: expected an input \(N, \*spatial, C\) of rank 4, got shape \(4, 3\)"
    ):
        layer.apply({}, {}, jax.device_put(np.ones((4, 3), np.float32)), train=False)


from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st


@settings(max_examples=25)
@given(st.data())
def test_declared_output_shape_and_errors_agree_with_torch(data):
    """MaxPool/AvgPool init shapes (eval_shape only) equal torch's, ceil_mode included; same rejections."""
    n = data.draw(st.integers(1, 3), "n")
    ints = lambda lo, hi, name: tuple(data.draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n), name))  # noqa: E731
    size, window, stride = ints(1, 7, "size"), ints(1, 4, "window"), ints(1, 3, "stride")
    padding = tuple(data.draw(st.integers(0, k // 2), "padding") for k in window)
    ceil_mode = data.draw(st.booleans(), "ceil_mode")
    use_max = data.draw(st.booleans(), "max")
    x = torch.zeros((1, 2, *size))
    dilation = ints(1, 2, "dilation") if use_max else (1,) * n
    # torch's 3-D pools reject an input smaller than the window even when the padding covers it
    # ("input image smaller than kernel size"); jcnn defines that case, so compare elsewhere.
    assume(n < 3 or all(i >= d * (k - 1) + 1 for i, d, k in zip(size, dilation, window)))
    if use_max:
        layer = MaxPool(window, stride, padding, dilation, ceil_mode)
        call = lambda: getattr(torch.nn.functional, f"max_pool{n}d")(x, window, stride, padding, dilation, ceil_mode)  # noqa: E731
    else:
        layer = AvgPool(window, stride, padding, ceil_mode=ceil_mode)
        call = lambda: getattr(torch.nn.functional, f"avg_pool{n}d")(x, window, stride, padding, ceil_mode)  # noqa: E731
    try:
        expected = call().shape
    except RuntimeError:
        with pytest.raises(ValueError, match=r"(Max|Avg)Pool: input shape"):
            declared_shape(layer, (1, *size, 2))
        return
    assert declared_shape(layer, (1, *size, 2)) == (1, *expected[2:], 2)
