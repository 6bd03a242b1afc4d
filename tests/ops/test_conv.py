"""jcnn.ops.conv / conv_transpose against the NumPy reference (float64) and torch.nn.functional, forward
and gradient, over hypothesis-drawn configurations (1/2/3-D, stride, asymmetric padding in every form and
mode, dilation, groups incl. depthwise, flip), plus transforms, dtypes and every error."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from jcnn import reference
from jcnn.ops import PADDING_MODES, conv, conv_transpose, normalize_padding
from jcnn.ops.padding import effective_kernel
from tests.helpers import (
    assert_close,
    from_torch_layout,
    to_torch_layout,
    torch_conv_transpose_weight,
    torch_conv_weight,
)

TORCH_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def _kernel_from_torch(grad: torch.Tensor, transpose: bool = False) -> np.ndarray:
    """torch weight layout → jcnn: ``(C_out, C_in/g, *K)`` → HWIO, or (``transpose``)
    ``(C_in, C_out/g, *K)`` → ``(*K, C_in, C_out/g)``."""
    g = grad.detach().numpy()
    n = g.ndim - 2
    perm = tuple(range(2, n + 2)) + ((0, 1) if transpose else (1, 0))
    return g.transpose(perm)


@st.composite
def conv_configs(draw, dims=(1, 2, 3)):
    n = draw(st.sampled_from(dims))
    big = 3 if n < 3 else 2  # keeps 3-D reference loops and compiles small
    ksize = tuple(draw(st.integers(1, big)) for _ in range(n))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(n))
    dilation = tuple(draw(st.integers(1, big)) for _ in range(n))
    if draw(st.booleans()):  # depthwise: one input channel per group, channel multiplier 1 or 2
        groups = draw(st.integers(2, 3))
        cig, cog = 1, draw(st.integers(1, 2))
    else:
        groups = draw(st.integers(1, 2))
        cig, cog = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    eff = effective_kernel(ksize, dilation)
    spatial = tuple(max(3, e + draw(st.integers(0, 3))) for e in eff)
    kind = draw(st.sampled_from(["int", "per_dim", "pairs", "SAME", "VALID"]))
    if kind == "int":
        padding = draw(st.integers(0, 2))
    elif kind == "per_dim":
        padding = tuple(draw(st.integers(0, 2)) for _ in range(n))
    elif kind == "pairs":
        padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(n))
    else:
        padding = kind
    return dict(
        n=n,
        ksize=ksize,
        stride=stride,
        dilation=dilation,
        groups=groups,
        c_in=cig * groups,
        c_out=cog * groups,
        spatial=spatial,
        padding=padding,
        padding_mode=draw(st.sampled_from(PADDING_MODES)),
        flip=draw(st.booleans()),
    )


def _arrays(cfg, dtype=np.float32, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((2, *cfg["spatial"], cfg["c_in"])).astype(dtype)
    k = r.standard_normal((*cfg["ksize"], cfg["c_in"] // cfg["groups"], cfg["c_out"])).astype(dtype)
    b = r.standard_normal(cfg["c_out"]).astype(dtype)
    return x, k, b


def _pairs(cfg):
    return normalize_padding(
        cfg["padding"],
        cfg["n"],
        "test",
        input_spatial=cfg["spatial"],
        window=effective_kernel(cfg["ksize"], cfg["dilation"]),
        stride=cfg["stride"],
    )


def _kwargs(cfg):
    return {key: cfg[key] for key in ("stride", "padding", "dilation", "groups", "flip", "padding_mode")}


def _torch_conv(cfg, x, k, b, cot):
    """torch forward and autograd gradients (channels-last, HWIO) of the same conv; padding by F.pad."""
    xt = to_torch_layout(x).requires_grad_()
    kt = torch_conv_weight(k).requires_grad_()
    bt = torch.from_numpy(b).requires_grad_()
    kk = torch.flip(kt, dims=tuple(range(2, 2 + cfg["n"]))) if cfg["flip"] else kt
    flat = [v for lo_hi in reversed(_pairs(cfg)) for v in lo_hi]
    xp = F.pad(xt, flat, mode=TORCH_MODE[cfg["padding_mode"]]) if any(flat) else xt
    fn = getattr(F, f"conv{cfg['n']}d")
    y = fn(xp, kk, bt, stride=cfg["stride"], dilation=cfg["dilation"], groups=cfg["groups"])
    y.backward(to_torch_layout(cot))
    return from_torch_layout(y), (from_torch_layout(xt.grad), _kernel_from_torch(kt.grad), bt.grad.numpy())


@settings(max_examples=20)
@given(cfg=conv_configs())
def test_conv_matches_reference_torch_and_im2col(cfg):
    x, k, b = _arrays(cfg)
    kw = _kwargs(cfg)
    oracle = reference.convolve if cfg["flip"] else reference.correlate
    expected = oracle(
        x,
        k,
        b,
        stride=cfg["stride"],
        padding=_pairs(cfg),
        dilation=cfg["dilation"],
        groups=cfg["groups"],
        padding_mode=cfg["padding_mode"],
    )

    cot = np.random.default_rng(1).standard_normal(expected.shape).astype(np.float32)

    @jax.jit  # one compile per example instead of one per eager op
    def run(x, k, b, cot):
        y, vjp = jax.vjp(lambda x_, k_, b_: conv(x_, k_, b_, algorithm="xla", **kw), x, k, b)
        return y, vjp(cot), conv(x, k, b, algorithm="im2col", **kw)

    y, grads, y_im2col = run(x, k, b, cot)
    assert y.dtype == jnp.float32
    assert_close(y, expected, what="xla vs reference")
    assert_close(y_im2col, expected, what="im2col vs reference")
    assert_close(y_im2col, y, what="im2col vs xla")

    y_t, grads_t = _torch_conv(cfg, x, k, b, cot)
    assert_close(y, y_t, what="xla vs torch")
    for name, g, g_t in zip(("x", "kernel", "bias"), grads, grads_t):
        assert_close(g, g_t, what=f"d{name} vs torch")


GRAD_CONFIGS = [
    dict(
        n=1,
        ksize=(3,),
        stride=(2,),
        dilation=(2,),
        groups=1,
        c_in=2,
        c_out=3,
        spatial=(9,),
        padding=((2, 1),),
        padding_mode="circular",
        flip=True,
    ),
    dict(
        n=2,
        ksize=(3, 2),
        stride=(1, 2),
        dilation=(1, 2),
        groups=2,
        c_in=4,
        c_out=2,
        spatial=(6, 7),
        padding="SAME",
        padding_mode="reflect",
        flip=False,
    ),
    dict(
        n=3,
        ksize=(2, 2, 2),
        stride=(2, 1, 1),
        dilation=(1, 1, 2),
        groups=3,
        c_in=3,
        c_out=3,
        spatial=(4, 3, 4),
        padding=1,
        padding_mode="replicate",
        flip=False,
    ),
]


@pytest.mark.parametrize("algorithm", ["xla", "im2col"])
@pytest.mark.parametrize("cfg", GRAD_CONFIGS, ids=["1d", "2d", "3d"])
def test_conv_check_grads_float64(cfg, algorithm):
    x, k, b = _arrays(cfg, np.float64)
    check_grads(
        jax.jit(lambda x_, k_, b_: conv(x_, k_, b_, algorithm=algorithm, **_kwargs(cfg))),
        (x, k, b),
        order=1,
        modes=["rev"],
        atol=1e-6,
        rtol=1e-6,
    )


def test_conv_im2col_gradient_equals_xla():
    cfg = GRAD_CONFIGS[1]
    x, k, b = _arrays(cfg)

    def grads(algorithm):
        loss = lambda *a: jnp.sum(jnp.sin(conv(*a, algorithm=algorithm, **_kwargs(cfg))))  # noqa: E731
        return jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(x, k, b)

    for g_x, g_i in zip(grads("xla"), grads("im2col")):
        assert_close(g_i, g_x)


def test_seed_example_and_auto_is_xla():
    # The seed's §1 worked example (4×4 image, 3×3 filter → 2×2, bias 3); the numbers are checked by hand
    # in tests/reference/test_reference_conv.py.
    image = np.array([[1, 2, 3, 0], [0, 1, 2, 3], [3, 0, 1, 2], [2, 3, 0, 1]], np.float32)
    filt = np.array([[2, 0, 1], [0, 1, 2], [1, 0, 2]], np.float32)
    cfg = GRAD_CONFIGS[1]
    x, k, b = _arrays(cfg)

    @jax.jit  # every conv in one compile
    def run(image, filt, x, k, b):
        return conv(image, filt, np.array([3.0], np.float32)), (
            conv(x, k, b, **_kwargs(cfg)),
            conv(x, k, b, algorithm="xla", **_kwargs(cfg)),
        )

    out, (auto, xla) = run(image[None, :, :, None], filt[:, :, None, None], x, k, b)
    np.testing.assert_array_equal(np.asarray(out)[0, :, :, 0], [[18, 19], [9, 18]])
    np.testing.assert_array_equal(auto, xla)


@st.composite
def transpose_configs(draw):
    n = draw(st.sampled_from((1, 2, 3)))
    big = 3 if n < 3 else 2
    ksize = tuple(draw(st.integers(1, big)) for _ in range(n))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(n))
    dilation = tuple(draw(st.integers(1, big)) for _ in range(n))
    out_pad = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    spatial = tuple(draw(st.integers(1, 4)) for _ in range(n))
    padding = tuple(
        draw(st.integers(0, (d * (k - 1) + (i - 1) * s) // 2)) for k, d, i, s in zip(ksize, dilation, spatial, stride)
    )
    groups = draw(st.integers(1, 3))
    return dict(
        n=n,
        ksize=ksize,
        stride=stride,
        dilation=dilation,
        output_padding=out_pad,
        spatial=spatial,
        padding=padding,
        groups=groups,
        c_in=groups * draw(st.integers(1, 2)),
        c_out=groups * draw(st.integers(1, 2)),
    )


def _transpose_arrays(cfg, dtype=np.float32):
    r = np.random.default_rng(2)
    x = r.standard_normal((2, *cfg["spatial"], cfg["c_in"])).astype(dtype)
    k = r.standard_normal((*cfg["ksize"], cfg["c_in"], cfg["c_out"] // cfg["groups"])).astype(dtype)
    return x, k, r.standard_normal(cfg["c_out"]).astype(dtype)


def _transpose_kwargs(cfg):
    return {key: cfg[key] for key in ("stride", "padding", "output_padding", "dilation", "groups")}


@settings(max_examples=15)
@given(cfg=transpose_configs())
def test_conv_transpose_matches_reference_and_torch(cfg):
    x, k, b = _transpose_arrays(cfg)
    kw = _transpose_kwargs(cfg)
    expected = reference.conv_transpose(x, k, b, **kw)
    cot = np.random.default_rng(3).standard_normal(expected.shape).astype(np.float32)

    @jax.jit
    def run(x, k, b, cot):
        y, vjp = jax.vjp(lambda x_, k_, b_: conv_transpose(x_, k_, b_, **kw), x, k, b)
        return y, vjp(cot)

    y, (g_x, g_k, g_b) = run(x, k, b, cot)
    assert y.dtype == jnp.float32
    assert_close(y, expected, what="vs reference")

    xt = to_torch_layout(x).requires_grad_()
    kt = torch_conv_transpose_weight(k).requires_grad_()
    bt = torch.from_numpy(b).requires_grad_()
    y_t = getattr(F, f"conv_transpose{cfg['n']}d")(xt, kt, bt, **kw)
    y_t.backward(to_torch_layout(cot))
    assert_close(y, from_torch_layout(y_t), what="vs torch")
    assert_close(g_x, from_torch_layout(xt.grad), what="dx vs torch")
    assert_close(g_k, _kernel_from_torch(kt.grad, transpose=True), what="dkernel vs torch")
    assert_close(g_b, bt.grad.numpy(), what="dbias vs torch")


def test_conv_transpose_asymmetric_padding_and_check_grads():
    r = np.random.default_rng(4)
    x, k, b = r.standard_normal((2, 4, 3, 4)), r.standard_normal((3, 2, 4, 3)), r.standard_normal(6)
    kw = dict(stride=(2, 3), padding=((0, 2), (1, 0)), output_padding=(1, 0), dilation=(1, 2), groups=2)
    y = jax.jit(lambda *a: conv_transpose(*a, **kw))(x, k, b)
    assert y.shape == (2, 8, 8, 6)  # (4−1)·2 − 0 − 2 + 1·2 + 1 + 1 and (3−1)·3 − 1 − 0 + 2·1 + 0 + 1
    assert_close(y, reference.conv_transpose(x, k, b, **kw), rtol=1e-12)
    check_grads(jax.jit(lambda *a: conv_transpose(*a, **kw)), (x, k, b), order=1, modes=["rev"], atol=1e-6, rtol=1e-6)


def test_conv_transpose_is_the_input_gradient_of_conv():
    r = np.random.default_rng(5)
    x, k = r.standard_normal((1, 7, 6, 4)), r.standard_normal((3, 3, 2, 6))
    kw = dict(stride=2, padding=1, dilation=1, groups=2)
    shape = jax.eval_shape(lambda x_: conv(x_, k, **kw), x).shape
    cot = r.standard_normal(shape)
    # The same weights as a transposed kernel (*K, C_out, C_in/G): entry [g·3 + j, i] = k[i, g·3 + j].
    kt = k.reshape(3, 3, 2, 2, 3).transpose(0, 1, 3, 4, 2).reshape(3, 3, 6, 2)

    @jax.jit  # the vjp and the transposed conv in one compile
    def run(x, cot):
        _, vjp = jax.vjp(lambda x_: conv(x_, k, **kw), x)
        return vjp(cot)[0], conv_transpose(cot, kt, stride=2, padding=1, output_padding=(0, 1), groups=2)

    g, t = run(x, cot)
    assert_close(t, g, rtol=1e-12)


def test_jit_grad_vmap():
    cfg = GRAD_CONFIGS[1]
    x, k, b = _arrays(cfg)
    kw = _kwargs(cfg)
    f = lambda x_, k_, b_: conv(x_, k_, b_, **kw)  # noqa: E731
    eager = f(x, k, b)
    assert_close(jax.jit(f)(x, k, b), eager)
    per_example = jax.jit(jax.vmap(lambda xi: f(xi[None], k, b)[0]))(x)  # jitted: eager vmap compiles per op
    assert_close(per_example, eager)
    g = jax.jit(jax.grad(lambda k_: jnp.sum(f(x, k_, b) ** 2)))(k)
    assert g.shape == k.shape and g.dtype == jnp.float32
    xt, kt, bt = _transpose_arrays(dict(n=2, ksize=(2, 3), spatial=(3, 4), c_in=4, c_out=6, groups=2))
    ft = lambda x_: conv_transpose(x_, kt, bt, stride=2, groups=2)  # noqa: E731
    eager_t = ft(xt)
    assert_close(jax.jit(ft)(xt), eager_t)
    assert_close(jax.jit(jax.vmap(lambda xi: ft(xi[None])[0]))(xt), eager_t)
    assert jax.jit(jax.grad(lambda x_: jnp.sum(ft(x_))))(xt).shape == xt.shape


@pytest.mark.parametrize("dtype, rtol", [(jnp.bfloat16, 2e-2), (jnp.float16, 4e-3)])
def test_low_precision_runs(dtype, rtol):
    # Inputs are rounded to `dtype` first, so the error measured is that of the computation only:
    # K·C_in = 12 products per output, each rounded output has relative error ≤ eps/2 (bf16 2^-9, f16
    # 2^-12) plus a few ulps of accumulation; the normwise tolerance allows ~5 ulps of the largest output.
    cfg = GRAD_CONFIGS[1]
    x, k, b = (a.astype(dtype) for a in _arrays(cfg))  # rounded on the host
    kt = np.concatenate([k, k], axis=2)  # transposed kernel (3, 2, C_in=4, C_out=2)

    def run(x, k, b, kt):
        return (
            conv(x, k, b, algorithm="xla", **_kwargs(cfg)),
            conv(x, k, b, algorithm="im2col", **_kwargs(cfg)),
            conv_transpose(x, kt, b, stride=2),
        )

    # both precisions in one compile
    outputs, expected = jax.jit(lambda low, high: (run(*low), run(*high)))(
        (x, k, b, kt), tuple(a.astype(np.float32) for a in (x, k, b, kt))
    )
    for name, y, e in zip(("xla", "im2col", "conv_transpose"), outputs, expected):
        assert y.dtype == dtype
        assert_close(y, e, rtol=rtol, what=f"{name} {dtype.__name__}")


def test_dtype_promotion_and_preservation():
    def dtype_of(fn, *arrays, **kw):
        return jax.eval_shape(lambda *a: fn(*a, **kw), *arrays).dtype

    x, k, b = _arrays(GRAD_CONFIGS[0])
    bf16, f16 = jnp.bfloat16, jnp.float16
    for algorithm in ("xla", "im2col"):
        assert dtype_of(conv, x, k, b, padding=1, algorithm=algorithm) == jnp.float32  # stays f32 under x64
        assert dtype_of(conv, x.astype(bf16), k, b, algorithm=algorithm) == jnp.float32
        assert dtype_of(conv, x.astype(np.float64), k, b.astype(bf16), algorithm=algorithm) == jnp.float64
        assert dtype_of(conv, x.astype(bf16), k.astype(bf16), b, algorithm=algorithm) == bf16
    assert dtype_of(conv, x, k, b, padding=1, padding_mode="circular") == jnp.float32
    xt, kt, bt = _transpose_arrays(dict(n=1, ksize=(3,), spatial=(5,), c_in=2, c_out=2, groups=1))
    assert dtype_of(conv_transpose, xt, kt, bt, stride=2, padding=1) == jnp.float32
    assert dtype_of(conv_transpose, xt.astype(f16), kt.astype(np.float64)) == jnp.float64
    assert dtype_of(conv_transpose, xt.astype(f16), kt.astype(f16), bt) == f16


X2 = np.zeros((1, 5, 5, 4), np.float32)
K2 = np.zeros((3, 3, 4, 6), np.float32)


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((X2[0, 0], K2), {}, r"conv: x must be channels-last .* got shape \(5, 4\)"),
        ((np.zeros((1, 2, 2, 2, 2, 2, 1)), K2), {}, r"rank 3, 4 or 5"),
        ((X2, K2[0]), {}, r"conv: kernel must have rank 4 .* got kernel shape \(3, 4, 6\)"),
        ((X2, K2[:, :, :3]), {}, r"conv: channel mismatch: x has C_in=4 .* = 3·1 = 3"),
        ((X2, K2[:, :, :2]), {"groups": 3}, r"groups=3 must divide both C_in=4 and C_out=6"),
        ((X2, K2[:, :, :1, :5]), {"groups": 4}, r"groups=4 must divide both C_in=4 and C_out=5"),
        ((X2, K2), {"groups": 0}, r"conv: groups must be an int >= 1, got 0"),
        ((X2, K2), {"groups": 2.0}, r"conv: groups must be an int >= 1, got 2.0"),
        ((X2, K2), {"padding": -1}, r"conv: padding must be non-negative"),
        ((X2, K2), {"padding": ((0, 1), (-2, 0))}, r"conv: padding must be non-negative"),
        ((X2, K2), {"stride": 0}, r"conv: every stride must be >= 1"),
        ((X2, K2), {"dilation": (1, 0)}, r"conv: every dilation must be >= 1"),
        ((X2, K2), {"stride": (1, 2, 3)}, r"conv: stride needs one value per spatial dim \(2"),
        ((X2, K2), {"padding": "FULL"}, r"conv: unknown padding string 'FULL'"),
        ((X2, K2), {"padding_mode": "mirror"}, r"conv: unknown padding_mode 'mirror'"),
        ((X2, K2), {"algorithm": "fft"}, r"conv: unknown algorithm 'fft'"),
        ((X2, K2, np.zeros(4)), {}, r"conv: bias must have shape \(C_out,\) = \(6,\), got \(4,\)"),
        (
            (X2, K2),
            {"dilation": 3},
            r"conv: input \(1, 5, 5, 4\) with kernel \(3, 3, 4, 6\): output_size: "
            r"non-positive output size.* I=5, P_low=0, P_high=0, D=3, K=3, S=1",
        ),
        ((X2, K2), {"padding": 5, "padding_mode": "reflect"}, r"conv: padding_mode='reflect' needs padding < input"),
    ],
)
def test_conv_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        conv(*args, **kwargs)


XT = np.zeros((1, 3, 3, 4), np.float32)
KT = np.zeros((3, 3, 4, 2), np.float32)


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((XT[0, 0], KT), {}, r"conv_transpose: x must be channels-last"),
        ((XT, KT[0]), {}, r"conv_transpose: kernel must have rank 4 \(\*spatial, C_in, C_out/groups\)"),
        ((XT, KT[:, :, :3]), {}, r"conv_transpose: channel mismatch: x has C_in=4 .* kernel.shape\[-2\]=3"),
        ((XT, KT), {"groups": 3}, r"conv_transpose: groups=3 must divide C_in=4"),
        ((XT, KT), {"groups": -1}, r"conv_transpose: groups must be an int >= 1"),
        ((XT, KT, np.zeros(2)), {"groups": 2}, r"conv_transpose: bias must have shape \(C_out,\) = \(4,\)"),
        ((XT, KT), {"padding": "SAME"}, r"conv_transpose: padding must be .* got 'SAME'"),
        ((XT, KT), {"padding": -1}, r"conv_transpose: padding must be non-negative"),
        ((XT, KT), {"stride": 0}, r"conv_transpose: every stride must be >= 1"),
        ((XT, KT), {"dilation": 0}, r"conv_transpose: every dilation must be >= 1"),
        ((XT, KT), {"output_padding": -1}, r"conv_transpose: every output_padding must be >= 0"),
        (
            (XT, KT),
            {"stride": 2, "output_padding": (1, 2)},
            r"output_padding must be smaller than either stride or dilation, got output_padding=\(1, 2\)",
        ),
        (
            (XT, KT),
            {"padding": 3},
            r"non-positive output size: .* I=3, S=1, P_low=3, P_high=3, D=1, K=3, "
            r"output_padding=0 gives -1",
        ),
    ],
)
def test_conv_transpose_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        conv_transpose(*args, **kwargs)


# -- algorithm="direct" (sum over kernel taps), "spectral" (FFT products) and the "auto" choice ---


LOWERINGS = ("direct", "spectral", "matmul_grad")


@settings(max_examples=12)
@given(cfg=conv_configs())
def test_conv_lowerings_match_reference_and_torch(cfg):
    # direct, spectral and matmul_grad in one jit per drawn config: one compile, one reference, one torch run.
    x, k, b = _arrays(cfg)
    kw = _kwargs(cfg)
    oracle = reference.convolve if cfg["flip"] else reference.correlate
    expected = oracle(
        x,
        k,
        b,
        stride=cfg["stride"],
        padding=_pairs(cfg),
        dilation=cfg["dilation"],
        groups=cfg["groups"],
        padding_mode=cfg["padding_mode"],
    )
    cot = np.random.default_rng(1).standard_normal(expected.shape).astype(np.float32)

    @jax.jit
    def run(x, k, b, cot):
        out = {}
        for algorithm in LOWERINGS:
            y, vjp = jax.vjp(lambda x_, k_, b_: conv(x_, k_, b_, algorithm=algorithm, **kw), x, k, b)
            out[algorithm] = y, vjp(cot)
        return out

    y_t, grads_t = _torch_conv(cfg, x, k, b, cot)
    for algorithm, (y, grads) in run(x, k, b, cot).items():
        assert y.dtype == jnp.float32
        assert_close(y, expected, what=f"{algorithm} vs reference")
        assert_close(y, y_t, what=f"{algorithm} vs torch")
        for name, g, g_t in zip(("x", "kernel", "bias"), grads, grads_t):
            assert_close(g, g_t, what=f"{algorithm} d{name} vs torch")


# Shapes that take matmul_grad's other kernel-gradient programs (GRAD_CONFIGS' few channels and small maps
# take the transposed im2col): per-tap products over 4 batch chunks (lax.scan), and without chunks.
TAP_CONFIGS = [
    dict(
        n=2,
        ksize=(3, 3),
        stride=(1, 2),
        dilation=(1, 1),
        groups=1,
        c_in=16,
        c_out=8,
        spatial=(24, 40),
        padding=1,
        padding_mode="zeros",
        flip=False,
    ),
    dict(
        n=3,
        ksize=(2, 3, 2),
        stride=(1, 1, 2),
        dilation=(2, 1, 1),
        groups=2,
        c_in=32,
        c_out=4,
        spatial=(7, 5, 9),
        padding=((1, 0), (1, 1), (0, 2)),
        padding_mode="zeros",
        flip=False,
    ),
]


@pytest.mark.parametrize("cfg", GRAD_CONFIGS + TAP_CONFIGS, ids=["1d", "2d", "3d-depthwise", "2d-scan", "3d-taps"])
def test_conv_matmul_grad_equals_xla_gradient_float64(cfg):
    # The forward and input gradient are XLA's; the kernel gradient is new: it must equal XLA's (verified by
    # check_grads above) to float64 rounding, on every program it chooses.
    x, k, b = _arrays(cfg, np.float64)
    if cfg in TAP_CONFIGS:
        x = np.concatenate([x, x[::-1] * 0.5])  # a batch of 4
    kw = _kwargs(cfg)

    @jax.jit
    def grads(x, k, b):
        loss = lambda a, *args: jnp.sum(jnp.sin(conv(*args, algorithm=a, **kw)))  # noqa: E731
        return [jax.grad(functools.partial(loss, a), argnums=(0, 1, 2))(x, k, b) for a in ("xla", "matmul_grad")]

    want, got = grads(x, k, b)
    for name, g, w in zip(("x", "kernel", "bias"), got, want):
        assert_close(g, w, 1e-12, what=f"matmul_grad d{name}")
    if cfg is TAP_CONFIGS[0]:
        assert "scan" in _primitives(grads, x, k, b)  # the batch-chunked program ran


def test_conv_matmul_grad_half_precision_gradients():
    # bf16/f16 kernel gradients accumulate in float32 and round once: as close to the float32 gradient as
    # the rounded inputs allow (same normwise bound as test_low_precision_runs).
    cfg = TAP_CONFIGS[0]
    x, k, b = _arrays(cfg)

    @jax.jit
    def dk(x, k):
        return jax.grad(lambda k_: jnp.sum(conv(x, k_, algorithm="matmul_grad", **_kwargs(cfg)) ** 2))(k)

    for dtype, rtol in ((jnp.bfloat16, 3e-2), (jnp.float16, 4e-3)):
        xl, kl = x.astype(dtype), k.astype(dtype)  # rounded on the host
        got = dk(xl, kl)
        assert got.dtype == dtype
        assert_close(got, dk(xl.astype(np.float32), kl.astype(np.float32)), rtol, what=f"{dtype.__name__} dkernel")


@pytest.mark.parametrize("algorithm", ["direct", "spectral"])
@pytest.mark.parametrize("cfg", GRAD_CONFIGS, ids=["1d", "2d", "3d-depthwise"])
def test_conv_direct_and_spectral_check_grads_float64(cfg, algorithm):
    x, k, b = _arrays(cfg, np.float64)
    check_grads(
        jax.jit(lambda x_, k_, b_: conv(x_, k_, b_, algorithm=algorithm, **_kwargs(cfg))),
        (x, k, b),
        order=1,
        modes=["rev"],
        atol=1e-6,
        rtol=1e-6,
    )


def _primitives(fn, *args) -> str:
    """The jaxpr's text (nested jits included), to look for primitive names in."""
    return str(jax.make_jaxpr(fn)(*args))


