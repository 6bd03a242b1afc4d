"""Tests of ``jcnn.ops.pooling``. jcnn.ops pooling against the NumPy reference (float64) and torch.nn.functional, forward and gradient,
over hypothesis-drawn configurations (1/2/3-D, windows, strides 1-3, symmetric and asymmetric padding,
dilation, ceil_mode, count_include_pad, odd sizes), plus transforms, dtypes and every error."""

from __future__ import annotations

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
from jcnn.ops import (
    adaptive_avg_pool,
    adaptive_max_pool,
    avg_pool,
    global_avg_pool,
    global_max_pool,
    lp_pool,
    max_pool,
    normalize_padding,
)
from jcnn.ops.padding import effective_kernel
from tests.helpers import assert_close, from_torch_layout, to_torch_layout


def _distinct(rng: np.random.Generator, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """Values without ties (a shuffled ramp plus noise), so the max's argmax — and its gradient — is unique."""
    size = int(np.prod(shape))
    ramp = rng.permutation(size).astype(np.float64) / size - 0.5
    return (ramp + rng.uniform(0, 0.1 / size, size)).reshape(shape).astype(dtype)


def _torch_fwd_bwd(fn, x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``fn`` on the channels-first copy of ``x``; returns (output, vjp with cotangent ``g``), channels-last."""
    xt = to_torch_layout(x).requires_grad_(True)
    yt = fn(xt)
    yt.backward(to_torch_layout(g))
    return from_torch_layout(yt), from_torch_layout(xt.grad)


def _cotangent(rng: np.random.Generator, torch_fn, x: np.ndarray) -> np.ndarray:
    """A random cotangent shaped like the output (its shape taken from torch, so JAX compiles once)."""
    with torch.no_grad():
        shape = from_torch_layout(torch_fn(to_torch_layout(x))).shape
    return rng.standard_normal(shape).astype(x.dtype)


def _jax_fwd_bwd(fn, x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``fn(x)`` and its vjp with cotangent ``g``, as one jit (a single compile per drawn shape)."""

    def both(v, cot):
        y, vjp = jax.vjp(fn, v)
        return y, vjp(cot)[0]

    y, dx = jax.jit(both)(jnp.asarray(x), jnp.asarray(g, dtype=x.dtype))
    return np.asarray(y), np.asarray(dx)


@st.composite
def pool_configs(draw, dilation: bool = True, torch_padding: bool = True):
    """A pooling geometry; ``torch_padding`` keeps padding symmetric (torch's form), else any DESIGN form."""
    n = draw(st.sampled_from((1, 2, 3)))
    big = 3 if n < 3 else 2  # keeps the 3-D reference loops and compiles small
    window = tuple(draw(st.integers(1, big)) for _ in range(n))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(n))
    dil = tuple(draw(st.integers(1, 2)) for _ in range(n)) if dilation else (1,) * n
    if torch_padding:
        padding = tuple(draw(st.integers(0, k // 2)) for k in window)
        pairs = tuple((p, p) for p in padding)
    else:
        kind = draw(st.sampled_from(["pairs", "SAME", "VALID"]))
        pairs = tuple((draw(st.integers(0, k // 2)), draw(st.integers(0, k // 2))) for k in window)
        padding = pairs if kind == "pairs" else kind
        if kind != "pairs":  # the input alone must hold a window ("SAME" only pads what it needs)
            pairs = ((0, 0),) * n
    spatial = []
    for k, d, (lo, hi) in zip(window, dil, pairs):
        need = max(1, d * (k - 1) + 1 - lo - hi)
        if torch_padding and n == 3:  # torch's 3-D pools also reject an unpadded input smaller than K
            need = max(need, k)
        spatial.append(need + draw(st.integers(0, 6 if n < 3 else 3)))
    return dict(
        n=n,
        window=window,
        stride=stride,
        dilation=dil,
        padding=padding,
        ceil_mode=draw(st.booleans()),
        spatial=tuple(spatial),
        batch=draw(st.integers(1, 2)),
        channels=draw(st.integers(1, 3)),
    )


def _torch_pool(name: str, n: int):
    return getattr(F, f"{name}{n}d")


@given(cfg=pool_configs(), seed=st.integers(0, 2**16))
def test_max_pool_matches_reference_and_torch(cfg, seed):
    rng = np.random.default_rng(seed)
    shape = (cfg["batch"], *cfg["spatial"], cfg["channels"])
    x = _distinct(rng, shape)
    kw = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"], ceil_mode=cfg["ceil_mode"])
    g = _cotangent(rng, lambda t: _torch_pool("max_pool", cfg["n"])(t, cfg["window"], **kw), x)
    y, dx = _jax_fwd_bwd(lambda v: max_pool(v, cfg["window"], **kw), x, g)
    yt, dxt = _torch_fwd_bwd(lambda t: _torch_pool("max_pool", cfg["n"])(t, cfg["window"], **kw), x, g)
    assert y.dtype == np.float32
    assert_close(y, reference.max_pool(x, cfg["window"], **kw), what="max_pool vs reference")
    assert_close(y, yt, what="max_pool vs torch")
    assert_close(dx, dxt, what="max_pool gradient vs torch")


@pytest.mark.parametrize(
    "n, window, stride, padding, ceil_mode",
    [
        (2, 3, 2, 1, False),  # ResNet's stem pool
        (2, 2, 2, 0, False),  # VGG's
        (1, 3, 2, 1, True),
        (3, (2, 3, 2), (2, 1, 2), (1, 1, 0), True),
    ],
)
def test_max_pool_gradient_with_ties_matches_torch(n, window, stride, padding, ceil_mode):
    # After a ReLU many windows hold several equal maxima (zeros): the first in window order takes the
    # gradient, as in torch. Values on a coarse grid make ties common everywhere, not only at zero.
    rng = np.random.default_rng(n)
    x = np.maximum(rng.integers(-3, 4, (2, *(9, 8, 7)[:n], 3)), 0).astype(np.float32)
    tfn = lambda t: _torch_pool("max_pool", n)(t, window, stride, padding, ceil_mode=ceil_mode)  # noqa: E731
    g = _cotangent(rng, tfn, x)
    y, dx = _jax_fwd_bwd(lambda v: max_pool(v, window, stride, padding, ceil_mode=ceil_mode), x, g)
    yt, dxt = _torch_fwd_bwd(tfn, x, g)
    assert_close(y, yt, rtol=0, what="max_pool vs torch")
    # overlapping windows add in another order (rounding); a wrong tap taking a gradient would be O(1) off
    assert_close(dx, dxt, rtol=1e-6, what="max_pool gradient with ties vs torch")


def test_max_pool_check_grads_float64(rng):
    x = jnp.asarray(_distinct(rng, (2, 7, 6, 2), np.float64))
    check_grads(jax.jit(lambda v: max_pool(v, 3, 2, 1, ceil_mode=True)), (x,), order=1, modes=["rev"])


@given(cfg=pool_configs(dilation=True, torch_padding=False), seed=st.integers(0, 2**16))
def test_max_pool_any_padding_form_matches_reference(cfg, seed):
    rng = np.random.default_rng(seed)
    x = _distinct(rng, (cfg["batch"], *cfg["spatial"], cfg["channels"]), np.float64)
    kw = dict(stride=cfg["stride"], dilation=cfg["dilation"], ceil_mode=cfg["ceil_mode"])
    pairs = _pairs(cfg, x.shape[1:-1])
    y = jax.jit(lambda v: max_pool(v, cfg["window"], padding=cfg["padding"], **kw))(jnp.asarray(x))
    assert_close(y, reference.max_pool(x, cfg["window"], padding=pairs, **kw), rtol=1e-12)


def _pairs(cfg, spatial):
    """The drawn padding as (low, high) pairs, for the reference (which takes no strings)."""
    return normalize_padding(
        cfg["padding"],
        cfg["n"],
        "test",
        input_spatial=spatial,
        window=effective_kernel(cfg["window"], cfg["dilation"]),
        stride=cfg["stride"],
    )


@given(cfg=pool_configs(dilation=False), count_include_pad=st.booleans(), seed=st.integers(0, 2**16))
def test_avg_pool_matches_reference_and_torch(cfg, count_include_pad, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg["batch"], *cfg["spatial"], cfg["channels"])).astype(np.float32)
    kw = dict(
        stride=cfg["stride"], padding=cfg["padding"], ceil_mode=cfg["ceil_mode"], count_include_pad=count_include_pad
    )
    g = _cotangent(rng, lambda t: _torch_pool("avg_pool", cfg["n"])(t, cfg["window"], **kw), x)
    y, dx = _jax_fwd_bwd(lambda v: avg_pool(v, cfg["window"], **kw), x, g)
    yt, dxt = _torch_fwd_bwd(lambda t: _torch_pool("avg_pool", cfg["n"])(t, cfg["window"], **kw), x, g)
    assert y.dtype == np.float32
    assert_close(y, reference.avg_pool(x, cfg["window"], **kw), what="avg_pool vs reference")
    assert_close(y, yt, what="avg_pool vs torch")
    assert_close(dx, dxt, what="avg_pool gradient vs torch")


@settings(max_examples=8)
@given(
    cfg=pool_configs(dilation=False, torch_padding=False), count_include_pad=st.booleans(), seed=st.integers(0, 2**16)
)
def test_avg_pool_any_padding_form_matches_reference_and_grad_checks(cfg, count_include_pad, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg["batch"], *cfg["spatial"], cfg["channels"]))
    kw = dict(stride=cfg["stride"], ceil_mode=cfg["ceil_mode"], count_include_pad=count_include_pad)
    pairs = _pairs(cfg, x.shape[1:-1])
    fn = jax.jit(lambda v: avg_pool(v, cfg["window"], padding=cfg["padding"], **kw))  # one compile, not one per op
    y = fn(jnp.asarray(x))
    assert y.dtype == jnp.float64
    assert_close(y, reference.avg_pool(x, cfg["window"], padding=pairs, **kw), rtol=1e-12)
    check_grads(fn, (jnp.asarray(x),), order=1, modes=["rev"])


@given(cfg=pool_configs(dilation=False), p=st.sampled_from([1, 2, 3, 1.5]), seed=st.integers(0, 2**16))
def test_lp_pool_matches_reference_and_torch(cfg, p, seed):
    rng = np.random.default_rng(seed)
    # positive inputs: x^p of a negative x is undefined for non-integer p (NaN in torch and here)
    x = rng.uniform(0.2, 1.5, (cfg["batch"], *cfg["spatial"], cfg["channels"])).astype(np.float32)
    kw = dict(stride=cfg["stride"], ceil_mode=cfg["ceil_mode"])
    tkw = dict(kw, stride=cfg["stride"][0]) if cfg["n"] == 1 else kw  # lp_pool1d takes ints only
    twindow = cfg["window"][0] if cfg["n"] == 1 else cfg["window"]
    tfn = lambda t: _torch_pool("lp_pool", cfg["n"])(t, float(p), twindow, **tkw)  # noqa: E731
    g = _cotangent(rng, tfn, x)
    y, dx = _jax_fwd_bwd(lambda v: lp_pool(v, p, cfg["window"], **kw), x, g)
    yt, dxt = _torch_fwd_bwd(tfn, x, g)
    assert y.dtype == np.float32
    assert_close(y, reference.lp_pool(x, p, cfg["window"], **kw), what="lp_pool vs reference")
    assert_close(y, yt, what="lp_pool vs torch")
    assert_close(dx, dxt, what="lp_pool gradient vs torch")


def test_lp_pool_special_powers_and_grad_check(rng):
    x = rng.uniform(0.2, 1.5, (2, 6, 5, 3))
    z = rng.standard_normal((2, 6, 5, 3))  # p = 2 squares away the sign: defined for negative inputs too
    # the three pools in one compile
    p1, pinf, p2 = jax.jit(lambda x, z: (lp_pool(x, 1, 2), lp_pool(x, float("inf"), (3, 2), 1), lp_pool(z, 2, 2)))(
        jnp.asarray(x), jnp.asarray(z)
    )
    assert_close(p1, 4 * reference.avg_pool(x, 2), rtol=1e-12, what="p=1 is sum")
    assert_close(pinf, reference.max_pool(x, (3, 2), 1), rtol=0)
    assert_close(p2, reference.lp_pool(z, 2, 2), rtol=1e-12)
    check_grads(
        jax.jit(lambda v: lp_pool(v, 3, (2, 3), (1, 2), ceil_mode=True)), (jnp.asarray(x),), order=1, modes=["rev"]
    )


@st.composite
def adaptive_configs(draw):
    n = draw(st.sampled_from((1, 2, 3)))
    spatial = tuple(draw(st.integers(1, 9 if n < 3 else 5)) for _ in range(n))
    out = tuple(draw(st.one_of(st.integers(1, 6 if n < 3 else 4), st.just(None))) for _ in range(n))
    return n, spatial, out


@settings(max_examples=8)
@given(cfg=adaptive_configs(), seed=st.integers(0, 2**16))
def test_adaptive_pools_match_reference_and_torch(cfg, seed):
    n, spatial, out = cfg
    rng = np.random.default_rng(seed)
    x = _distinct(rng, (2, *spatial, 3))
    for op, ref, tname in [
        (adaptive_avg_pool, reference.adaptive_avg_pool, "adaptive_avg_pool"),
        (adaptive_max_pool, reference.adaptive_max_pool, "adaptive_max_pool"),
    ]:
        # torch's 1-D adaptive pools do not take None
        tout = tuple(s if o is None else o for s, o in zip(spatial, out)) if n == 1 else out
        g = _cotangent(rng, lambda t: _torch_pool(tname, n)(t, tout), x)
        y, dx = _jax_fwd_bwd(lambda v: op(v, out), x, g)
        yt, dxt = _torch_fwd_bwd(lambda t: _torch_pool(tname, n)(t, tout), x, g)
        assert y.dtype == np.float32
        assert y.shape == (2, *(s if o is None else o for s, o in zip(spatial, out)), 3)
        assert_close(y, ref(x, out), what=f"{tname} vs reference")
        assert_close(y, yt, what=f"{tname} vs torch")
        assert_close(dx, dxt, what=f"{tname} gradient vs torch")


def test_adaptive_avg_pool_grad_check_and_int_size(rng):
    x = rng.standard_normal((1, 7, 6, 2))
    check_grads(jax.jit(lambda v: adaptive_avg_pool(v, (3, 4))), (jnp.asarray(x),), order=1, modes=["rev"])
    # torchvision's VGG head: 7×7 from any size, incl. the divisible fast path and upsampling (O > I)
    zs = [rng.standard_normal((1, size, size, 2)).astype(np.float32) for size in (14, 7, 5)]
    # the int-size pool and the three VGG heads in one compile
    y3, heads = jax.jit(lambda x, zs: (adaptive_avg_pool(x, 3), [adaptive_avg_pool(z, 7) for z in zs]))(
        jnp.asarray(x), [jnp.asarray(z) for z in zs]
    )
    assert_close(y3, reference.adaptive_avg_pool(x, 3), rtol=1e-12)
    for z, head in zip(zs, heads):
        want = from_torch_layout(F.adaptive_avg_pool2d(to_torch_layout(z), 7))
        assert_close(head, want)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_global_pools_match_reference_and_torch(n, rng):
    x = _distinct(rng, (2, *(4, 5, 3)[:n], 3))
    axes = tuple(range(2, n + 2))
    for op, ref, tfn in [
        (global_avg_pool, reference.global_avg_pool, lambda t: t.mean(axes)),
        (global_max_pool, reference.global_max_pool, lambda t: t.amax(axes)),
    ]:
        xt = to_torch_layout(x).requires_grad_(True)
        g = rng.standard_normal((2, 3)).astype(np.float32)
        tfn(xt).backward(torch.from_numpy(g))
        y, dx = _jax_fwd_bwd(op, x, g)  # the forward and the gradient in one compile
        assert y.shape == (2, 3) and y.dtype == jnp.float32
        assert_close(y, ref(x))
        assert_close(dx, from_torch_layout(xt.grad), what=f"{op.__name__} gradient vs torch")


def test_seed_2x2_max_pool_example():
    x = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], dtype=np.float32)
    y = jax.jit(lambda v: max_pool(v, 2))(jnp.asarray(x[None, :, :, None]))
    np.testing.assert_array_equal(np.asarray(y)[0, :, :, 0], [[6, 8], [3, 4]])


def test_ceil_mode_window_past_padded_input_is_not_counted():
    # I=6, K=3, S=2, P=1, ceil: windows start at -1, 1, 3, 5; the last covers [5, 6, 7]: 5 is input, 6 the
    # right padding, 7 lies past it. torch divides that window by 2 with count_include_pad, by 1 without.
    x = jnp.asarray(np.arange(1.0, 7.0, dtype=np.float32)[None, :, None])
    with_pad, without_pad = jax.jit(  # both in one compile
        lambda v: [avg_pool(v, 3, 2, 1, ceil_mode=True, count_include_pad=c) for c in (True, False)]
    )(x)
    np.testing.assert_allclose(np.asarray(with_pad)[0, :, 0], [1.0, 3.0, 5.0, 3.0])
    np.testing.assert_allclose(np.asarray(without_pad)[0, :, 0], [1.5, 3.0, 5.0, 6.0])
    want = F.avg_pool1d(torch.arange(1.0, 7.0)[None, None], 3, 2, 1, ceil_mode=True).numpy()[0, 0]
    np.testing.assert_allclose(want, [1.0, 3.0, 5.0, 3.0])
    # I=5, K=2, S=2, P=1: a fourth window would start in the right padding, so ceil_mode drops it
    # shapes are fixed at trace time: eval_shape traces and compiles nothing
    assert jax.eval_shape(lambda v: avg_pool(v, 2, 2, 1, ceil_mode=True), x[:, :5]).shape == (1, 3, 1)


def test_same_padding_keeps_ceil_size(rng):
    x = jnp.asarray(rng.standard_normal((1, 7, 8, 2)).astype(np.float32))

    def shape(fn):  # fixed at trace time: eval_shape traces and compiles nothing
        return jax.eval_shape(fn, x).shape

    assert shape(lambda v: max_pool(v, 3, 2, "SAME")) == (1, 4, 4, 2)
    assert shape(lambda v: avg_pool(v, (2, 3), 1, "same")) == (1, 7, 8, 2)
    assert shape(lambda v: max_pool(v, 3, 2, "VALID")) == (1, 3, 3, 2)


def test_transforms_and_dtypes(rng):
    x = jnp.asarray(rng.uniform(0.1, 1.0, (3, 6, 5, 2)).astype(np.float32))
    ops = [
        lambda v: max_pool(v, 2, 1, 1),
        lambda v: max_pool(v, 2, 1, dilation=2),
        lambda v: avg_pool(v, 3, 2, 1, ceil_mode=True),
        lambda v: lp_pool(v, 2, 2),
        lambda v: adaptive_avg_pool(v, (4, 3)),
        lambda v: adaptive_max_pool(v, 2),
        global_avg_pool,
        global_max_pool,
    ]

    def all_ops(v):  # one compile per transform for every op together
        return [op(v) for op in ops]

    # the NumPy oracles of the same calls (an eager run of the ops would compile each of their primitives)
    xn = np.asarray(x)
    eager = [
        reference.max_pool(xn, 2, 1, 1),
        reference.max_pool(xn, 2, 1, dilation=2),
        reference.avg_pool(xn, 3, 2, 1, ceil_mode=True),
        reference.lp_pool(xn, 2, 2),
        reference.adaptive_avg_pool(xn, (4, 3)),
        reference.adaptive_max_pool(xn, 2),
        reference.global_avg_pool(xn),
        reference.global_max_pool(xn),
    ]
    # jit, vmap and grad in one compile
    jitted, mapped, grads = jax.jit(
        lambda v: (
            all_ops(v),
            jax.vmap(lambda v: [y[0] for y in all_ops(v[None])])(v),
            jax.grad(lambda v: sum(jnp.sum(y**2) for y in all_ops(v)))(v),
        )
    )(x)
    for name, got in [("jit", jitted), ("vmap", mapped)]:
        for i, (a, e) in enumerate(zip(got, eager)):
            assert_close(a, e, what=f"{name} of op {i}")
    assert grads.dtype == jnp.float32 and np.isfinite(np.asarray(grads)).all()
    dtypes = (jnp.bfloat16, jnp.float16)
    lows = jax.jit(lambda vs: [all_ops(v) for v in vs])([jnp.asarray(xn.astype(d)) for d in dtypes])  # one compile
    for dtype, outs in zip(dtypes, lows):
        for i, (low, e) in enumerate(zip(outs, eager)):
            assert low.dtype == dtype
            # half precision: 8 (bf16) / 11 (f16) significant bits
            assert_close(np.asarray(low, np.float32), e, rtol=1e-2, what=f"{dtype.__name__} op {i}")
    xi = jnp.asarray(rng.integers(-5, 5, (1, 4, 4, 1)).astype(np.int32))
    yi = jax.jit(lambda v: max_pool(v, 2, padding=1))(xi)
    assert yi.dtype == jnp.int32
    np.testing.assert_array_equal(yi, reference.max_pool(np.asarray(xi), 2, padding=1))


def test_errors():
    x = jnp.asarray(np.zeros((1, 4, 4, 2), np.float32))
    xi = jnp.asarray(np.zeros((1, 4, 4, 2), np.int32))
    with pytest.raises(ValueError, match=r"max_pool: expected a channels-last input .* got shape \(4, 4\)"):
        max_pool(jnp.asarray(np.zeros((4, 4))), 2)
    with pytest.raises(ValueError, match=r"global_avg_pool: expected a channels-last input .*rank 6"):
        global_avg_pool(jnp.asarray(np.zeros((1, 2, 2, 2, 2, 1))))
    with pytest.raises(ValueError, match="global_max_pool: expected a channels-last"):
        global_max_pool(jnp.asarray(np.zeros((2, 3))))
    with pytest.raises(ValueError, match=r"max_pool: every window must be >= 1, got \(2, 0\)"):
        max_pool(x, (2, 0))
    with pytest.raises(ValueError, match="avg_pool: every stride must be >= 1"):
        avg_pool(x, 2, 0)
    with pytest.raises(ValueError, match="max_pool: every dilation must be >= 1"):
        max_pool(x, 2, dilation=0)
    with pytest.raises(ValueError, match="lp_pool: window needs one value per spatial dim"):
        lp_pool(x, 2, (2, 2, 2))
    with pytest.raises(ValueError, match="avg_pool: padding must be non-negative"):
        avg_pool(x, 3, padding=(1, (0, -1)))
    with pytest.raises(ValueError, match=r"max_pool: padding must be at most half of the window .* window \(2, 2\)"):
        max_pool(x, 2, padding=2)
    with pytest.raises(ValueError, match="avg_pool: padding must be at most half of the window"):
        avg_pool(x, 3, padding=((0, 2), 0))
    with pytest.raises(ValueError, match="output_size: non-positive output size"):
        max_pool(x, 5)
    with pytest.raises(ValueError, match="output_size: non-positive output size"):
        max_pool(x, 2, dilation=4)
    for p in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="lp_pool: p must be a positive number"):
            lp_pool(x, p, 2)
    with pytest.raises(ValueError, match="max_pool: expected a float or integer input, got dtype bool"):
        max_pool(jnp.asarray(np.zeros((1, 4, 4, 2), bool)), 2)
    with pytest.raises(ValueError, match="avg_pool: expected a floating-point input"):
        avg_pool(xi, 2)
    with pytest.raises(ValueError, match="lp_pool: expected a floating-point input, got dtype int32"):
        lp_pool(xi, 2, 2)
    with pytest.raises(ValueError, match="adaptive_avg_pool: expected a floating-point input"):
        adaptive_avg_pool(xi, 2)
    with pytest.raises(ValueError, match=r"adaptive_avg_pool: output_size entries must be ints >= 1 .* got \(2, 0\)"):
        adaptive_avg_pool(x, (2, 0))
    with pytest.raises(ValueError, match="adaptive_max_pool: output_size needs one entry per spatial dim"):
        adaptive_max_pool(x, (2, 2, 2))
    with pytest.raises(ValueError, match="adaptive_max_pool: output_size entries must be ints"):
        adaptive_max_pool(x, 1.5)
