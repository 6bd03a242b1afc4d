"""Normalization layers vs their torch.nn twins: forward/backward in train and eval, running statistics,
state threading through combinators, and a BatchNorm model trained then evaluated against PyTorch."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jcnn.layers as L
from jcnn import ops
from jcnn.layers.base import make_layer
from tests.helpers import assert_close, from_torch_layout, to_torch_layout

KEY = jax.random.PRNGKey(0)


def _x(shape, seed=0, loc=0.5, scale=2.0):
    return np.random.default_rng(seed).normal(loc, scale, size=shape).astype(np.float32)


def _relu() -> L.Layer:
    """A ReLU layer built here, so the model tests depend only on Dense and the norms."""
    return make_layer("relu", lambda key, s: (s, {}, {}), lambda p, st, x, *, train, key=None: (jnp.maximum(x, 0), st))


def _torch_bn(ndim_spatial, c, **kw):
    cls = {0: torch.nn.BatchNorm1d, 1: torch.nn.BatchNorm1d, 2: torch.nn.BatchNorm2d, 3: torch.nn.BatchNorm3d}
    return cls[ndim_spatial](c, **kw)


def _set_affine(module, s, b):
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(np.array(s, np.float32)))
        module.bias.copy_(torch.from_numpy(np.array(b, np.float32)))


@functools.partial(jax.jit, static_argnames=("layer", "train"))  # layers hash by identity: one compile per layer,
def _forward_backward(params, state, x, cot, *, layer, train):  # mode and shapes, reused across a test's steps
    y, vjp, new_state = jax.vjp(lambda p, xx: layer.apply(p, state, xx, train=train), params, x, has_aux=True)
    return y, vjp(cot), new_state


def _traced(check, *args):
    """``check(*args)`` on tracers under ``jax.eval_shape`` (nothing compiles), and the Python value it returns.

    For the checks that eval mode hands back the very state objects it was given: a layer that passes its
    state through returns the tracers it got, one that rebuilds or recomputes it returns new ones, exactly
    as with concrete arrays in an eager call."""
    box = {}

    def run(*a):
        box["out"] = check(*a)
        return 0

    jax.eval_shape(run, *args)
    return box["out"]


def _run_both(layer, params, state, module, x, cot, train):
    """jcnn layer and torch module on the same input: outputs, grads w.r.t. x/scale/bias, new states."""
    module.train(train)
    module.zero_grad()
    y, (gp, gx), new_state = _forward_backward(params, state, x, cot, layer=layer, train=train)  # NumPy in
    xt = to_torch_layout(x).clone().requires_grad_(True)
    yt = module(xt)
    yt.backward(to_torch_layout(cot))
    assert_close(y, from_torch_layout(yt), what="forward")
    assert_close(gx, from_torch_layout(xt.grad), what="grad x")
    if params:
        assert_close(gp["scale"], module.weight.grad.numpy(), what="grad scale")
        assert_close(gp["bias"], module.bias.grad.numpy(), what="grad bias")
    return new_state


BN_SHAPES = {"bn1d_nc": (8, 3), "bn1d": (4, 6, 3), "bn2d": (3, 4, 5, 3), "bn3d": (2, 3, 4, 3, 3)}


@pytest.mark.parametrize("shape", BN_SHAPES.values(), ids=BN_SHAPES.keys())
def test_batch_norm_matches_torch_train_then_eval(shape):
    layer = L.BatchNorm(momentum=0.3)
    _, params, state = layer.init(KEY, shape)
    params = {"scale": np.asarray([0.5, 1.5, -1.0], np.float32), "bias": np.asarray([0.1, -0.2, 0.3], np.float32)}
    module = _torch_bn(len(shape) - 2, 3, momentum=0.3)
    _set_affine(module, params["scale"], params["bias"])
    for step in range(2):
        x, cot = _x(shape, step), _x(shape, 10 + step)
        state = _run_both(layer, params, state, module, x, cot, train=True)
        assert_close(state["mean"], module.running_mean.numpy(), what="running mean")
        assert_close(state["var"], module.running_var.numpy(), what="running var")
    x, cot = _x(shape, 5), _x(shape, 6)
    _run_both(layer, params, state, module, x, cot, train=False)
    assert _traced(lambda p, st, a: layer.apply(p, st, a, train=False)[1] is st, params, state, x)


def test_batch_norm_cumulative_average_when_momentum_is_none():
    layer = L.BatchNorm(momentum=None)
    _, params, state = layer.init(KEY, (6, 4, 2))
    assert set(state) == {"mean", "var", "count"} and state["count"].dtype == jnp.int32
    module = torch.nn.BatchNorm1d(2, momentum=None)
    xs = [_x((6, 4, 2), k, loc=k) for k in range(3)]
    step = jax.jit(functools.partial(layer.apply, train=True))
    for x in xs:
        _, state = step(params, state, x)
        module(to_torch_layout(x))
    assert int(state["count"]) == 3
    assert_close(state["mean"], module.running_mean.numpy())
    assert_close(state["var"], module.running_var.numpy())
    # the cumulative average is the plain mean of the batch statistics
    assert_close(state["mean"], np.mean([x.reshape(-1, 2).mean(0) for x in xs], axis=0))


def test_batch_norm_without_running_stats_or_affine():
    layer = L.BatchNorm(affine=False, track_running_stats=False)
    _, params, state = layer.init(KEY, (5, 4, 3))
    assert params == {} and state == {}
    module = torch.nn.BatchNorm1d(3, affine=False, track_running_stats=False).eval()
    x = _x((5, 4, 3))
    both = jax.jit(lambda a: [layer.apply(params, state, a, train=train) for train in (True, False)])
    for y, new_state in both(x):  # batch statistics in both modes (train, then eval), as torch
        assert new_state == {}
        assert_close(y, from_torch_layout(module(to_torch_layout(x))))


def test_batch_norm_batch_of_one_in_training_raises_and_eval_works():
    layer = L.BatchNorm()
    _, params, state = layer.init(KEY, (-1, 4))
    with pytest.raises(ValueError, match=r"expected more than 1 value per channel when training"):
        layer.apply(params, state, jax.device_put(np.ones((1, 4))), train=True)
    with torch.no_grad(), pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        torch.nn.BatchNorm1d(4).train()(torch.ones(1, 4))
    y, _ = jax.jit(functools.partial(layer.apply, train=False))(params, state, np.ones((1, 4)))
    assert np.isfinite(np.asarray(y)).all()


def test_batch_norm_bfloat16_keeps_float32_state():
    layer = L.BatchNorm()
    _, params, state = layer.init(KEY, (4, 5, 3))
    x = _x((4, 5, 3)).astype(jnp.bfloat16)  # ml_dtypes' round to nearest even, as XLA's convert
    y, new_state = jax.jit(functools.partial(layer.apply, train=True))(params, state, x)
    assert y.dtype == jnp.bfloat16
    assert all(new_state[k].dtype == jnp.float32 for k in ("mean", "var"))
    ref = x.astype(np.float32).reshape(-1, 3)
    assert_close(new_state["mean"], 0.1 * ref.mean(0))


def test_synchronized_batch_norm_under_vmap_equals_the_global_batch():
    x = _x((8, 5, 3))
    layer = L.BatchNorm(axis_name="devices")
    _, params, state = layer.init(KEY, (2, 5, 3))

    @jax.jit  # the sharded and the global apply in one program
    def run(a):
        sharded = jax.vmap(lambda xs: layer.apply(params, state, xs, train=True), axis_name="devices")(
            a.reshape(4, 2, 5, 3)
        )
        return sharded, L.BatchNorm().apply(params, state, a, train=True)

    (y, new_state), (y_glob, state_glob) = run(x)
    assert_close(np.asarray(y).reshape(x.shape), y_glob)
    for k in ("mean", "var"):  # the unbiased factor uses the global count (40), not the shard's (10)
        for shard in range(4):
            assert_close(np.asarray(new_state[k])[shard], state_glob[k], what=k)


IN_SHAPES = {"in1d": (3, 7, 3), "in2d": (2, 4, 5, 3), "in3d": (2, 3, 4, 3, 3)}


@pytest.mark.parametrize("shape", IN_SHAPES.values(), ids=IN_SHAPES.keys())
def test_instance_norm_with_running_stats_matches_torch(shape):
    layer = L.InstanceNorm(affine=True, track_running_stats=True, momentum=0.2)
    _, params, state = layer.init(KEY, shape)
    params = {"scale": np.asarray([0.5, 1.5, -1.0], np.float32), "bias": np.asarray([0.1, -0.2, 0.3], np.float32)}
    cls = {1: torch.nn.InstanceNorm1d, 2: torch.nn.InstanceNorm2d, 3: torch.nn.InstanceNorm3d}[len(shape) - 2]
    module = cls(3, affine=True, track_running_stats=True, momentum=0.2)
    _set_affine(module, params["scale"], params["bias"])
    state = _run_both(layer, params, state, module, _x(shape, 1), _x(shape, 2), train=True)
    assert_close(state["mean"], module.running_mean.numpy(), what="running mean")
    assert_close(state["var"], module.running_var.numpy(), what="running var")
    _run_both(layer, params, state, module, _x(shape, 3), _x(shape, 4), train=False)
    assert _traced(lambda p, st, a: layer.apply(p, st, a, train=False)[1] is st, params, state, _x(shape, 3))


@pytest.mark.parametrize("train", [True, False])
def test_instance_norm_default_matches_torch(train):
    layer = L.InstanceNorm()
    _, params, state = layer.init(KEY, (2, 4, 5, 3))
    assert params == {} and state == {}
    _run_both(layer, params, state, torch.nn.InstanceNorm2d(3), _x((2, 4, 5, 3)), _x((2, 4, 5, 3), 1), train)


def test_layer_norm_matches_torch():
    x, cot = _x((2, 4, 5, 3)), _x((2, 4, 5, 3), 1)
    # every non-batch axis: torch LayerNorm([C, H, W]) with params permuted (H, W, C) -> (C, H, W)
    layer = L.LayerNorm()
    _, params, state = layer.init(KEY, x.shape)
    rng = np.random.default_rng(7)
    params = {k: rng.normal(size=(4, 5, 3)).astype(np.float32) for k in ("scale", "bias")}
    module = torch.nn.LayerNorm([3, 4, 5])
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(np.asarray(params["scale"]).transpose(2, 0, 1).copy()))
        module.bias.copy_(torch.from_numpy(np.asarray(params["bias"]).transpose(2, 0, 1).copy()))
    y, _ = jax.jit(functools.partial(layer.apply, train=True))(params, state, x)
    assert_close(y, from_torch_layout(module(to_torch_layout(x))))
    # channels only: torch LayerNorm(C) on the channels-last tensor, backward included
    layer = L.LayerNorm(axes=-1, eps=1e-3)
    _, params, state = layer.init(KEY, x.shape)
    assert params["scale"].shape == (3,)
    module = torch.nn.LayerNorm(3, eps=1e-3)
    _set_affine(module, [0.5, 2.0, -1.0], [0.0, 1.0, 2.0])
    params = {"scale": np.asarray([0.5, 2.0, -1.0], np.float32), "bias": np.asarray([0.0, 1.0, 2.0], np.float32)}

    @jax.jit
    def grads(p, a, c):
        return jax.vjp(lambda p, a: layer.apply(p, state, a, train=False)[0], p, a)[1](c)

    gp, gx = grads(params, x, cot)
    xt = torch.tensor(x, requires_grad=True)
    module(xt).backward(torch.from_numpy(cot))
    assert_close(gx, xt.grad.numpy(), what="grad x")
    assert_close(gp["scale"], module.weight.grad.numpy(), what="grad scale")
    assert L.LayerNorm(affine=False).init(KEY, x.shape)[1] == {}


def test_group_norm_matches_torch():
    layer = L.GroupNorm(2)
    shape = (2, 3, 4, 6)
    _, params, state = layer.init(KEY, shape)
    assert params["scale"].shape == (6,) and state == {}
    rng = np.random.default_rng(3)
    params = {k: rng.normal(size=6).astype(np.float32) for k in ("scale", "bias")}
    module = torch.nn.GroupNorm(2, 6)
    _set_affine(module, params["scale"], params["bias"])
    _run_both(layer, params, state, module, _x(shape), _x(shape, 1), train=True)


def test_local_response_norm_matches_torch():
    layer = L.LocalResponseNorm(3, alpha=0.1, beta=0.6, k=2.0)
    shape = (2, 4, 5, 6)
    _, params, state = layer.init(KEY, shape)
    _run_both(
        layer,
        params,
        state,
        torch.nn.LocalResponseNorm(3, alpha=0.1, beta=0.6, k=2.0),
        _x(shape),
        _x(shape, 1),
        train=False,
    )


def test_local_contrast_norm_layer_is_the_op():
    layer = L.LocalContrastNorm((3, 5), window="uniform", divisive="max", across_channels=True)
    x = _x((2, 6, 7, 2))
    out_shape, params, state = layer.init(KEY, x.shape)
    assert out_shape == x.shape and params == {} and state == {}

    @jax.jit  # the layer and the op in one program: bitwise equal unless they compute differently
    def both(a):
        y, _ = layer.apply(params, state, a, train=True)
        return y, ops.local_contrast_norm(a, (3, 5), window="uniform", divisive="max", across_channels=True)

    y, want = both(x)
    np.testing.assert_array_equal(y, want)


# -- state threading through combinators --


def _expected_running(x):
    """Running (mean, var) after one step from (0, 1) with momentum 0.1: unbiased batch variance."""
    return 0.1 * x.mean(0), 0.9 + 0.1 * x.var(0, ddof=1)


def test_state_threads_through_serial_residual_and_parallel():
    block = L.serial(("bn_a", L.BatchNorm()), ("fc", L.Dense(3)), ("bn_b", L.BatchNorm()))
    model = L.serial(
        ("res", L.residual(block)),
        ("split", L.fan_out(2)),
        ("heads", L.parallel(("left", L.BatchNorm()), ("right", L.Identity))),
        ("sum", L.add()),
    )
    x = _x((6, 3))
    _, params, state = model.init(KEY, (-1, 3))

    @jax.jit  # the model in both modes and the recomputed intermediates, in one program
    def run(a):
        y, new_state = model.apply(params, state, a, train=True)
        h, _ = L.BatchNorm().apply(params["res"]["block"]["bn_a"], state["res"]["block"]["bn_a"], a, train=True)
        h, _ = L.Dense(3).apply(params["res"]["block"]["fc"], {}, h, train=True)
        r, _ = L.residual(block).apply(params["res"], state["res"], a, train=True)
        y_eval, _ = model.apply(params, new_state, a, train=False)
        return y, new_state, h, r, y_eval

    y, new_state, h, r, y_eval = run(x)
    bn_a = new_state["res"]["block"]["bn_a"]
    m, v = _expected_running(np.asarray(x, np.float64))
    assert_close(bn_a["mean"], m)
    assert_close(bn_a["var"], v)
    # bn_b and the parallel BatchNorm saw the intermediate activations: recompute them by hand
    m, v = _expected_running(np.asarray(h, np.float64))
    assert_close(new_state["res"]["block"]["bn_b"]["mean"], m)
    assert_close(new_state["res"]["block"]["bn_b"]["var"], v)
    # the parallel BatchNorm saw the residual's output
    m, v = _expected_running(np.asarray(r, np.float64))
    assert_close(new_state["heads"]["left"]["mean"], m)
    assert_close(new_state["heads"]["left"]["var"], v)
    assert jax.tree_util.tree_structure(new_state) == jax.tree_util.tree_structure(state)

    # eval: running statistics in, the same state out
    def same_leaves(p, st, a):
        _, same = model.apply(p, st, a, train=False)
        return [a is b for a, b in zip(jax.tree_util.tree_leaves(same), jax.tree_util.tree_leaves(st))]

    assert all(_traced(same_leaves, params, new_state, x))
    assert not np.allclose(y_eval, y)


def test_jitted_training_step_threads_state():
    model = L.serial(L.Dense(4), L.BatchNorm(), _relu(), L.Dense(2))
    _, params, state = model.init(KEY, (8, 3))
    x = jax.device_put(_x((8, 3)))  # the eager apply is the point here: jit vs eager
    step = jax.jit(functools.partial(model.apply, train=True))
    eager_state = state
    for _ in range(3):
        _, state = step(params, state, x)
        _, eager_state = model.apply(params, eager_state, x, train=True)
    for a, b in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(eager_state)):
        assert_close(a, b)


# -- a BatchNorm model trained, then evaluated, against its PyTorch twin --


def _dense_from(layer_params, module):
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(np.asarray(layer_params["kernel"]).T.copy()))
        module.bias.copy_(torch.from_numpy(np.array(layer_params["bias"])))


@pytest.mark.parametrize("momentum", [0.1, None], ids=["momentum0.1", "cumulative"])
@pytest.mark.parametrize("spatial", [0, 2], ids=["bn1d", "bn2d"])
def test_trained_model_matches_torch_twin(spatial, momentum):
    """20 plain gradient steps on both, then eval: running statistics, parameters and eval outputs agree.

    The 2-d model's first Dense acts on the channels of an NHWC image: a 1x1 convolution."""
    c_in, hidden = 3, 5
    in_shape = (8,) + (4, 4) * (spatial == 2) + (c_in,)
    model = L.serial(
        ("fc1", L.Dense(hidden)), ("bn", L.BatchNorm(momentum=momentum)), ("relu", _relu()), ("fc2", L.Dense(2))
    )
    _, params, state = model.init(KEY, in_shape)
    fc1 = torch.nn.Linear(c_in, hidden) if spatial == 0 else torch.nn.Conv2d(c_in, hidden, 1)
    bn = _torch_bn(spatial, hidden, momentum=momentum)
    fc2 = torch.nn.Linear(hidden, 2)
    with torch.no_grad():
        w = np.asarray(params["fc1"]["kernel"]).T
        fc1.weight.copy_(torch.from_numpy(w.reshape(fc1.weight.shape).copy()))
        fc1.bias.copy_(torch.from_numpy(np.array(params["fc1"]["bias"])))
    _dense_from(params["fc2"], fc2)

    def torch_model(xt):
        h = torch.relu(bn(fc1(xt)))
        if spatial:
            h = h.permute(0, 2, 3, 1)  # back to channels-last for the final Linear, as Dense does
        return fc2(h)

    def loss(p, st, x, target):
        y, new_st = model.apply(p, st, x, train=True)
        return jnp.mean((y - target) ** 2), new_st

    @jax.jit
    def train_step(p, st, x, target):
        (value, new_st), grads = jax.value_and_grad(loss, has_aux=True)(p, st, x, target)
        return jax.tree_util.tree_map(lambda a, g: a - 0.1 * g, p, grads), new_st, value

    torch_params = list(fc1.parameters()) + list(bn.parameters()) + list(fc2.parameters())
    for step in range(20):
        x, target = _x(in_shape, step, loc=1.0), _x(in_shape[:-1] + (2,), 100 + step)
        params, state, value = train_step(params, state, x, target)
        bn.train()
        xt = to_torch_layout(x) if spatial else torch.from_numpy(x)
        t_loss = torch.mean((torch_model(xt) - torch.from_numpy(target)) ** 2)
        for p in torch_params:
            p.grad = None
        t_loss.backward()
        with torch.no_grad():
            for p in torch_params:
                p -= 0.1 * p.grad
        assert abs(float(value) - t_loss.item()) <= 1e-5 * abs(t_loss.item())
    assert_close(state["bn"]["mean"], bn.running_mean.numpy(), what="running mean")
    assert_close(state["bn"]["var"], bn.running_var.numpy(), what="running var")
    assert_close(params["bn"]["scale"], bn.weight.detach().numpy(), what="gamma")
    if momentum is None:
        assert int(state["bn"]["count"]) == 20 == int(bn.num_batches_tracked)
    bn.eval()
    x = _x(in_shape, 99)
    y, _ = jax.jit(functools.partial(model.apply, train=False))(params, state, x)
    assert _traced(lambda p, st, a: model.apply(p, st, a, train=False)[1]["bn"] is st["bn"], params, state, x)
    with torch.no_grad():
        expected = torch_model(to_torch_layout(x) if spatial else torch.from_numpy(x)).numpy()
    assert_close(y, expected, what="eval output")


