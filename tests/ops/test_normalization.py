"""jcnn.ops normalization vs the NumPy references and torch.nn.functional, forward and backward."""

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

from jcnn import ops
from jcnn import reference as R
from tests.helpers import assert_close


def cf(t: torch.Tensor) -> torch.Tensor:
    """Channels-last → channels-first, differentiably."""
    return t.permute(0, t.ndim - 1, *range(1, t.ndim - 1))


def cl(t: torch.Tensor) -> torch.Tensor:
    """Channels-first → channels-last, differentiably."""
    return t.permute(0, *range(2, t.ndim), 1)


def _data(shape, pshape, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(1.0, 2.0, size=shape).astype(np.float32)
    s = rng.uniform(0.5, 1.5, size=pshape).astype(np.float32)
    b = rng.normal(size=pshape).astype(np.float32)
    g = rng.normal(size=shape).astype(np.float32)
    return x, s, b, g


def _compare_with_torch(jfn, tfn, x, s, b, g, rtol=1e-5, stats_fn=None):
    """Forward and the vjp with cotangent ``g`` w.r.t. (x, scale, bias), jax vs torch autograd.
    ``stats_fn(x)`` (the op's statistics, say) is computed in the same compile; then ``(y, stats)``
    is returned, else ``y``."""

    @jax.jit  # one compile per case instead of one per primitive
    def forward_backward(x, s, b, g):
        y, vjp = jax.vjp(jfn, x, s, b)
        return y, vjp(g), None if stats_fn is None else stats_fn(x)

    y, grads, stats = forward_backward(*(jnp.asarray(a) for a in (x, s, b, g)))
    ts = [torch.tensor(a, requires_grad=True) for a in (x, s, b)]
    ty = tfn(*ts)
    ty.backward(torch.from_numpy(g))
    assert y.dtype == jnp.float32
    assert_close(y, ty.detach().numpy(), rtol, "forward")
    for name, gj, t in zip(("x", "scale", "bias"), grads, ts):
        assert_close(gj, t.grad.numpy(), rtol, f"grad {name}")
    return np.asarray(y) if stats_fn is None else (np.asarray(y), stats)


RUN_MEAN = np.array([0.3, -0.2, 0.1, 0.5], np.float32)
RUN_VAR = np.array([1.5, 0.7, 2.0, 0.9], np.float32)

BN_SHAPES = {"bn1d_nc": (6, 4), "bn1d": (4, 7, 4), "bn2d": (3, 5, 6, 4), "bn3d": (2, 3, 4, 5, 4)}


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", BN_SHAPES.values(), ids=BN_SHAPES.keys())
def test_batch_norm_matches_torch_and_reference(shape, train):
    x, s, b, g = _data(shape, (4,))
    kw = {} if train else {"mean": jnp.asarray(RUN_MEAN), "var": jnp.asarray(RUN_VAR)}
    rm, rv = (None, None) if train else (torch.from_numpy(RUN_MEAN), torch.from_numpy(RUN_VAR))

    def jfn(x, s, b):
        return ops.batch_norm(x, s, b, eps=1e-5, **kw)[0]

    def tfn(x, s, b):
        return cl(F.batch_norm(cf(x), rm, rv, s, b, training=train, eps=1e-5))

    y = _compare_with_torch(jfn, tfn, x, s, b, g)
    ref = R.batch_norm(x, s, b, eps=1e-5) if train else R.batch_norm(x, s, b, mean=RUN_MEAN, var=RUN_VAR)
    assert_close(y, ref, what="reference")


def test_batch_norm_returns_the_batch_statistics():
    x, _, _, _ = _data((3, 5, 6, 4), (4,))
    # both calls in one compile; the count comes back as an array there
    stats, same = jax.jit(lambda a, m, v: (ops.batch_norm(a)[1], ops.batch_norm(a, mean=m, var=v)[1]))(
        jnp.asarray(x), jnp.asarray(RUN_MEAN), jnp.asarray(RUN_VAR)
    )
    x64 = x.astype(np.float64).reshape(-1, 4)
    assert_close(stats.mean, x64.mean(0))
    assert_close(stats.var, x64.var(0))
    assert int(np.asarray(stats.count)) == 90
    np.testing.assert_array_equal(same.mean, RUN_MEAN)
    np.testing.assert_array_equal(same.var, RUN_VAR)


LN_CASES = {
    # default: every non-batch axis == torch LayerNorm([C, *spatial]) on channels-first data
    "all_2d": ((3, 4, 5, 6), None),
    "all_1d": ((2, 7, 3), None),
    "all_flat": ((4, 6), None),
    # axes=-1 == torch LayerNorm(C) applied to channels-last data
    "channels": ((3, 4, 5, 6), -1),
    "last_two": ((2, 3, 4, 5), (-2, -1)),
}


@pytest.mark.parametrize("shape,axes", LN_CASES.values(), ids=LN_CASES.keys())
def test_layer_norm_matches_torch_and_reference(shape, axes):
    ax = tuple(range(1, len(shape))) if axes is None else tuple(a % len(shape) for a in np.atleast_1d(axes))
    pshape = tuple(shape[a] for a in ax)
    x, s, b, g = _data(shape, pshape)

    def jfn(x, s, b):
        return ops.layer_norm(x, s, b, axes=axes, eps=1e-5)[0]

    def tfn(x, s, b):
        if axes is None and len(shape) > 2:
            # channels-first normalized_shape (C, *spatial); the params move their last axis first
            perm = (len(pshape) - 1,) + tuple(range(len(pshape) - 1))
            return cl(F.layer_norm(cf(x), tuple(shape[-1:] + shape[1:-1]), s.permute(perm), b.permute(perm)))
        return F.layer_norm(x, pshape, s, b, eps=1e-5)

    y, stats = _compare_with_torch(jfn, tfn, x, s, b, g, stats_fn=lambda a: ops.layer_norm(a, axes=axes)[1])
    assert_close(y, R.layer_norm(x, s, b, axes=axes), what="reference")
    assert stats.mean.shape == tuple(d for i, d in enumerate(shape) if i not in ax)


IN_SHAPES = {"in1d": (3, 7, 4), "in2d": (2, 5, 6, 4), "in3d": (2, 3, 4, 5, 4)}


@pytest.mark.parametrize("running", [False, True], ids=["instance_stats", "running_stats"])
@pytest.mark.parametrize("shape", IN_SHAPES.values(), ids=IN_SHAPES.keys())
def test_instance_norm_matches_torch_and_reference(shape, running):
    x, s, b, g = _data(shape, (4,))
    kw = {"mean": jnp.asarray(RUN_MEAN), "var": jnp.asarray(RUN_VAR)} if running else {}
    rm, rv = (torch.from_numpy(RUN_MEAN), torch.from_numpy(RUN_VAR)) if running else (None, None)

    def jfn(x, s, b):
        return ops.instance_norm(x, s, b, eps=1e-5, **kw)[0]

    def tfn(x, s, b):
        return cl(F.instance_norm(cf(x), rm, rv, s, b, use_input_stats=not running, eps=1e-5))

    y, stats = _compare_with_torch(jfn, tfn, x, s, b, g, stats_fn=lambda a: ops.instance_norm(a)[1])
    if not running:
        assert_close(y, R.instance_norm(x, s, b), what="reference")
        assert stats.mean.shape == (shape[0], 4) and int(np.asarray(stats.count)) == int(np.prod(shape[1:-1]))


GN_CASES = {
    "gn_nc": ((5, 6), 2),
    "gn1d": ((3, 7, 6), 2),
    "gn2d": ((2, 4, 5, 6), 3),
    "gn3d": ((2, 3, 3, 4, 6), 6),
    "gn_one_group": ((2, 4, 5, 6), 1),
}


@pytest.mark.parametrize("shape,groups", GN_CASES.values(), ids=GN_CASES.keys())
def test_group_norm_matches_torch_and_reference(shape, groups):
    x, s, b, g = _data(shape, (6,))

    def jfn(x, s, b):
        return ops.group_norm(x, groups, s, b, eps=1e-5)[0]

    def tfn(x, s, b):
        return cl(F.group_norm(cf(x), groups, s, b, eps=1e-5))

    y, stats = _compare_with_torch(jfn, tfn, x, s, b, g, stats_fn=lambda a: ops.group_norm(a, groups)[1])
    assert_close(y, R.group_norm(x, groups, s, b), what="reference")
    assert stats.mean.shape == (shape[0], groups)


LRN_CASES = {
    "lrn1d_s3": ((2, 5, 7), 3, 1e-2, 0.75, 1.0),
    "lrn2d_s5": ((2, 4, 5, 7), 5, 0.1, 0.75, 2.0),
    "lrn2d_s2": ((2, 4, 5, 7), 2, 0.5, 0.5, 1.0),
    "lrn3d_s4": ((1, 3, 4, 3, 6), 4, 1e-4, 1.2, 0.5),
}


@pytest.mark.parametrize("shape,size,alpha,beta,k", LRN_CASES.values(), ids=LRN_CASES.keys())
def test_local_response_norm_matches_torch_and_reference(shape, size, alpha, beta, k):
    x, _, _, g = _data(shape, (1,))

    @jax.jit
    def forward_backward(a, ct):
        y, vjp = jax.vjp(lambda a: ops.local_response_norm(a, size, alpha, beta, k), a)
        return y, vjp(ct)[0]

    y, gx = forward_backward(jnp.asarray(x), jnp.asarray(g))
    xt = torch.tensor(x, requires_grad=True)
    yt = cl(F.local_response_norm(cf(xt), size, alpha, beta, k))
    yt.backward(torch.from_numpy(g))
    assert_close(y, yt.detach().numpy(), what="forward")
    assert_close(gx, xt.grad.numpy(), what="grad x")
    assert_close(y, R.local_response_norm(x, size, alpha, beta, k), what="reference")


LCN_SHAPES = {"lcn1d": (2, 9, 2), "lcn2d": (2, 6, 7, 2), "lcn3d": (1, 4, 5, 3, 2)}


@pytest.mark.parametrize("divisive", ["std", "max", None])
@pytest.mark.parametrize("shape", LCN_SHAPES.values(), ids=LCN_SHAPES.keys())
def test_local_contrast_norm_matches_loop_reference(shape, divisive):
    x, _, _, _ = _data(shape, (1,))
    configs = [
        dict(window=window, across_channels=across, divisive=divisive, eps=1e-3)
        for window, across in (("gaussian", False), ("uniform", True))
    ]
    ys = jax.jit(lambda a: [ops.local_contrast_norm(a, 3, **kw) for kw in configs])(jnp.asarray(x))
    for kw, y in zip(configs, ys):
        assert y.dtype == jnp.float32 and y.shape == x.shape
        assert_close(y, R.local_contrast_norm(x, 3, **kw), what=f"{kw['window']}, across={kw['across_channels']}")


@settings(max_examples=8)
@given(
    size=st.sampled_from([1, 3, 5, (3, 5), (5, 1)]),
    window=st.sampled_from(["uniform", "gaussian"]),
    sigma=st.sampled_from([None, 0.7, 2.0]),
    across=st.booleans(),
    divisive=st.sampled_from(["std", "max", None]),
    c=st.sampled_from([None, 0.5]),
)
def test_local_contrast_norm_configurations(size, window, sigma, across, divisive, c):
    x, _, _, _ = _data((1, 6, 7, 2), (1,), seed=1)
    kw = dict(window=window, sigma=sigma, across_channels=across, divisive=divisive, eps=1e-4, c=c)
    y = jax.jit(lambda a: ops.local_contrast_norm(a, size, **kw))(jnp.asarray(x))
    assert_close(y, R.local_contrast_norm(x, size, **kw))


def test_local_contrast_norm_does_not_darken_borders():
    """A ramp is locally linear: with the window renormalized over valid pixels the subtractive stage
    is exactly zero in the interior of each axis and small, symmetric and mean-free at the borders;
    a constant image stays exactly zero everywhere, corners included (zero padding would not)."""
    const = np.full((1, 6, 7, 2), 5.0, np.float32)
    ramp = np.broadcast_to(np.arange(7.0, dtype=np.float32)[None, None, :, None], (1, 6, 7, 1))

    @jax.jit  # every call in one compile
    def run(const, ramp):
        return [ops.local_contrast_norm(const, 5, window="uniform", divisive=d) for d in ("std", "max", None)], (
            ops.local_contrast_norm(ramp, 3, window="uniform", divisive=None)
        )

    consts, y = run(jnp.asarray(const), jnp.asarray(ramp))
    for c in consts:
        np.testing.assert_allclose(c, 0.0, atol=1e-6)
    y = np.asarray(y)
    np.testing.assert_allclose(y[:, :, 1:-1], 0.0, atol=1e-6)
    # edge pixels see one neighbour of the two: their local mean is the midpoint with it
    np.testing.assert_allclose(y[:, :, 0], -0.5, atol=1e-6)
    np.testing.assert_allclose(y[:, :, -1], 0.5, atol=1e-6)


def test_window_weights_sum_to_one_and_match_reference():
    from jcnn.ops.normalization import _window_weights

    for size, window, sigma in (((5,), "gaussian", None), ((3, 5), "gaussian", 1.3), ((3, 3, 3), "uniform", None)):
        w = _window_weights(size, window, sigma)
        assert w.shape == size and abs(w.sum() - 1) < 1e-12
        np.testing.assert_allclose(w, R.window_weights(size, window, sigma), rtol=1e-12)
    g = _window_weights((5,), "gaussian", 1.0)
    np.testing.assert_allclose(g / g[2], np.exp(-np.array([4, 1, 0, 1, 4]) / 2.0), rtol=1e-12)


# -- gradient checks (float64) --


def _f64(shape, seed=2):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.normal(size=shape)), jnp.asarray(rng.uniform(0.5, 1.5, size=shape[-1:]))


