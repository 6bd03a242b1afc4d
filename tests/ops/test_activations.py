"""Tests of ``jcnn.ops.activations``. jcnn.ops activations against the NumPy reference (float64) and torch, value AND gradient, at random
points, at every kink (torch's derivative conventions), at extremes (±1e4, float16), under
jit/grad/vmap, in bfloat16/float16, plus every error."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from jax.test_util import check_grads

from jcnn import ops, reference
from tests.helpers import assert_close, from_torch_layout, to_torch_layout

# (id, jcnn op name, kwargs, torch function of (tensor) -> tensor)
CASES = [
    ("relu", "relu", {}, F.relu),
    ("relu6", "relu6", {}, F.relu6),
    ("leaky_relu", "leaky_relu", {}, F.leaky_relu),
    ("leaky_relu_0.2", "leaky_relu", {"negative_slope": 0.2}, lambda t: F.leaky_relu(t, 0.2)),
    ("elu", "elu", {}, F.elu),
    ("elu_0.5", "elu", {"alpha": 0.5}, lambda t: F.elu(t, 0.5)),
    ("gelu", "gelu", {}, F.gelu),
    ("gelu_tanh", "gelu", {"approximate": True}, lambda t: F.gelu(t, approximate="tanh")),
    ("silu", "silu", {}, F.silu),
    ("softplus", "softplus", {}, F.softplus),
    ("softplus_b2_t5", "softplus", {"beta": 2.0, "threshold": 5.0}, lambda t: F.softplus(t, 2.0, 5.0)),
    ("sigmoid", "sigmoid", {}, torch.sigmoid),
    ("tanh", "tanh", {}, torch.tanh),
    ("hard_tanh", "hard_tanh", {}, F.hardtanh),
    ("hard_tanh_-2_0.5", "hard_tanh", {"min_val": -2.0, "max_val": 0.5}, lambda t: F.hardtanh(t, -2.0, 0.5)),
    ("hard_sigmoid", "hard_sigmoid", {}, F.hardsigmoid),
    ("hard_swish", "hard_swish", {}, F.hardswish),
    ("softmax", "softmax", {}, lambda t: F.softmax(t, -1)),
    ("softmax_axis0", "softmax", {"axis": 0}, lambda t: F.softmax(t, 0)),
    ("log_softmax", "log_softmax", {}, lambda t: F.log_softmax(t, -1)),
    ("log_softmax_axis0", "log_softmax", {"axis": 0}, lambda t: F.log_softmax(t, 0)),
]
IDS = [c[0] for c in CASES]
KINKS = [
    0.0,
    6.0,
    -1.0,
    1.0,
    20.0,
    2.5,
    0.5,
    -2.0,
    20.5,
    -3.0,
    3.0,
]  # relu/relu6/hard_tanh/hard_swish edges, softplus switches


def _fns(case):
    _, name, kw, tfn = case
    return (lambda x: getattr(ops, name)(x, **kw)), (lambda x: getattr(reference, name)(x, **kw)), tfn


def _points(rng: np.random.Generator) -> np.ndarray:
    """A (4, 8) grid: every kink, then normal draws scaled to reach both softplus branches."""
    x = rng.standard_normal(32) * 4
    x[: len(KINKS)] = KINKS
    return x.reshape(4, 8)


def _torch_value_and_vjp(tfn, x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = tfn(xt)
    yt.backward(torch.from_numpy(g))
    return yt.detach().numpy(), xt.grad.numpy()


def _jax_value_and_vjp(fn, x: np.ndarray, g: np.ndarray) -> tuple[jax.Array, jax.Array]:
    y, vjp = jax.vjp(fn, jnp.asarray(x))
    return y, vjp(jnp.asarray(g))[0]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_reference_and_torch_with_kinks(case, rng):
    fn, ref, tfn = _fns(case)
    x64 = _points(rng)
    assert_close(fn(jnp.asarray(x64)), ref(x64), rtol=1e-12, what="float64 vs reference")
    x = x64.astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    y, dx = _jax_value_and_vjp(fn, x, g)
    assert y.dtype == jnp.float32 and dx.dtype == jnp.float32
    yt, dxt = _torch_value_and_vjp(tfn, x, g)
    assert_close(y, ref(x), what="float32 vs reference")
    assert_close(y, yt, what="float32 vs torch")
    assert_close(dx, dxt, what="float32 gradient vs torch")
    # elementwise at the kinks (the first points): the derivative must follow torch's convention exactly
    k = len(KINKS)
    np.testing.assert_allclose(
        np.asarray(dx).reshape(-1)[:k],
        dxt.reshape(-1)[:k],
        rtol=1e-5,
        atol=1e-6,
        err_msg="gradient at the kinks vs torch",
    )
    xd = x64.copy()
    _, dxd = _torch_value_and_vjp(tfn, xd, g.astype(np.float64))
    # torch's hardsigmoid backward multiplies by the float literal 1.0f/6.0f even for doubles (3e-8 off 1/6)
    rtol = 1e-7 if case[0] == "hard_sigmoid" else 1e-12
    np.testing.assert_allclose(
        np.asarray(_jax_value_and_vjp(fn, xd, g.astype(np.float64))[1]),
        dxd,
        rtol=rtol,
        atol=1e-14,
        err_msg="float64 gradient vs torch",
    )


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_check_grads_away_from_kinks(case, rng):
    fn, _, _ = _fns(case)
    x = _points(rng)
    # move every point off the kinks: finite differences would straddle them (same shape: cached compiles)
    x = np.where(np.min(np.abs(x[..., None] - np.array(KINKS)), -1) < 1e-2, x + 0.05, x)
    check_grads(fn, (jnp.asarray(x),), order=1, modes=["rev"])


# the (4, 8) shape of _points, so the compiled ops are reused
EXTREMES = np.array([[1e4, -1e4, 100.0, -100.0, 0.0, 89.0, -89.0, 1e4 - 1]]) * np.array([[1], [-1], [0.5], [-0.25]])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_extremes_float32_and_float16(case):
    fn, ref, tfn = _fns(case)
    x = EXTREMES.astype(np.float32)
    g = np.ones_like(x)
    y, dx = _jax_value_and_vjp(fn, x, g)
    yt, dxt = _torch_value_and_vjp(tfn, x, g)
    assert np.isfinite(np.asarray(y)).all() and np.isfinite(np.asarray(dx)).all()
    np.testing.assert_allclose(np.asarray(y), yt, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(y), ref(x), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(dx), dxt, rtol=1e-5, atol=1e-6)
    h = x.astype(np.float16)
    yh = fn(jnp.asarray(h))
    assert yh.dtype == jnp.float16 and np.isfinite(np.asarray(yh)).all()
    # float16 keeps 11 significant bits: compare elementwise to the float64 formula of the same inputs
    np.testing.assert_allclose(np.asarray(yh, np.float64), ref(h), rtol=2e-3, atol=2e-3)


def test_softmax_stable_and_log_softmax_not_log_of_softmax():
    x = jnp.asarray(np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], np.float32))
    far = jnp.asarray(np.array([0.0, -200.0], np.float32))

    @jax.jit  # every call in one compile
    def run(x, far):
        grads = jax.grad(lambda v: ops.log_softmax(v)[0, 1] + ops.softmax(v)[0, 0])(x)
        return ops.softmax(x), ops.log_softmax(x), ops.log_softmax(far), grads

    sm, lsm, y, grads = run(x, far)
    np.testing.assert_allclose(sm, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    np.testing.assert_allclose(lsm, [[0, -2e4, -1e4], [-np.log(3)] * 3], rtol=1e-6)
    # exp(-200) underflows float32, so log(softmax) would give -inf where log_softmax gives -200
    np.testing.assert_allclose(y, [0.0, -200.0], rtol=1e-6)
    assert np.isfinite(np.asarray(grads)).all()


def test_sigmoid_tanh_silu_stable_for_large_inputs():
    x = jnp.asarray(np.array([-1e4, -100.0, 100.0, 1e4], np.float32))
    names = ("sigmoid", "tanh", "silu", "softplus", "elu", "gelu")

    @jax.jit  # every value and gradient in one compile
    def run(x):
        return ops.sigmoid(x), ops.tanh(x), ops.silu(x), [jax.vmap(jax.grad(getattr(ops, n)))(x) for n in names]

    sig, tanh, silu, all_grads = run(x)
    np.testing.assert_array_equal(sig, [0, 0, 1, 1])
    np.testing.assert_array_equal(tanh, [-1, -1, 1, 1])
    np.testing.assert_array_equal(silu, [0, 0, 100, 1e4])
    for name, grads in zip(names, all_grads):
        assert np.isfinite(np.asarray(grads)).all(), name


def test_transforms_and_low_precision(rng):
    x = jnp.asarray(_points(rng).astype(np.float32))
    fns = [_fns(c)[0] for c in CASES]

    def all_fns(v):  # one compile per transform for every activation together
        return [f(v) for f in fns]

    eager = [_fns(c)[1](np.asarray(x)) for c in CASES]  # the NumPy oracles (eager ops compile per primitive)

    def mapped(v):  # rows are independent for every case except the axis-0 softmaxes: vmap those over columns
        return [
            jax.vmap(f, in_axes=1, out_axes=1)(v) if c[2].get("axis") == 0 else jax.vmap(f)(v)
            for f, c in zip(fns, CASES)
        ]

    # jit, vmap and grad of every activation in one compile
    jitted, vmapped, grads = jax.jit(
        lambda v: (all_fns(v), mapped(v), jax.grad(lambda v: sum(jnp.sum(y * y) for y in all_fns(v)))(v))
    )(x)
    for c, e, j, m in zip(CASES, eager, jitted, vmapped):
        assert_close(j, e, what=f"{c[0]} jit")
        assert_close(m, e, what=f"{c[0]} vmap")
    assert grads.dtype == jnp.float32 and np.isfinite(np.asarray(grads)).all()
    dtypes = (jnp.bfloat16, jnp.float16)
    lows = jax.jit(lambda vs: [all_fns(v) for v in vs])([jnp.asarray(np.asarray(x).astype(d)) for d in dtypes])
    for dtype, outs in zip(dtypes, lows):
        for c, low, e in zip(CASES, outs, eager):
            assert low.dtype == dtype
            # 8 (bf16) / 11 (f16) significant bits; inputs are rounded to that precision too
            assert_close(np.asarray(low, np.float32), e, rtol=2e-2, what=f"{c[0]} {dtype.__name__}")


@pytest.mark.parametrize("alpha_shape", [(), (1,), (3,)])
def test_prelu_matches_reference_and_torch(alpha_shape, rng):
    x = rng.standard_normal((2, 4, 5, 3)).astype(np.float32)
    x[0, 0, 0] = 0.0  # the kink: torch's derivative at 0 is alpha (the x <= 0 branch)
    alpha = rng.uniform(0.05, 0.5, alpha_shape).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)

    @jax.jit
    def forward_backward(x, alpha, g):
        y, vjp = jax.vjp(ops.prelu, x, alpha)
        return y, vjp(g)

    y, (dx, dalpha) = forward_backward(jnp.asarray(x), jnp.asarray(alpha), jnp.asarray(g))
    assert y.dtype == jnp.float32 and dalpha.shape == alpha_shape
    assert_close(y, reference.prelu(x, alpha), what="prelu vs reference")
    xt = to_torch_layout(x).requires_grad_(True)
    wt = torch.from_numpy(alpha.reshape(-1)).requires_grad_(True)
    yt = F.prelu(xt, wt)
    yt.backward(to_torch_layout(g))
    assert_close(y, from_torch_layout(yt), what="prelu vs torch")
    assert_close(dx, from_torch_layout(xt.grad), what="prelu dx vs torch")
    assert_close(np.asarray(dalpha).reshape(-1), wt.grad.numpy(), what="prelu dalpha vs torch")
    check_grads(
        jax.jit(ops.prelu),
        (jnp.asarray(x[1].astype(np.float64)), jnp.asarray(alpha.astype(np.float64))),
        order=1,
        modes=["rev"],
    )
    # the dtype is fixed at trace time: eval_shape traces and compiles nothing
    assert jax.eval_shape(lambda a: ops.prelu(a, 0.25), jnp.asarray(x.astype(jnp.bfloat16))).dtype == jnp.bfloat16


def test_errors():
    x = jnp.asarray(np.ones((2, 3), np.float32))
    with pytest.raises(
        ValueError,
        match=r"prelu: alpha must be a scalar, shape \(1,\), or shape \(C,\) = \(3,\) "
        r".* got alpha of shape \(4,\)",
    ):
        ops.prelu(x, jnp.asarray(np.ones(4)))
    with pytest.raises(ValueError, match=r"prelu: alpha must be .* got alpha of shape \(1, 3\)"):
        ops.prelu(x, jnp.asarray(np.ones((1, 3))))
    with pytest.raises(ValueError, match="hard_tanh: min_val must be <= max_val, got min_val=2.0, max_val=1.0"):
        ops.hard_tanh(x, 2.0, 1.0)
    with pytest.raises(ValueError, match="softplus: beta must be non-zero"):
        ops.softplus(x, beta=0)
    with pytest.raises(ValueError, match=r"softmax: axis 2 is out of range for an input of shape \(2, 3\)"):
        ops.softmax(x, axis=2)
    with pytest.raises(ValueError, match=r"log_softmax: axis -3 is out of range"):
        ops.log_softmax(x, axis=-3)
    with pytest.raises(ValueError, match=r"softmax: axis -1 is out of range for an input of shape \(\)"):
        ops.softmax(jnp.float32(1.0))
    for name in ("sigmoid", "tanh", "silu", "gelu", "softplus", "elu", "softmax", "log_softmax"):
        with pytest.raises(ValueError, match=f"^{name}: expected a floating-point input, got dtype int32"):
            getattr(ops, name)(jnp.asarray(np.arange(3, dtype=np.int32)))


def test_elu_gradient_keeps_full_precision_for_very_negative_inputs():
    """Elementwise, not normwise: the gradient alpha·exp(x) is tiny there, and ``expm1(x) + 1`` (JAX's
    own derivative of expm1) is 7.5e-5 off at x = -8.48 and 0 instead of 2.06e-9 at x = -20."""
    x = np.array([-8.48, -12.0, -20.0, -40.0, -80.0, -0.5, 0.0], np.float32)  # not below -87: XLA flushes subnormals
    for alpha in (1.0, 0.5):
        xt = torch.from_numpy(x).requires_grad_(True)
        F.elu(xt, alpha).sum().backward()
        g = np.asarray(jax.jit(jax.grad(lambda v: ops.elu(v, alpha).sum()))(jnp.asarray(x)))
        np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-6, atol=0)
        assert np.all(g[:5] > 0)
    # the second derivative is exp too
    h = jax.jit(jax.grad(jax.grad(lambda v: ops.elu(v))))(jnp.float32(-20.0))
    np.testing.assert_allclose(float(h), np.exp(-20.0), rtol=1e-6)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_over_an_empty_axis_is_the_empty_array(name):
    cases = (((3, 0), -1), ((0, 4), 0), ((2, 0, 3), 1))
    xs = [np.ones(shape, np.float32) for shape, _ in cases]
    op = getattr(ops, name)
    # every call in one compile; other axes of an array with an empty one still work (every slice is empty)
    *gots, other = jax.jit(lambda xs, o: [op(x, axis=a) for x, (_, a) in zip(xs, cases)] + [op(o, axis=-1)])(
        [jnp.asarray(x) for x in xs], jnp.asarray(np.ones((0, 4)))
    )
    for x, (_, axis), got in zip(xs, cases, gots):
        want = getattr(F, name)(torch.from_numpy(x), dim=axis)
        assert got.shape == tuple(want.shape) and got.dtype == jnp.float32
    assert other.shape == (0, 4)


def test_gelu_keeps_full_precision_for_very_negative_inputs():
    """Against float64 x/2·erfc(−x/√2), elementwise: 1 + erf(x/√2) cancels (torch's own gelu is 4% off
    at x = −4.7 and 0 from −5.5 on)."""
    import math

    erfc = np.vectorize(math.erfc)
    x = -np.geomspace(0.5, 12.0, 24)
    value = 0.5 * x * erfc(-x / np.sqrt(2))
    slope = 0.5 * erfc(-x / np.sqrt(2)) + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi)
    got = jnp.asarray(x, jnp.float32)
    y, dy = jax.jit(lambda v: (ops.gelu(v), jax.grad(lambda u: ops.gelu(u).sum())(v)))(got)
    np.testing.assert_allclose(np.asarray(y), value, rtol=2e-5)
    # the slope sums two terms of opposite sign: float32 keeps ~1e-4 of it at x = -12
    np.testing.assert_allclose(np.asarray(dy), slope, rtol=2e-4)