# -- errors --


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: L.BatchNorm(momentum=1.5), r"BatchNorm: momentum must be a float in \[0, 1\] or None"),
        (lambda: L.BatchNorm(eps=-1.0), r"BatchNorm: eps must be a float >= 0"),
        (lambda: L.InstanceNorm(momentum=None), r"InstanceNorm: momentum must be a float in \[0, 1\], got None"),
        (lambda: L.LayerNorm(eps="x"), r"LayerNorm: eps must be"),
        (lambda: L.GroupNorm(0), r"GroupNorm: num_groups must be an int >= 1"),
        (lambda: L.GroupNorm(2, eps=-1), r"GroupNorm: eps must be"),
        (lambda: L.LocalResponseNorm(0), r"LocalResponseNorm: size must be an int >= 1"),
        (lambda: L.LocalContrastNorm(4), r"LocalContrastNorm: size must be odd"),
        (lambda: L.LocalContrastNorm(window="box"), r"LocalContrastNorm: window must be one of"),
        (lambda: L.LocalContrastNorm(divisive="l1"), r"LocalContrastNorm: divisive must be one of"),
    ],
)
def test_constructor_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "layer,shape,match",
    [
        (L.BatchNorm(), (4,), r"BatchNorm: expected an input of rank >= 2 \(N, \*spatial, C\), got shape \(4,\)"),
        (L.LayerNorm(), (4,), r"LayerNorm: expected an input of rank >= 2"),
        (L.LayerNorm(axes=3), (4, 5, 3), r"LayerNorm: axis 3 is out of range"),
        (L.LayerNorm(axes=0), (4, 5, 3), r"LayerNorm: axes must not include the batch axis"),
        (L.InstanceNorm(), (4, 3), r"InstanceNorm: expected an input of rank >= 3"),
        (
            L.GroupNorm(4),
            (2, 5, 6),
            r"GroupNorm: the 6 channels of input shape \(2, 5, 6\) must be divisible by num_groups=4",
        ),
        (L.LocalResponseNorm(3), (3,), r"LocalResponseNorm: expected an input of rank >= 2"),
        (L.LocalContrastNorm(3), (2, 3), r"LocalContrastNorm: expected an input of rank >= 3"),
        (L.LocalContrastNorm((3, 3)), (2, 5, 3), r"LocalContrastNorm: size \(3, 3\) needs one entry per spatial dim"),
    ],
)
def test_init_errors(layer, shape, match):
    with pytest.raises(ValueError, match=match):
        layer.init(KEY, shape)