GRAD_CASES = {
    "batch_norm": lambda x, s: ops.batch_norm(x, s, s * 0.3)[0],
    "batch_norm_eval": lambda x, s: ops.batch_norm(x, s, s, mean=s * 0.1, var=s)[0],
    "layer_norm": lambda x, s: ops.layer_norm(x, s, s, axes=-1)[0],
    "layer_norm_all": lambda x, s: ops.layer_norm(x)[0] * s,
    "instance_norm": lambda x, s: ops.instance_norm(x, s, s)[0],
    "group_norm": lambda x, s: ops.group_norm(x, 2, s, s)[0],
    "local_response_norm": lambda x, s: ops.local_response_norm(x * s, 3, 0.5, 0.75, 1.0),
    "lcn_std": lambda x, s: ops.local_contrast_norm(x * s, 3, eps=1e-2),
    "lcn_max": lambda x, s: ops.local_contrast_norm(x * s, 3, divisive="max", across_channels=True, eps=1e-2),
}


@pytest.mark.parametrize(
    "name,shape",
    [(name, (3, 3, 4, 4)) for name in GRAD_CASES]
    + [
        # a batch of one: per-sample norms must not care; BatchNorm gets its values from spatial positions
        ("layer_norm", (1, 3, 4, 4)),
        ("layer_norm_all", (1, 3, 4, 4)),
        ("instance_norm", (1, 3, 4, 4)),
        ("batch_norm", (1, 3, 4)),
    ],
)
def test_check_grads(name, shape):
    x, s = _f64(shape)
    check_grads(jax.jit(GRAD_CASES[name]), (x, s), order=1, modes=("rev",))  # one compile, not one per primitive