def test_auto_picks_direct_im2col_and_spectral_per_shape_on_cpu():
    # benchmarks/CONV.md: on CPU XLA's grouped convolution is 4-20x slower than the tap sum for depthwise
    # convs, im2col beats it on 1x1 kernels and tiny outputs, the FFT on LeNet-5's 5x5 convs.
    r = np.random.default_rng(0)
    x = r.standard_normal((2, 9, 9, 4)).astype(np.float32)
    depthwise = r.standard_normal((3, 3, 1, 8)).astype(np.float32)
    dense = r.standard_normal((3, 3, 2, 4)).astype(np.float32)
    big = r.standard_normal((5, 5, 4, 6)).astype(np.float32)
    auto_dw = _primitives(lambda a, w: conv(a, w, groups=4, padding=1), x, depthwise)
    auto_dense = _primitives(lambda a, w: conv(a, w, groups=2, padding=1), x, dense)
    x8 = np.concatenate([x] * 4)  # the FFT pays off from a batch of 8 (at batch 1 XLA's conv is faster)
    auto_big = _primitives(lambda a, w: conv(a, w, padding=2), x8, big)
    auto_big_b2 = _primitives(lambda a, w: conv(a, w, padding=2), x, big)
    auto_big_strided = _primitives(lambda a, w: conv(a, w, stride=2, padding=2), x, big)
    pointwise = r.standard_normal((1, 1, 4, 6)).astype(np.float32)
    auto_1x1 = _primitives(lambda a, w: conv(a, w), x, pointwise)
    auto_tiny_out = _primitives(lambda a, w: conv(a, w, stride=4), x, dense[:, :, :, :4].repeat(2, axis=2))
    auto_ungrouped = _primitives(lambda a, w: conv(a, w, padding=1), x, dense[:, :, :, :4].repeat(2, axis=2))
    assert "conv_general_dilated" in auto_dense and "conv_general_dilated" in auto_big_strided
    assert "conv_general_dilated" in auto_big_b2
    if jax.default_backend() == "cpu":
        # 1x1 kernels and outputs of <= 4 positions are one dot_general (im2col).
        for jaxpr in (auto_1x1, auto_tiny_out):
            assert "dot_general" in jaxpr and "conv_general_dilated" not in jaxpr
        assert "conv_general_dilated" not in auto_dw
        # ungrouped convs: XLA's forward with the kernel gradient as matmuls (a custom VJP)
        assert "custom_vjp_call" in auto_ungrouped and "custom_vjp_call" in auto_big_strided
        assert "custom_vjp_call" not in auto_dense
        assert "fft[" in auto_big and "conv_general_dilated" not in auto_big

        @jax.jit  # the four convs in one compile
        def run(x, x8):
            return (
                (conv(x, depthwise, groups=4, padding=1), conv(x, depthwise, groups=4, padding=1, algorithm="xla")),
                (conv(x8, big, padding=2), conv(x8, big, padding=2, algorithm="xla")),
            )

        for auto, xla in run(x, x8):
            assert_close(auto, xla)
    else:
        assert "conv_general_dilated" in auto_dw and "conv_general_dilated" in auto_big
        assert "custom_vjp_call" not in auto_ungrouped


