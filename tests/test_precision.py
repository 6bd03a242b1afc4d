"""Mixed-precision policy and dynamic loss scaling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jcnn
from jcnn.scale import precision
from tests.helpers import rel_error


def small_model() -> jcnn.Layer:
    return jcnn.serial(jcnn.Conv(4, (3, 3), padding=1), jcnn.BatchNorm(), jcnn.Relu, jcnn.Flatten, jcnn.Dense(3))


X = np.random.default_rng(0).normal(size=(4, 6, 6, 2)).astype(np.float32)


def test_get_policy_by_name_and_unknown_name():
    pol = precision.get_policy("mixed_bfloat16")
    assert (pol.param_dtype, pol.compute_dtype, pol.output_dtype) == (jnp.float32, jnp.bfloat16, jnp.float32)
    assert precision.get_policy(pol) is pol
    with pytest.raises(ValueError, match="unknown policy 'fp8'"):
        precision.get_policy("fp8")


@pytest.mark.parametrize("name", ["mixed_bfloat16", "mixed_float16"])
def test_policy_computes_in_half_and_returns_float32(name):
    pol = precision.get_policy(name)
    plain = small_model()
    mixed = precision.with_policy(plain, pol)
    _, params, state = mixed.init(jax.random.PRNGKey(0), X.shape)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(params))
    # Under jit: eagerly every primitive of the model, its casts and its gradient compiles on its own.
    y, new_state = jax.jit(lambda p, s, x: mixed.apply(p, s, x, train=True))(params, state, jnp.asarray(X))
    assert y.dtype == jnp.float32
    # BatchNorm statistics keep their float32 dtype so the state threads through jit unchanged.
    for a, b in zip(jax.tree_util.tree_leaves(new_state), jax.tree_util.tree_leaves(state)):
        assert a.dtype == b.dtype
    jaxpr = str(jax.make_jaxpr(lambda p: mixed.apply(p, state, jnp.asarray(X), train=False)[0])(params))
    half = "bf16" if name == "mixed_bfloat16" else "f16"
    assert "conv_general_dilated" in jaxpr and f"{half}[4,6,6,4]" in jaxpr
    y32, _ = jax.jit(lambda p, s, x: plain.apply(p, s, x, train=True))(params, state, jnp.asarray(X))
    # bfloat16 keeps 8 significant bits (float16: 11): agreement to a few units of the last bit.
    assert rel_error(y, y32) < (5e-2 if name == "mixed_bfloat16" else 5e-3)
    grads = jax.jit(jax.grad(lambda p: jnp.sum(mixed.apply(p, state, jnp.asarray(X), train=True)[0])))(params)
    assert all(g.dtype == jnp.float32 for g in jax.tree_util.tree_leaves(grads))


def test_cast_floating_leaves_ints_alone():
    tree = {"w": jnp.ones(2, jnp.float32), "count": jnp.zeros((), jnp.int32)}
    out = precision.cast_floating(tree, jnp.bfloat16)
    assert out["w"].dtype == jnp.bfloat16 and out["count"].dtype == jnp.int32


def test_dynamic_loss_scale_backs_off_and_grows():
    scaler = precision.DynamicLossScale(init_scale=1024.0, growth_interval=3)
    ls = scaler.init()
    ls = scaler.adjust(ls, jnp.array(False))
    assert float(ls.scale) == 512.0 and int(ls.good_steps) == 0
    for expected_good in (1, 2):
        ls = scaler.adjust(ls, jnp.array(True))
        assert float(ls.scale) == 512.0 and int(ls.good_steps) == expected_good
    ls = scaler.adjust(ls, jnp.array(True))
    assert float(ls.scale) == 1024.0 and int(ls.good_steps) == 0
    small = precision.DynamicLossScale(init_scale=1.0, min_scale=1.0)
    assert float(small.adjust(small.init(), jnp.array(False)).scale) == 1.0


def test_scale_and_unscale_round_trip():
    scaler = precision.DynamicLossScale(init_scale=2.0**10)
    ls = scaler.init()
    assert float(scaler.scale(jnp.asarray(3.0, jnp.float16), ls)) == 3.0 * 2**10
    grads = {"a": jnp.asarray([2.0**10, 2.0**11], jnp.float16)}
    out = scaler.unscale(grads, ls)
    assert out["a"].dtype == jnp.float16
    np.testing.assert_array_equal(np.asarray(out["a"], np.float32), [1.0, 2.0])


def test_invalid_loss_scale_settings():
    with pytest.raises(ValueError, match="DynamicLossScale: needs init_scale > 0"):
        precision.DynamicLossScale(init_scale=0.0).init()
    with pytest.raises(ValueError, match="0 < backoff_factor < 1"):
        precision.DynamicLossScale(backoff_factor=1.5).init()


def test_all_finite_and_select_tree():
    good = {"a": jnp.ones(3), "n": jnp.zeros((), jnp.int32)}
    bad = {"a": jnp.array([1.0, jnp.inf, 0.0]), "n": jnp.zeros((), jnp.int32)}
    assert bool(precision.all_finite(good)) and not bool(precision.all_finite(bad))
    picked = precision.select_tree(precision.all_finite(bad), bad, good)
    np.testing.assert_array_equal(picked["a"], good["a"])


def test_float16_training_step_with_loss_scaling_recovers_underflowing_gradients():
    """A float16 gradient below float16's smallest subnormal (6e-8) flushes to zero unscaled; with
    the loss scaled by 2^16 it survives, and a step that overflows is skipped with the scale halved."""
    model = precision.with_policy(jcnn.Dense(1, use_bias=False), "mixed_float16")
    _, params, state = model.init(jax.random.PRNGKey(0), (1, 1))
    params = {"kernel": jnp.ones((1, 1), jnp.float32)}
    x = jnp.full((1, 1), 1e-4, jnp.float32)

    def loss(p, factor):
        y, _ = model.apply(p, state, x, train=True)
        return jnp.sum(y) * factor  # d loss / d kernel = x·factor = 1e-4·1e-5 = 1e-9 in exact terms

    def half_grad(p, scale):
        # The gradient flows through float16 compute: cast the cotangent to float16 as a float16
        # backward pass would, then unscale in float32.
        g = jax.grad(lambda q: (loss(q, 1e-5) * scale).astype(jnp.float16).astype(jnp.float32))(p)
        return g

    unscaled = half_grad(params, 1.0)
    assert float(unscaled["kernel"][0, 0]) == 0.0
    scaler = precision.DynamicLossScale(init_scale=2.0**16)
    ls = scaler.init()
    scaled = scaler.unscale(half_grad(params, ls.scale), ls)
    assert abs(float(scaled["kernel"][0, 0]) - 1e-9) < 1e-10
    huge = scaler.unscale(half_grad(params, jnp.float32(1e12)), ls)
    finite = precision.all_finite(huge)
    assert not bool(finite)
    assert float(scaler.adjust(ls, finite).scale) == 2.0**15
