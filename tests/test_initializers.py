"""Initializers: fans vs torch's, every variance formula (statistically), torch's gains, and errors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jcnn import initializers as I

KEY = jax.random.PRNGKey(0)
SHAPE = (3, 3, 48, 64)  # HWIO conv kernel: 27 648 samples, fan_in = 432, fan_out = 576
FAN_IN, FAN_OUT = 9 * 48, 9 * 64


def test_fans_match_torch_layouts():
    assert I.compute_fans(SHAPE) == (FAN_IN, FAN_OUT)
    t = torch.empty(64, 48, 3, 3)  # the same kernel in torch's (O, I, kH, kW)
    assert torch.nn.init._calculate_fan_in_and_fan_out(t) == (FAN_IN, FAN_OUT)
    assert I.compute_fans((20, 30)) == (20, 30)  # dense (in, out) = torch Linear weight (out, in)
    assert I.compute_fans((7,)) == (7, 7)
    # transposed conv (*K, C_in, C_out/g): torch's fan_in is dim 1 of (C_in, C_out/g, *K)
    tt = torch.empty(16, 8, 3, 3)
    assert I.compute_fans((3, 3, 16, 8), in_axis=-1, out_axis=-2) == torch.nn.init._calculate_fan_in_and_fan_out(tt)
    with pytest.raises(ValueError, match=r"compute_fans: a kernel needs rank >= 1, got shape \(\)"):
        I.compute_fans(())


def _check(w, var: float, uniform: bool, what: str) -> None:
    w = np.asarray(w, np.float64).ravel()
    assert abs(w.mean()) < 4 * math.sqrt(var / w.size) + 1e-12, what
    # std of the sample variance ≈ var·sqrt(0.8/n) (uniform) or var·sqrt(2/n) (normal): < 1% here; 4% is loose
    assert abs(w.var() / var - 1) < 0.04, f"{what}: variance {w.var():.3e} vs {var:.3e}"
    if uniform:
        bound = math.sqrt(3 * var)
        assert np.abs(w).max() <= bound * (1 + 1e-6) and np.abs(w).max() > 0.995 * bound, what


GAIN = {"linear": 1.0, "relu": 2.0, "tanh": 25 / 9, "leaky_relu_sqrt5": 2 / 6, "leaky_relu_0": 2.0, "selu": 9 / 16}
CASES = [
    ("variance_scaling fan_in uniform", I.variance_scaling(2.0, "fan_in", "uniform"), 2.0 / FAN_IN, True),
    ("variance_scaling fan_out normal", I.variance_scaling(0.5, "fan_out", "normal"), 0.5 / FAN_OUT, False),
    ("variance_scaling fan_avg uniform", I.variance_scaling(1.0, "fan_avg", "uniform"), 2.0 / (FAN_IN + FAN_OUT), True),
    ("kaiming_uniform(a=sqrt5)", I.kaiming_uniform(math.sqrt(5)), GAIN["leaky_relu_sqrt5"] / FAN_IN, True),
    ("kaiming_uniform relu fan_out", I.kaiming_uniform(mode="fan_out", nonlinearity="relu"), 2.0 / FAN_OUT, True),
    ("kaiming_normal", I.kaiming_normal(), GAIN["leaky_relu_0"] / FAN_IN, False),
    ("kaiming_normal tanh", I.kaiming_normal(nonlinearity="tanh"), GAIN["tanh"] / FAN_IN, False),
    ("kaiming_normal selu", I.kaiming_normal(nonlinearity="selu"), GAIN["selu"] / FAN_IN, False),
    ("he_uniform", I.he_uniform(), 2.0 / FAN_IN, True),
    ("he_normal", I.he_normal(), 2.0 / FAN_IN, False),
    ("glorot_uniform", I.glorot_uniform(), 2.0 / (FAN_IN + FAN_OUT), True),
    ("glorot_normal gain 2", I.glorot_normal(2.0), 4 * 2.0 / (FAN_IN + FAN_OUT), False),
    ("lecun_uniform", I.lecun_uniform(), 1.0 / FAN_IN, True),
    ("lecun_normal", I.lecun_normal(), 1.0 / FAN_IN, False),
    ("torch_default_kernel", I.torch_default_kernel(), 1.0 / (3 * FAN_IN), True),
    ("fan_in_uniform", I.fan_in_uniform(FAN_IN), 1.0 / (3 * FAN_IN), True),
    ("normal(0.1, 2)", I.normal(0.1, 0.0), 0.01, False),
    ("uniform(-2, 2)", I.uniform(-2.0, 2.0), 16 / 12, True),
]


@pytest.mark.parametrize("name, init, var, uniform", CASES, ids=[c[0] for c in CASES])
def test_variance_formula(name, init, var, uniform):
    w = init(KEY, SHAPE)
    assert w.shape == SHAPE and w.dtype == jnp.float32
    _check(w, var, uniform, name)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (I.kaiming_uniform(math.sqrt(5)), lambda t: torch.nn.init.kaiming_uniform_(t, a=math.sqrt(5))),
        (I.kaiming_normal(nonlinearity="relu"), lambda t: torch.nn.init.kaiming_normal_(t, nonlinearity="relu")),
        (I.glorot_uniform(), torch.nn.init.xavier_uniform_),
        (I.glorot_normal(), torch.nn.init.xavier_normal_),
    ],
    ids=["kaiming_uniform", "kaiming_normal", "xavier_uniform", "xavier_normal"],
)
def test_matches_torch_init_statistics(ours, theirs):
    w = np.asarray(ours(KEY, SHAPE), np.float64)
    t = theirs(torch.empty(64, 48, 3, 3, dtype=torch.float64)).numpy()
    assert abs(w.std() / t.std() - 1) < 0.03
    assert abs(np.abs(w).max() / np.abs(t).max() - 1) < 0.15  # both near the bound (uniform) or ~4 sigma (normal)


def test_constants_and_dtypes():
    assert bool(jnp.all(I.zeros(KEY, (2, 3)) == 0)) and bool(jnp.all(I.ones(KEY, (2,)) == 1))
    assert bool(jnp.all(I.constant(0.25)(KEY, (4,), jnp.bfloat16) == 0.25))
    assert I.he_normal()(KEY, (4, 4), jnp.bfloat16).dtype == jnp.bfloat16
    assert bool(jnp.all(I.fan_in_uniform(0)(KEY, (3,)) == 0))


def test_errors():
    with pytest.raises(ValueError, match="initializers: unknown nonlinearity 'swish'"):
        I.kaiming_uniform(nonlinearity="swish")
    with pytest.raises(ValueError, match="initializers: mode must be 'fan_in', 'fan_out' or 'fan_avg', got 'fan'"):
        I.variance_scaling(1.0, "fan", "uniform")
    with pytest.raises(ValueError, match="variance_scaling: distribution must be 'uniform' or 'normal', got 'cauchy'"):
        I.variance_scaling(1.0, "fan_in", "cauchy")


def test_eager_jitted_and_vmapped_inits_draw_the_same_values():
    import jcnn

    model = jcnn.models.resnet18(num_classes=5)
    key = jax.random.PRNGKey(11)
    _, eager, eager_state = model.init(key, (1, 32, 32, 3))
    jitted, jitted_state = jax.jit(lambda k: model.init(k, (1, 32, 32, 3))[1:])(key)
    for a, b in zip(jax.tree_util.tree_leaves((eager, eager_state)), jax.tree_util.tree_leaves((jitted, jitted_state))):
        assert a.dtype == b.dtype and np.array_equal(np.asarray(a), np.asarray(b))
    keys = jax.random.split(key, 2)
    small = jcnn.serial(jcnn.Conv(3, (3, 3)), jcnn.Dense(2))
    batched = jax.vmap(lambda k: small.init(k, (1, 5, 5, 2))[1])(keys)
    for i in range(2):
        one = small.init(keys[i], (1, 5, 5, 2))[1]
        for a, b in zip(jax.tree_util.tree_leaves(batched), jax.tree_util.tree_leaves(one)):
            assert bool(jnp.all(a[i] == b))
    assert not bool(jnp.all(batched["conv_0"]["kernel"][0] == batched["conv_0"]["kernel"][1]))


def test_large_draws_are_split_in_chunks_independent_of_threads(monkeypatch):
    from jcnn import _host_random as H

    bits = np.array([7, 9], np.uint32)
    whole = H.sample_host(bits, (3, 1 << 21), "normal", 0.0, 1.0, np.float32)  # 1.5 chunks of 2**22
    monkeypatch.setattr(H, "_pool", None)
    monkeypatch.setattr(H.os, "cpu_count", lambda: 1)
    again = H.sample_host(bits, (3, 1 << 21), "normal", 0.0, 1.0, np.float32)
    np.testing.assert_array_equal(whole, again)
    assert abs(float(whole.std()) - 1) < 0.01 and abs(float(whole.mean())) < 0.01
    assert not np.array_equal(whole.ravel()[: 1 << 20], whole.ravel()[1 << 22 : (1 << 22) + (1 << 20)])


def test_truncated_normal_stays_inside_its_bounds():
    w = np.asarray(I.truncated_normal(0.02, a=-0.03, b=0.03)(KEY, (4000,)))
    assert w.min() >= -0.03 and w.max() <= 0.03 and 0.012 < w.std() < 0.02
    with pytest.raises(ValueError, match="truncated_normal: needs stddev > 0 and a < b"):
        I.truncated_normal(0.0)
    assert (
        repr(I.kaiming_normal(mode="fan_out", nonlinearity="relu"))
        == "kaiming_normal(mode='fan_out', nonlinearity='relu')"
    )


def _draw_layer(draw):
    """A hand-written host-init layer whose ``init`` is ``draw(key) -> params``."""
    from jcnn.layers.base import make_layer

    return make_layer(
        "Draw",
        lambda key, shape: (shape, draw(key), {}),
        lambda p, s, x, **kw: (x, s),
        shape=lambda s: s,
        host_init=True,
    )


def test_an_init_draws_its_tensors_ahead_with_the_values_drawn_one_at_a_time(monkeypatch):
    import jcnn
    from jcnn import _host_random as H

    # repeated shapes (the Dense kernels, the BatchNorm-free convs) catch values handed to the wrong tensor
    model = jcnn.serial(
        jcnn.Conv(8, (3, 3)), jcnn.Conv(8, (3, 3)), jcnn.Flatten(), jcnn.Dense(8), jcnn.Dense(8), jcnn.Dense(8)
    )
    key, shape = jax.random.PRNGKey(5), (1, 9, 9, 3)
    planned, prepared = [], []
    sample_many, prepare = H.sample_many, H._prepare
    monkeypatch.setattr(H, "sample_many", lambda draws, into=None: planned.append(len(draws)) or sample_many(draws))
    monkeypatch.setattr(H, "_prepare", lambda draw, into=None: prepared.append(draw) or prepare(draw, into))
    ahead = model.init(key, shape)[1]
    assert planned == [10] and len(prepared) == 10  # 5 kernels + 5 biases, all drawn ahead, none again
    monkeypatch.setattr(H, "sample_many", lambda draws, into=None: {})  # nothing ahead: each tensor drawn when asked
    one_by_one = model.init(key, shape)[1]
    for a, b in zip(jax.tree_util.tree_leaves(ahead), jax.tree_util.tree_leaves(one_by_one), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(ahead["dense_3"]["kernel"]), np.asarray(ahead["dense_4"]["kernel"]))
    assert H.MODE.ready is None and H.MODE.plan is None and not H.MODE.abstract


def test_a_request_made_twice_gets_equal_values_in_separate_buffers():
    layer = _draw_layer(lambda k: {"a": I.normal(1.0)(k, (64, 3)), "b": I.normal(1.0)(k, (64, 3))})
    params = layer.init(KEY, (2, 3))[1]
    np.testing.assert_array_equal(np.asarray(params["a"]), np.asarray(params["b"]))
    assert params["a"].unsafe_buffer_pointer() != params["b"].unsafe_buffer_pointer()


def test_an_init_that_reads_its_draws_is_not_drawn_ahead_and_gives_the_same_values():
    from jcnn.layers.base import split_key

    def draw(k):
        k1, k2 = split_key(k, 2)
        w = I.normal(1.0)(k1, (16,))
        spread = float(np.asarray(w).std())  # reads a value: the plan (zeros) asks for another v than the real pass
        return {"w": w, "v": I.normal(spread)(k2, (4,))}

    params = _draw_layer(draw).init(KEY, (2, 3))[1]
    k1, k2 = jax.random.split(KEY)
    w = np.asarray(I.normal(1.0)(k1, (16,)))
    np.testing.assert_array_equal(np.asarray(params["w"]), w)
    np.testing.assert_array_equal(np.asarray(params["v"]), np.asarray(I.normal(float(w.std()))(k2, (4,))))


def test_a_failing_init_raises_its_own_error_and_leaves_no_draws_behind():
    import jcnn
    from jcnn import _host_random as H

    with pytest.raises(ValueError, match="Conv"):
        jcnn.serial(jcnn.Conv(4, (5, 5)), jcnn.Dense(2)).init(KEY, (1, 3, 3, 2))
    assert H.MODE.ready is None and H.MODE.plan is None and not H.MODE.abstract


@pytest.mark.parametrize("partitionable", [True, False])
def test_host_key_splitting_equals_jax_for_every_count(partitionable):
    from jcnn import _host_random as H

    key = jax.random.PRNGKey(2**31 + 12345)
    with jax.threefry_partitionable(partitionable):
        for n in (1, 2, 3, 7, 16, 17, 40):  # Python-int words up to 16 children, NumPy beyond
            np.testing.assert_array_equal(H._split_bits(np.asarray(key), n), np.asarray(jax.random.split(key, n)))


def test_a_key_handed_to_a_hand_written_init_works_with_jax_random():
    import jcnn
    from jcnn.layers.base import split_key

    # an init that breaks the host_init promise (eager jax.random) still gets a key jax.random accepts
    model = jcnn.serial(_draw_layer(lambda k: {"w": jax.random.normal(k, (3,))}), jcnn.Dense(2))
    for key in (jax.random.PRNGKey(1), jax.random.key(1)):
        params = model.init(key, (1, 4))[1]
        expected = jax.random.normal(split_key(key, 2)[0], (3,))
        np.testing.assert_array_equal(np.asarray(params["draw_0"]["w"]), np.asarray(expected))


@pytest.mark.parametrize("buffer_callback", [True, False])
def test_a_jitted_init_that_reuses_reorders_and_computes_on_its_draws_gives_the_eager_values(
    monkeypatch, buffer_callback
):
    import jcnn
    from jcnn.layers import base
    from jcnn.layers.base import split_key

    if not buffer_callback:  # the pure_callback path of an older jax
        monkeypatch.setattr(base, "_buffer_callback", None)

    def draw(k):
        k1, k2 = split_key(k, 2)
        w, v = I.normal(1.0)(k1, (6, 4)), I.uniform(1.0)(k2, (4, 6))
        # the draws are written straight into the jitted init's outputs: a view of one output handed out as
        # another, the same array twice, arithmetic and a constant must all still land where they belong
        return {"a": w, "b": v.T, "c": w, "d": w * 2, "e": v, "f": I.ones(k, (3,))}

    def swapped(k):
        k1, k2 = split_key(k, 2)
        w, u = I.normal(1.0)(k1, (4, 4)), I.normal(1.0)(k2, (4, 4))
        if not np.asarray(w).any():  # the planning pass's zeros: the real pass returns the draws swapped, so
            return {"w": w, "u": u}  # each output's source is the array drawn into the other output
        return {"w": u, "u": w}

    model = jcnn.serial(_draw_layer(draw), _draw_layer(swapped), jcnn.Dense(3))
    eager = model.init(KEY, (2, 5))[1]
    jitted = jax.jit(lambda k: model.init(k, (2, 5))[1])(KEY)
    for a, b in zip(jax.tree_util.tree_leaves(eager), jax.tree_util.tree_leaves(jitted), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    d = eager["draw_0"]
    np.testing.assert_array_equal(np.asarray(d["b"]), np.asarray(d["e"]).T)
    np.testing.assert_array_equal(np.asarray(d["d"]), 2 * np.asarray(d["a"]))
    assert not np.array_equal(np.asarray(eager["draw_1"]["w"]), np.asarray(eager["draw_1"]["u"]))