def test_apply_with_other_channels_raises():
    layer = L.BatchNorm()
    _, params, state = layer.init(KEY, (4, 3))
    with pytest.raises(
        ValueError,
        match=r"BatchNorm: expected an input \(N, \*spatial, 3\) like the one given "
        r"to init, got shape \(4, 5\)",
    ):
        layer.apply(params, state, jax.device_put(np.ones((4, 5))), train=True)
    with pytest.raises(TypeError, match="train"):
        layer.apply(params, state, jax.device_put(np.ones((4, 3))))
    plain = L.BatchNorm(affine=False)  # no params: the running statistics give the channels
    _, params, state = plain.init(KEY, (4, 3))
    with pytest.raises(ValueError, match=r"BatchNorm: expected an input \(N, \*spatial, 3\)"):
        plain.apply(params, state, jax.device_put(np.ones((4, 2, 5))), train=True)
    inorm = L.InstanceNorm(track_running_stats=True)
    _, params, state = inorm.init(KEY, (4, 5, 3))
    with pytest.raises(ValueError, match=r"InstanceNorm: expected an input \(N, \*spatial, 3\)"):
        inorm.apply(params, state, jax.device_put(np.ones((4, 5, 2))), train=True)


def test_layers_pass_their_eps_on_with_variances_of_the_order_of_eps():
    """eps = 0.1 against running/batch variances ~1e-3: a layer that dropped its eps (or put it outside
    the square root) is off by far more than the tolerance here; with variances ~1 it would not be."""
    x = _x((2, 3, 4, 4), seed=3, scale=0.03)
    xt = to_torch_layout(x)
    mean, var = np.array([0.4, 0.5, 0.6, 0.45], np.float32), np.array([1e-4, 2e-3, 0.01, 5e-4], np.float32)
    bn = L.BatchNorm(eps=0.1)
    _, params, state = bn.init(KEY, x.shape)
    state = {**state, "mean": mean, "var": var}
    module = torch.nn.BatchNorm2d(4, eps=0.1).eval()
    with torch.no_grad():
        module.running_mean.copy_(torch.from_numpy(mean))
        module.running_var.copy_(torch.from_numpy(var))
    y = jax.jit(lambda p, s, a: bn.apply(p, s, a, train=False)[0])(params, state, x)
    assert_close(y, from_torch_layout(module(xt)))
    for layer, twin in (
        (L.GroupNorm(2, eps=0.1), torch.nn.GroupNorm(2, 4, eps=0.1)),
        (L.InstanceNorm(eps=0.1), torch.nn.InstanceNorm2d(4, eps=0.1)),
        (L.LayerNorm(axes=-1, eps=0.1), None),
    ):
        _, params, state = layer.init(KEY, x.shape)
        y = jax.jit(lambda p, s, a: layer.apply(p, s, a, train=True)[0])(params, state, x)
        want = (
            from_torch_layout(twin(xt))
            if twin is not None
            else torch.nn.functional.layer_norm(torch.from_numpy(x), (4,), eps=0.1).numpy()
        )
        assert_close(y, want)