# -- synchronized batch norm --


def test_batch_norm_axis_name_equals_global_batch():
    x, s, b, g = _data((8, 5, 3), (3,))
    shards = jnp.asarray(x.reshape(4, 2, 5, 3))

    def local(xs, s, b):
        y, st_ = ops.batch_norm(xs, s, b, axis_name="devices")
        return y, st_.mean, st_.var, st_.count

    y, mean, var, count = jax.jit(jax.vmap(local, in_axes=(0, None, None), axis_name="devices"))(shards, s, b)
    y_global, st_global = jax.jit(ops.batch_norm)(jnp.asarray(x), s, b)
    mean, var, count = np.asarray(mean), np.asarray(var), np.asarray(count)  # index on the host
    assert_close(np.asarray(y).reshape(x.shape), y_global, what="output")
    for k in range(4):
        assert_close(mean[k], st_global.mean, what="mean")
        assert_close(var[k], st_global.var, what="var")
    assert int(count[0]) == 40

    def loss_sharded(xs):
        return jnp.sum(jax.vmap(lambda a: local(a, s, b)[0], axis_name="devices")(xs) * g.reshape(4, 2, 5, 3))

    def loss_global(xg):
        return jnp.sum(ops.batch_norm(xg, s, b)[0] * g)

    assert_close(
        np.asarray(jax.jit(jax.grad(loss_sharded))(shards)).reshape(x.shape),
        jax.jit(jax.grad(loss_global))(jnp.asarray(x)),
        what="grad",
    )


