"""Conv / ConvTranspose layers vs torch.nn.Conv{1,2,3}d / ConvTranspose{1,2}d with copied weights:
forward and gradients w.r.t. kernel, bias and input; torch's default init bounds; every error."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jcnn import initializers as inits
from jcnn.layers import Conv, ConvTranspose
from tests.helpers import assert_close, torch_conv_transpose_weight, torch_conv_weight
from tests.layers._util import (
    declared_shape,
    hwio_from_torch,
    jax_forward_backward,
    random,
    torch_forward_backward,
    transposed_from_torch,
)

KEY = jax.random.PRNGKey(0)
TORCH_CONV = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}
TORCH_CONV_T = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d, 3: torch.nn.ConvTranspose3d}


CONV_CASES = [
    # (input shape, features, kernel, kwargs): torch's padding_mode names, groups, dilation, strides
    ((2, 11, 4), 6, 3, dict(stride=2, padding=2, dilation=2, groups=2, padding_mode="circular")),
    ((2, 7, 6, 3), 4, (3, 2), dict(stride=(2, 1), padding=(1, 1), padding_mode="reflect")),
    ((1, 6, 5, 6), 6, 3, dict(padding=1, groups=3, padding_mode="replicate", use_bias=False)),
    ((1, 5, 4, 6, 2), 3, (2, 3, 2), dict(stride=(1, 2, 1), dilation=(2, 1, 1), padding=(1, 0, 1))),
]


@pytest.mark.parametrize("shape, features, kernel, kwargs", CONV_CASES)
def test_conv_matches_torch_forward_and_gradients(shape, features, kernel, kwargs):
    n = len(shape) - 2
    layer = Conv(features, kernel, **kwargs, spatial_dims=n)
    out_shape, params, _ = layer.init(KEY, shape)
    use_bias = kwargs.get("use_bias", True)
    tkw = {k: v for k, v in kwargs.items() if k != "use_bias"}
    module = TORCH_CONV[n](shape[-1], features, kernel, bias=use_bias, **tkw)
    with torch.no_grad():
        module.weight.copy_(torch_conv_weight(np.asarray(params["kernel"])))
        if use_bias:
            module.bias.copy_(torch.from_numpy(np.array(params["bias"])))
    x = random(shape, 1)
    cot = random(out_shape, 2)
    y, gp, gx = jax_forward_backward(layer, params, x, cot)
    ty, tgx, tg = torch_forward_backward(module, x, cot)
    assert y.dtype == np.float32
    assert_close(y, ty, what="forward")
    assert_close(gx, tgx, what="grad x")
    assert_close(gp["kernel"], hwio_from_torch(tg["weight"]), what="grad kernel")
    if use_bias:
        assert_close(gp["bias"], tg["bias"], what="grad bias")
    else:
        assert set(params) == {"kernel"}


CONV_T_CASES = [
    ((2, 4, 5, 4), 6, 3, dict(stride=2, padding=1, output_padding=1, groups=2, dilation=1)),
    ((2, 5, 3), 2, 4, dict(stride=3, padding=(2,), dilation=2, use_bias=False)),
]


@pytest.mark.parametrize("shape, features, kernel, kwargs", CONV_T_CASES)
def test_conv_transpose_matches_torch_forward_and_gradients(shape, features, kernel, kwargs):
    n = len(shape) - 2
    layer = ConvTranspose(features, kernel, **kwargs, spatial_dims=n)
    out_shape, params, _ = layer.init(KEY, shape)
    use_bias = kwargs.get("use_bias", True)
    tkw = {k: v for k, v in kwargs.items() if k != "use_bias"}
    if "padding" in tkw and isinstance(tkw["padding"], tuple):
        tkw["padding"] = tkw["padding"][0]
    module = TORCH_CONV_T[n](shape[-1], features, kernel, bias=use_bias, **tkw)
    with torch.no_grad():
        module.weight.copy_(torch_conv_transpose_weight(np.asarray(params["kernel"])))
        if use_bias:
            module.bias.copy_(torch.from_numpy(np.array(params["bias"])))
    x = random(shape, 3)
    cot = random(out_shape, 4)
    y, gp, gx = jax_forward_backward(layer, params, x, cot)
    ty, tgx, tg = torch_forward_backward(module, x, cot)
    assert_close(y, ty, what="forward")
    assert_close(gx, tgx, what="grad x")
    assert_close(gp["kernel"], transposed_from_torch(tg["weight"]), what="grad kernel")
    if use_bias:
        assert_close(gp["bias"], tg["bias"], what="grad bias")


def _uniform_bound_checks(w: np.ndarray, bound: float, what: str) -> None:
    """``w ~ U(±bound)``: max|w| ≤ bound and within 2% of it, std within 5% of bound/√3."""
    w = np.asarray(w, np.float64).ravel()
    assert np.max(np.abs(w)) <= bound * (1 + 1e-6), what
    assert np.max(np.abs(w)) >= 0.98 * bound, what
    assert abs(np.std(w) / (bound / math.sqrt(3)) - 1) < 0.05, what
    assert abs(np.mean(w)) < 0.05 * bound, what


@pytest.mark.parametrize("transposed", [False, True])
def test_default_init_follows_torch_bounds(transposed):
    # C_in=24, features=32, groups=2, kernel 5x5: 4800+ kernel samples; the bias has 32 (bound check only).
    c_in, features, groups, k = 24, 32, 2, (5, 5)
    if transposed:
        layer = ConvTranspose(features, k, groups=groups)
        module = torch.nn.ConvTranspose2d(c_in, features, k, groups=groups)
    else:
        layer = Conv(features, k, groups=groups)
        module = torch.nn.Conv2d(c_in, features, k, groups=groups)
    _, params, _ = layer.init(KEY, (1, 8, 8, c_in))
    # torch's own fan_in of its weight layout: Conv (C_out, C_in/g, *K) dim 1; ConvTranspose
    # (C_in, C_out/g, *K) also dim 1, i.e. features/groups·prod(K).
    fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(module.weight)
    bound = 1 / math.sqrt(fan_in)
    expected_fan = (features if transposed else c_in) // groups * math.prod(k)
    assert fan_in == expected_fan
    _uniform_bound_checks(params["kernel"], bound, "kernel")
    torch_max = float(module.weight.detach().abs().max())
    assert abs(float(np.abs(params["kernel"]).max()) - torch_max) < 0.02 * bound
    bias = np.asarray(params["bias"])
    assert np.max(np.abs(bias)) <= bound and np.max(np.abs(bias)) > 0.5 * bound
    assert params["kernel"].dtype == jnp.float32


def test_kernel_shapes_and_custom_initializers():
    _, p, _ = Conv(8, (3,), groups=2, kernel_init=inits.ones, bias_init=inits.constant(0.5)).init(KEY, (1, 9, 4))
    assert (
        p["kernel"].shape == (3, 2, 8) and np.all(np.asarray(p["kernel"]) == 1) and np.all(np.asarray(p["bias"]) == 0.5)
    )
    _, p, _ = ConvTranspose(8, (2, 3), groups=4).init(KEY, (1, 5, 5, 4))
    assert p["kernel"].shape == (2, 3, 4, 2) and p["bias"].shape == (8,)


def test_int_kernel_size_is_2d_unless_spatial_dims_says_otherwise():
    for shape, expected, dims in [
        ((2, 9, 3), (2, 7, 5), 1),
        ((2, 9, 9, 3), (2, 7, 7, 5), None),
        ((1, 5, 5, 5, 3), (1, 3, 3, 3, 5), 3),
    ]:
        layer = Conv(5, 3, spatial_dims=dims)
        params, _ = jax.eval_shape(lambda k: layer.init(k, shape)[1:], KEY)
        assert declared_shape(layer, shape) == expected == layer.output_shape(shape)
        assert params["kernel"].shape == (3,) * (len(shape) - 2) + (3, 5)


def test_same_padding_flip_and_im2col():
    x = random((2, 7, 6, 3), 5)
    base = Conv(4, 3, stride=2, padding="SAME")
    out, params, _ = base.init(KEY, x.shape)
    assert out == (2, 4, 3, 4)
    # flip=True is the cross-correlation with the spatially reversed kernel.
    flipped = dict(params, kernel=np.asarray(params["kernel"])[::-1, ::-1].copy())
    im2col = Conv(4, 3, stride=2, padding="SAME", algorithm="im2col")
    flip = Conv(4, 3, stride=2, padding="SAME", flip=True)

    @jax.jit  # the three applies in one program
    def run(p, pf, xx):
        return tuple(m.apply(q, {}, xx, train=False)[0] for m, q in ((base, p), (im2col, p), (flip, pf)))

    y, y2, y3 = run(params, flipped, x)
    assert_close(y2, y, what="im2col vs xla")
    assert_close(y3, y, what="flip")


def test_integer_input_computes_in_the_param_dtype():
    layer = Conv(2, 2)
    _, params, _ = layer.init(KEY, (1, 3, 3, 1))
    y = jax.jit(lambda p, x: layer.apply(p, {}, x, train=False)[0])(params, np.ones((1, 3, 3, 1), np.int32))
    assert y.dtype == jnp.float32


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Conv(0, 3), "Conv: features must be an int >= 1"),
        (lambda: Conv(4, (3, 0)), "Conv: kernel_size must be an int >= 1"),
        (lambda: Conv(4, (1, 1, 1, 1)), "Conv: kernel_size needs 1, 2 or 3 entries"),
        (lambda: Conv(4, 3, stride=0), "Conv: stride must be an int >= 1"),
        (lambda: Conv(4, 3, stride=-1), "Conv: stride must be an int >= 1"),
        (lambda: Conv(4, 3, dilation=(1, 0)), "Conv: dilation must be an int >= 1"),
        (lambda: Conv(4, 3, padding=-1), "Conv: padding must be non-negative"),
        (lambda: Conv(4, 3, padding=((1, -1), (0, 0))), "Conv: padding must be non-negative"),
        (lambda: Conv(4, 3, padding="FULL"), "Conv: unknown padding 'FULL'"),
        (lambda: Conv(4, 3, padding=1.5), "Conv: padding must be an int, a sequence or 'SAME'/'VALID', got 1.5"),
        (lambda: Conv(4, 3, padding_mode="mirror"), "Conv: unknown padding_mode 'mirror'"),
        (lambda: Conv(4, 3, algorithm="fft"), "Conv: unknown algorithm 'fft'"),
        (lambda: Conv(4, 3, groups=3), "Conv: groups=3 must divide features=4"),
        (lambda: Conv(4, 3, groups=0), "Conv: groups must be an int >= 1"),
        (lambda: ConvTranspose(4, 3, padding="SAME"), "ConvTranspose: unknown padding 'SAME'"),
        (lambda: ConvTranspose(4, 3, stride=0), "ConvTranspose: stride must be an int >= 1"),
        (lambda: ConvTranspose(4, 3, output_padding=-1), "ConvTranspose: output_padding must be an int >= 0"),
        (lambda: ConvTranspose(5, 3, groups=2), "ConvTranspose: groups=2 must divide features=5"),
        (lambda: ConvTranspose(4, 3, padding=-2), "ConvTranspose: padding must be non-negative"),
        (lambda: ConvTranspose(4, 3, stride=2, output_padding=2), "ConvTranspose: output_padding must be smaller"),
        (lambda: Conv(4, (3, 3), spatial_dims=1), r"Conv: kernel_size=\(3, 3\) has 2 entries but spatial_dims=1"),
        (lambda: Conv(4, 3, spatial_dims=4), "Conv: spatial_dims must be 1, 2 or 3"),
    ],
)
def test_constructor_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "layer, shape, match",
    [
        (Conv(4, (3, 3)), (2, 8, 3), r"Conv: expected an input of rank 4 .* got shape \(2, 8, 3\)"),
        (
            Conv(4, 3),
            (2, 3),
            r"Conv: an int kernel_size=3 makes a 2-D layer, which expects an input \(N, H, W, C\) "
            r"of rank 4, got shape \(2, 3\)",
        ),
        (
            Conv(4, 3),
            (-1, 28, 28),
            r"Conv: an int kernel_size=3 makes a 2-D layer.*got shape \(-1, 28, 28\).*"
            r"kernel_size=\(3,\).*spatial_dims=.*reshape them to \(-1, 28, 28, 1\)",
        ),
        (Conv(4, 3, spatial_dims=3), (2, 8, 8, 3), r"Conv: an int kernel_size=3 makes a 3-D layer"),
        (Conv(4, (3, 3, 3)), (2, 8, 8, 3), r"Conv: expected an input of rank 5 \(N, D, H, W, C\)"),
        (Conv(4, 3, groups=2), (2, 8, 8, 3), r"Conv: groups=2 must divide the input channels C_in=3"),
        (Conv(4, 5), (2, 4, 4, 3), r"Conv: input shape \(2, 4, 4, 3\): .*kernel is larger than the padded input"),
        (Conv(4, 5, padding=1), (2, 2, 8, 3), r"Conv: input shape .*kernel is larger than the padded input"),
        (Conv(4, 3, stride=(1, 2, 3)), (2, 8, 8, 3), r"stride needs one value per spatial dim"),
        (Conv(4, 3, padding=3, padding_mode="reflect"), (1, 3, 3, 1), r"Conv: .*reflect.* needs padding < input"),
        (Conv(4, 3, padding=4, padding_mode="circular"), (1, 3, 3, 1), r"Conv: .*circular.* needs padding <= input"),
        (ConvTranspose(4, 3, groups=2), (2, 8, 8, 3), r"ConvTranspose: groups=2 must divide the input channels"),
        (ConvTranspose(4, (3,)), (2, 8, 8, 3), r"ConvTranspose: expected an input of rank 3"),
        (ConvTranspose(4, 3, padding=3), (2, 1, 1, 3), r"ConvTranspose: .*non-positive output size"),
    ],
)
def test_init_errors(layer, shape, match):
    with pytest.raises(ValueError, match=match):
        layer.init(KEY, shape)


@pytest.mark.parametrize("layer", [Conv(4, 3), ConvTranspose(4, 3)], ids=["Conv", "ConvTranspose"])
def test_channel_and_rank_mismatch_between_init_and_apply(layer):
    name = layer.kind
    _, params, _ = layer.init(KEY, (2, 6, 6, 3))
    with pytest.raises(ValueError, match=rf"{name}: channel mismatch: .*C_in=3 .*shape \(2, 6, 6, 5\)"):
        layer.apply(params, {}, jax.device_put(np.ones((2, 6, 6, 5), np.float32)), train=False)
    with pytest.raises(ValueError, match=rf"{name}: expected an input of rank 4 .*got shape \(2, 6, 3\)"):
        layer.apply(params, {}, jax.device_put(np.ones((2, 6, 3), np.float32)), train=False)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st


@settings(max_examples=25)
@given(st.data())
def test_declared_output_shape_and_errors_agree_with_torch(data):
    """init's shape (eval_shape only, no compile) equals torch's output shape, and both reject the same configs."""
    n = data.draw(st.integers(1, 3), "n")
    transposed = data.draw(st.booleans(), "transposed")
    ints = lambda lo, hi, name: tuple(data.draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n), name))  # noqa: E731
    size, kernel, stride = ints(1, 7, "size"), ints(1, 4, "kernel"), ints(1, 3, "stride")
    padding, dilation = ints(0, 2, "padding"), ints(1, 2, "dilation")
    groups = data.draw(st.sampled_from([1, 2]), "groups")
    c_in, features = 2 * groups, 2 * groups
    shape = (1, *size, c_in)
    x = torch.zeros((1, c_in, *size))
    if transposed:
        out_pad = tuple(data.draw(st.integers(0, max(s, d) - 1), "output_padding") for s, d in zip(stride, dilation))
        layer = ConvTranspose(
            features, kernel, stride=stride, padding=padding, output_padding=out_pad, dilation=dilation, groups=groups
        )
        fn = getattr(torch.nn.functional, f"conv_transpose{n}d")
        call = lambda: fn(
            x,
            torch.zeros((c_in, features // groups, *kernel)),
            stride=stride,  # noqa: E731
            padding=padding,
            output_padding=out_pad,
            dilation=dilation,
            groups=groups,
        )
    else:
        layer = Conv(features, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups)
        fn = getattr(torch.nn.functional, f"conv{n}d")
        call = lambda: fn(
            x,
            torch.zeros((features, c_in // groups, *kernel)),
            stride=stride,  # noqa: E731
            padding=padding,
            dilation=dilation,
            groups=groups,
        )
    try:
        expected = call().shape
        if 0 in expected:  # torch returns an empty output; jcnn rejects a non-positive size (DESIGN §2)
            raise RuntimeError
    except RuntimeError:
        with pytest.raises(ValueError, match="Conv.*: input shape"):
            declared_shape(layer, shape)
        return
    out = declared_shape(layer, shape)
    assert out == (1, *expected[2:], features)