@pytest.mark.parametrize("algorithm", ["direct", "spectral"])
@pytest.mark.parametrize("dtype, rtol", [(jnp.bfloat16, 2e-2), (jnp.float16, 4e-3)])
def test_conv_direct_and_spectral_low_precision(dtype, rtol, algorithm):
    # Same bound as test_low_precision_runs; both compute in float32 and round once.
    for cfg in GRAD_CONFIGS[1:]:
        low = tuple(a.astype(dtype) for a in _arrays(cfg))  # rounded on the host
        # the low-precision conv and the float32 one of the same rounded inputs in one compile
        y, e = jax.jit(lambda low, high: [conv(*a, algorithm=algorithm, **_kwargs(cfg)) for a in (low, high)])(
            low, tuple(a.astype(np.float32) for a in low)
        )
        assert y.dtype == dtype
        assert_close(y, e, rtol=rtol, what=f"{algorithm} {dtype.__name__}")
    x, k, b = _arrays(GRAD_CONFIGS[0])

    def dtype_of(*arrays):  # fixed at trace time: eval_shape traces and compiles nothing
        return jax.eval_shape(lambda *a: conv(*a, algorithm=algorithm), *arrays).dtype

    assert dtype_of(x.astype(np.float64), k, b) == jnp.float64
    assert dtype_of(x, k, b) == jnp.float32