# -- numerics --

STAT_OPS = {
    "batch_norm": (lambda x: ops.batch_norm(x)[0], R.batch_norm),
    "layer_norm": (lambda x: ops.layer_norm(x)[0], R.layer_norm),
    "instance_norm": (lambda x: ops.instance_norm(x)[0], R.instance_norm),
    "group_norm": (lambda x: ops.group_norm(x, 2)[0], lambda x: R.group_norm(x, 2)),
    "lcn": (lambda x: ops.local_contrast_norm(x, 3, eps=1e-12), lambda x: R.local_contrast_norm(x, 3, eps=1e-12)),
}


@pytest.mark.parametrize("name", STAT_OPS)
def test_large_mean_tiny_variance(name):
    """Mean 1e4, std 1e-2: the float32 input's own rounding (ulp 1e-3) is the only error allowed, so
    the reference runs on the same rounded values; one-pass E[x²] − E[x]² would lose every digit. Under
    jit: XLA recomputes ``x − shift`` in several fusions, and local_contrast_norm was 41 % off there when
    one of them fused the mean's multiply into the subtraction."""
    rng = np.random.default_rng(3)
    x = (1e4 + 1e-2 * rng.normal(size=(4, 5, 6, 4))).astype(np.float32)
    fn, ref = STAT_OPS[name]
    y = jax.jit(fn)(jnp.asarray(x))
    assert y.dtype == jnp.float32 and np.isfinite(np.asarray(y)).all()
    assert_close(y, ref(x), what=name)


@pytest.mark.parametrize("name", STAT_OPS)
def test_constant_input_is_finite(name):
    x = jnp.asarray(np.full((4, 5, 6, 4), 3.25, np.float32))
    fn, _ = STAT_OPS[name]
    w = np.arange(4.0, dtype=np.float32)

    @jax.jit  # value, gradient and output in one compile
    def run(a):
        return jax.value_and_grad(lambda a: jnp.sum(fn(a) * w))(a), fn(a)

    (y, grad), out = run(x)
    assert np.isfinite(np.asarray(y)) and np.isfinite(np.asarray(grad)).all()
    np.testing.assert_array_equal(out, 0.0)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("name", list(STAT_OPS) + ["lrn"])
def test_low_precision_inputs(name, dtype):
    """Statistics run in float32 and only the result is rounded, so the error is the output rounding:
    2^-8 relative for bfloat16, 2^-11 for float16 (normwise, against the float64 reference)."""
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.normal(50.0, 3.0, size=(4, 5, 6, 4)).astype(dtype))  # rounded on the host
    if name == "lrn":
        fn, ref = (lambda a: ops.local_response_norm(a, 3, 1e-3)), (lambda a: R.local_response_norm(a, 3, 1e-3))
    else:
        fn, ref = STAT_OPS[name]
    y = jax.jit(fn)(x)
    assert y.dtype == dtype
    assert_close(
        np.asarray(y, np.float32),
        ref(np.asarray(x, np.float32)),
        2.0**-8 if dtype == jnp.bfloat16 else 2.0**-10,
        what=str(dtype),
    )


def test_low_precision_statistics_are_float32():
    x = jnp.asarray(np.random.default_rng(5).normal(size=(4, 3, 2)), jnp.bfloat16)
    # dtypes are fixed at trace time: eval_shape traces each op and compiles nothing
    for stats in jax.eval_shape(
        lambda a: (ops.batch_norm(a)[1], ops.layer_norm(a)[1], ops.instance_norm(a)[1], ops.group_norm(a, 1)[1]), x
    ):
        assert stats.mean.dtype == jnp.float32 and stats.var.dtype == jnp.float32


def test_jit_matches_eager():
    x, s, b, _ = _data((3, 5, 6, 4), (4,))
    fns = [
        lambda a: ops.batch_norm(a, s, b)[0],
        lambda a: ops.group_norm(a, 2, s, b)[0],
        lambda a: ops.local_contrast_norm(a, 3, divisive="max"),
        lambda a: ops.local_response_norm(a, 3, 0.1),
    ]
    for fn in fns:
        assert_close(jax.jit(fn)(jnp.asarray(x)), fn(jnp.asarray(x)))
    # reverse mode under jit (reduce_window needs a concrete init value to be differentiable there)
    lrn = jax.jit(jax.grad(lambda a: jnp.sum(jnp.sin(fns[-1](a)))))(jnp.asarray(x))
    xt = torch.tensor(x, requires_grad=True)
    torch.sum(torch.sin(cl(F.local_response_norm(cf(xt), 3, 0.1)))).backward()
    assert_close(lrn, xt.grad.numpy())


# -- errors --


def _ones(shape, dtype=np.float64):
    """``jnp.ones`` without an eager compile (float64, as ``jnp.ones`` under x64)."""
    return jnp.asarray(np.ones(shape, dtype))


def _zeros(shape, dtype=np.float64):
    return jnp.asarray(np.zeros(shape, dtype))


def test_batch_norm_batch_of_one_raises():
    with pytest.raises(ValueError, match=r"batch_norm: expected more than 1 value per channel when training"):
        ops.batch_norm(_ones((1, 4)))
    with pytest.raises(ValueError, match=r"more than 1 value per channel.*\(1, 1, 1, 3\)"):
        jax.jit(lambda a: ops.batch_norm(a)[0])(_ones((1, 1, 1, 3)))
    y, _ = jax.jit(ops.batch_norm)(_ones((1, 4)), mean=_zeros(4), var=_ones(4))  # eval mode is fine
    assert np.isfinite(np.asarray(y)).all()


def test_instance_norm_one_spatial_element_raises():
    with pytest.raises(ValueError, match=r"instance_norm: expected more than 1 spatial element"):
        ops.instance_norm(_ones((2, 1, 1, 3)))


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: ops.batch_norm(_ones((4,))), ValueError, r"batch_norm: expected an input of rank >= 2"),
        (lambda: ops.batch_norm(_ones((4, 3), jnp.int32)), TypeError, r"batch_norm: expected a floating-point"),
        (lambda: ops.batch_norm(_ones((4, 3)), eps=-1.0), ValueError, r"batch_norm: eps must be >= 0"),
        (lambda: ops.batch_norm(_ones((4, 3)), mean=_zeros(3)), ValueError, r"give both mean and var"),
        (
            lambda: ops.batch_norm(_ones((4, 3)), mean=_zeros(2), var=_ones(2)),
            ValueError,
            r"batch_norm: mean must have shape \(3,\)",
        ),
        (
            lambda: ops.batch_norm(_ones((4, 3)), _ones(4)),
            ValueError,
            r"batch_norm: scale must have 3 values, one per normalized element",
        ),
        (lambda: ops.layer_norm(_ones((4, 3)), axes=2), ValueError, r"layer_norm: axis 2 is out of range"),
        (lambda: ops.layer_norm(_ones((4, 3, 2)), axes=(1, -2)), ValueError, r"layer_norm: axes must be distinct"),
        (lambda: ops.layer_norm(_ones((4, 3)), axes=0), ValueError, r"must not include the batch axis"),
        (lambda: ops.layer_norm(_ones((4, 3)), axes=()), ValueError, r"must name at least one axis"),
        (lambda: ops.layer_norm(_ones((4, 3, 2)), _ones(2)), ValueError, r"layer_norm: scale must have 6 values"),
        (lambda: ops.instance_norm(_ones((4, 3))), ValueError, r"instance_norm: expected an input of rank >= 3"),
        (lambda: ops.instance_norm(_ones((4, 2, 3)), var=_ones(3)), ValueError, r"give both mean and var"),
        (
            lambda: ops.instance_norm(_ones((4, 2, 3)), mean=_ones(2), var=_ones(2)),
            ValueError,
            r"instance_norm: mean must have shape \(3,\)",
        ),
        (lambda: ops.group_norm(_ones((4, 6)), 4), ValueError, r"group_norm: num_groups must be .* divides the 6"),
        (lambda: ops.local_response_norm(_ones((4, 6)), 0), ValueError, r"local_response_norm: size must be"),
        (
            lambda: ops.local_contrast_norm(_ones((1, 5, 5, 1)), 4),
            ValueError,
            r"local_contrast_norm: size must be an odd",
        ),
        (lambda: ops.local_contrast_norm(_ones((1, 5, 5, 1)), (3, 3, 3)), ValueError, r"one per spatial dim"),
        (lambda: ops.local_contrast_norm(_ones((1, 5, 1)), window="box"), ValueError, r"window must be one of"),
        (lambda: ops.local_contrast_norm(_ones((1, 5, 1)), sigma=0.0), ValueError, r"sigma must be > 0"),
        (lambda: ops.local_contrast_norm(_ones((1, 5, 1)), divisive="l2"), ValueError, r"divisive must be one of"),
        (lambda: ops.local_contrast_norm(_ones((5, 1))), ValueError, r"expected an input of rank >= 3"),
    ],
)
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# Variances of the order of eps, where eps's placement is visible: with eps 1e-5 and variances near 1
# (the tests above) eps outside the square root (x/(√v + ε)) differs from torch's x/√(v + ε) by ~5e-6,
# under their tolerance.
SMALL_VAR = np.array([1e-4, 3e-3, 0.02, 0.3], np.float32)
_RM, _RV = torch.from_numpy(RUN_MEAN), torch.from_numpy(SMALL_VAR)
EPS_CASES = {  # name: (jcnn, torch), each f(x, scale, bias, eps)
    "bn_eval": (
        lambda x, s, b, e: ops.batch_norm(x, s, b, mean=RUN_MEAN, var=SMALL_VAR, eps=e)[0],
        lambda x, s, b, e: cl(F.batch_norm(cf(x), _RM, _RV, s, b, training=False, eps=e)),
    ),
    "bn_train": (
        lambda x, s, b, e: ops.batch_norm(x, s, b, eps=e)[0],
        lambda x, s, b, e: cl(F.batch_norm(cf(x), None, None, s, b, training=True, eps=e)),
    ),
    "in_running": (
        lambda x, s, b, e: ops.instance_norm(x, s, b, mean=RUN_MEAN, var=SMALL_VAR, eps=e)[0],
        lambda x, s, b, e: cl(F.instance_norm(cf(x), _RM, _RV, s, b, use_input_stats=False, eps=e)),
    ),
    "in": (
        lambda x, s, b, e: ops.instance_norm(x, s, b, eps=e)[0],
        lambda x, s, b, e: cl(F.instance_norm(cf(x), None, None, s, b, eps=e)),
    ),
    "ln": (
        lambda x, s, b, e: ops.layer_norm(x, s, b, axes=-1, eps=e)[0],
        lambda x, s, b, e: F.layer_norm(x, (4,), s, b, eps=e),
    ),
    "gn": (
        lambda x, s, b, e: ops.group_norm(x, 2, s, b, eps=e)[0],
        lambda x, s, b, e: cl(F.group_norm(cf(x), 2, s, b, eps=e)),
    ),
}


@pytest.mark.parametrize("eps", [1e-3, 0.5])
def test_eps_placement_with_variances_of_the_order_of_eps(eps):
    x, s, b, g = _data((3, 5, 6, 4), (4,))
    x = x * 0.02  # batch/instance/layer variances ~1.6e-3

    @jax.jit  # every norm's forward and vjp in one compile
    def forward_backward(x, s, b, g):
        out = {}
        for name, (jfn, _) in EPS_CASES.items():
            y, vjp = jax.vjp(lambda x, s, b: jfn(x, s, b, eps), x, s, b)
            out[name] = (y, vjp(g))
        return out

    got = forward_backward(*(jnp.asarray(a) for a in (x, s, b, g)))
    for name, (_, tfn) in EPS_CASES.items():
        ts = [torch.tensor(a, requires_grad=True) for a in (x, s, b)]
        ty = tfn(*ts, eps)
        ty.backward(torch.from_numpy(g))
        y, grads = got[name]
        assert_close(y, ty.detach().numpy(), 1e-5, f"{name} forward")
        for what, gj, t in zip(("x", "scale", "bias"), grads, ts):
            assert_close(gj, t.grad.numpy(), 1e-5, f"{name} grad {what}")
