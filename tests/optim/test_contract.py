"""One table of every optimizer drives the generic contract: jit equals eager, the state keeps its
structure, dtypes and NamedTuple fields, half precision runs, a jitted step traces once in 200 calls,
and bad input is a clear error at construction or at update."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jcnn import optim
from jcnn.optim import schedules

SCHED = schedules.warmup_cosine(0.01, 5, 50)
OPTIMIZERS = {
    "sgd": optim.sgd(0.01, momentum=0.9, nesterov=True, weight_decay=1e-4),
    "sgd_plain": optim.sgd(SCHED),
    "adagrad": optim.adagrad(SCHED, lr_decay=0.01, weight_decay=1e-4),
    "rmsprop": optim.rmsprop(SCHED, momentum=0.5, centered=True),
    "adam": optim.adam(SCHED, amsgrad=True, weight_decay=1e-4),
    "adamw": optim.adamw(SCHED),
    "adadelta": optim.adadelta(weight_decay=1e-4),
    "adamax": optim.adamax(SCHED),
    "nadam": optim.nadam(SCHED, decoupled_weight_decay=True, weight_decay=1e-2),
    "chain": optim.chain(
        optim.clip_by_global_norm(1.0),
        optim.masked(optim.add_decayed_weights(1e-4), lambda p: jax.tree_util.tree_map(lambda x: x.ndim > 1, p)),
        optim.scale_by_adam(),
        optim.scale_by_learning_rate(SCHED),
    ),
    "accumulate": optim.accumulate_gradients(optim.chain(optim.clip(0.5), optim.scale_by_rms(), optim.scale(-0.01)), 3),
    "adagrad_chain": optim.chain(optim.scale_by_adagrad(), optim.trace(0.5), optim.scale_by_learning_rate(0.1)),
}
NAMES = list(OPTIMIZERS)


# Params and gradients are made in NumPy: eager jnp arithmetic would compile a program per leaf shape and
# dtype (most of these tests' cost).
def _params(dtype=np.float32):
    r = np.random.default_rng(0)
    tree = {
        "conv": {"kernel": r.normal(size=(3, 3, 2, 4)), "bias": np.zeros(4)},
        "dense": {"kernel": r.normal(size=(8, 3)), "bias": r.normal(size=(3,))},
    }
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a.astype(dtype)), tree)


def _grads(params, i):
    def grad(p):
        p = np.asarray(p)
        return jnp.asarray((np.sin(p.astype(np.float64) * (1.0 + 0.1 * i)) + 0.1).astype(p.dtype))

    return jax.tree_util.tree_map(grad, params)


def _run(opt, params, steps, step_fn):
    state = opt.init(params)
    for i in range(steps):
        params, state = step_fn(params, state, _grads(params, i))
    return params, state


def _step(opt):
    def step(params, state, grads):
        u, state = opt.update(grads, state, params)
        return optim.apply_updates(params, u), state

    return step


@pytest.mark.parametrize("name", NAMES)
def test_jit_equals_eager_traces_once_and_keeps_the_state_structure(name):
    """Three eager steps equal three jitted ones; the jitted train step then runs to 200 steps on a single
    trace (counted by a Python side effect, which runs only while tracing)."""
    opt = OPTIMIZERS[name]
    traces = []

    def train_step(params, state, grads):
        traces.append(1)
        u, state = opt.update(grads, state, params)
        return optim.apply_updates(params, u), state

    params = _params()
    s0 = opt.init(params)
    p_eager, _ = _run(opt, params, 3, train_step)
    traces.clear()
    jitted = jax.jit(train_step)
    p_jit, s_jit = _run(opt, params, 3, jitted)
    for a, b in zip(jax.tree_util.tree_leaves(p_eager), jax.tree_util.tree_leaves(p_jit)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
    assert not np.allclose(np.asarray(p_jit["dense"]["kernel"]), np.asarray(params["dense"]["kernel"]))
    grads = _grads(params, 0)
    for _ in range(197):
        p_jit, s_jit = jitted(p_jit, s_jit, grads)
    assert len(traces) == 1
    assert jax.tree_util.tree_structure(s_jit) == jax.tree_util.tree_structure(s0)
    for a, b in zip(jax.tree_util.tree_leaves(s0), jax.tree_util.tree_leaves(s_jit)):
        assert a.shape == b.shape and a.dtype == b.dtype
    counts = [x for x in jax.tree_util.tree_leaves(s_jit) if x.dtype == jnp.int32 and x.ndim == 0]
    assert counts and int(counts[0]) in (200, 66)  # the step count: 200, or 200 // 3 accumulated steps


@pytest.mark.parametrize("name", NAMES)
def test_state_parts_are_named_tuples_with_a_count(name):
    state = OPTIMIZERS[name].init(_params())
    parts = list(state.values()) if isinstance(state, dict) else [state]
    for part in parts:
        assert isinstance(part, tuple) and hasattr(part, "_fields"), f"{type(part)} is not a NamedTuple"
    assert any("count" in part._fields for part in parts) or name == "chain"


@pytest.mark.parametrize("name", NAMES)
def test_each_param_keeps_its_dtype(name):
    """One tree with float32, bfloat16 and float16 leaves: every update and new param keeps its leaf's
    dtype and stays finite (half-precision buffers and arithmetic are float32 inside)."""
    opt = OPTIMIZERS[name]
    dtypes = {
        "conv": {"kernel": jnp.float16, "bias": jnp.bfloat16},
        "dense": {"kernel": jnp.bfloat16, "bias": jnp.float32},
    }
    params = jax.tree_util.tree_map(lambda p, d: jnp.asarray(np.asarray(p).astype(d)), _params(), dtypes)

    @jax.jit
    def step(params, state, grads):  # the updates too: one compile for both checks
        u, state = opt.update(grads, state, params)
        return optim.apply_updates(params, u), state, u

    p, s = params, opt.init(params)
    for i in range(3):
        p, s, u = step(p, s, _grads(p, i))
    for leaf, d in zip(jax.tree_util.tree_leaves(p), jax.tree_util.tree_leaves(dtypes)):
        assert leaf.dtype == d and np.all(np.isfinite(np.asarray(leaf, np.float32)))
    assert [x.dtype for x in jax.tree_util.tree_leaves(u)] == jax.tree_util.tree_leaves(dtypes)


NEGATIVE = float("-0.1")
NAN = float("nan")


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: optim.sgd(NEGATIVE), r"sgd: learning_rate must be a finite number in \[0.0, inf\], got -0.1"),
        (lambda: optim.sgd(NAN), "sgd: learning_rate must be a finite number"),
        (lambda: optim.adam(float("inf")), "adam: learning_rate must be a finite number"),
        (lambda: optim.sgd("fast"), "sgd: learning_rate must be a real number, got 'fast'"),
        (lambda: optim.sgd(0.1, momentum=-0.9), "sgd: momentum must be"),
        (lambda: optim.sgd(0.1, weight_decay=-1e-4), "sgd: weight_decay must be"),
        (lambda: optim.sgd(0.1, nesterov=True), "sgd: nesterov momentum requires a momentum and zero dampening"),
        (lambda: optim.sgd(0.1, 0.9, dampening=0.1, nesterov=True), "sgd: nesterov momentum requires"),
        (lambda: optim.adam(b1=1.0), r"adam: b1 must be a finite number in \[0.0, 1.0\), got 1.0"),
        (lambda: optim.adam(b2=-0.1), "adam: b2 must be"),
        (lambda: optim.adamw(b2=NAN), "adamw: b2 must be"),
        (lambda: optim.adam(eps=-1e-8), "adam: eps must be"),
        (lambda: optim.adamw(weight_decay=-0.01), "adamw: weight_decay must be"),
        (lambda: optim.adamax(b1=1.5), "adamax: b1 must be"),
        (lambda: optim.nadam(b2=1.0), "nadam: b2 must be"),
        (lambda: optim.nadam(momentum_decay=-1.0), "nadam: momentum_decay must be"),
        (lambda: optim.adagrad(lr_decay=-0.1), "adagrad: lr_decay must be"),
        (lambda: optim.adagrad(eps=-1.0), "adagrad: eps must be"),
        (lambda: optim.adagrad(initial_accumulator_value=-1.0), "adagrad: initial_accumulator_value must be"),
        (lambda: optim.rmsprop(alpha=1.5), "rmsprop: alpha must be"),
        (lambda: optim.rmsprop(momentum=-0.5), "rmsprop: momentum must be"),
        (lambda: optim.rmsprop(eps=NAN), "rmsprop: eps must be"),
        (lambda: optim.adadelta(rho=2.0), "adadelta: rho must be"),
        (lambda: optim.adadelta(-1.0), "adadelta: learning_rate must be"),
    ],
)
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("name", NAMES)
def test_mismatched_trees_name_the_paths(name):
    opt = OPTIMIZERS[name]
    params = _params()
    state = opt.init(params)
    grads = _grads(params, 0)
    del grads["dense"]["bias"]
    with pytest.raises(
        TypeError,
        match=r"params and grads must have the same pytree structure; paths only in "
        r"params: \[\"\['dense'\]\['bias'\]\"\]",
    ):
        opt.update(grads, state, params)


@pytest.mark.parametrize("name", NAMES)
def test_integer_params_are_rejected(name):
    opt = OPTIMIZERS[name]
    params = _params()
    bad = {**params, "step": jnp.zeros((), jnp.int32)}
    with pytest.raises(
        TypeError,
        match=r"every leaf of params must be a floating-point array, but params\['step'\] "
        "has dtype int32",
    ):
        opt.init(bad)
    state = opt.init(params)
    int_grads = jax.tree_util.tree_map(lambda p: jnp.zeros(p.shape, jnp.int32), params)
    with pytest.raises(TypeError, match="every leaf of grads must be a floating-point array"):
        opt.update(int_grads, state, params)


def test_apply_updates_checks():
    params = _params()
    with pytest.raises(
        TypeError,
        match=r"apply_updates: params and updates must have the same pytree structure; "
        r"paths only in params: \[\"\['conv'\]\['bias'\]",
    ):
        optim.apply_updates(params, {"conv": {"kernel": params["conv"]["kernel"]}, "dense": params["dense"]})
    with pytest.raises(TypeError, match="same leaf paths but different container types"):
        optim.apply_updates([jnp.zeros(2)], (jnp.zeros(2),))
    with pytest.raises(TypeError, match=r"apply_updates: every leaf of params must be a floating-point array"):
        optim.apply_updates({"n": jnp.zeros(2, jnp.int32)}, {"n": jnp.zeros(2, jnp.int32)})


def test_named_optimizers_need_params():
    opt = optim.adam()
    params = _params()
    with pytest.raises(ValueError, match="adam.update: this transformation needs the current params"):
        opt.update(params, opt.init(params))


@pytest.mark.parametrize("name", NAMES)
def test_state_round_trips_through_a_checkpoint(name, tmp_path):
    """The state is a plain pytree: jcnn.training.checkpoint saves it by key path and restores it leaf for leaf."""
    from jcnn.training import checkpoint

    opt = OPTIMIZERS[name]
    params = _params()
    state = opt.init(params)
    _, state = opt.update(_grads(params, 0), state, params)
    checkpoint.save(tmp_path / "opt.safetensors", {"opt_state": state})
    restored, _ = checkpoint.restore(tmp_path / "opt.safetensors", {"opt_state": state})
    assert jax.tree_util.tree_structure(restored["opt_state"]) == jax.tree_util.tree_structure(state)
    for a, b in zip(jax.tree_util.tree_leaves(restored["opt_state"]), jax.tree_util.tree_leaves(state)):
        assert a.dtype == b.dtype and np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("name", NAMES)
def test_wrong_shaped_grad_names_the_leaf(name):
    """A transposed kernel, and a bias gradient of shape (1,) that elementwise arithmetic would have
    broadcast silently over the (3,) bias."""
    opt = OPTIMIZERS[name]
    params = _params()
    state = opt.init(params)
    grads = _grads(params, 0)
    grads["dense"]["kernel"] = grads["dense"]["kernel"].T
    with pytest.raises(
        ValueError,
        match=r"grads\['dense'\]\['kernel'\] has shape \(3, 8\), params\['dense'\]"
        r"\['kernel'\] \(8, 3\)",
    ):
        opt.update(grads, state, params)
    grads = _grads(params, 0)
    grads["dense"]["bias"] = grads["dense"]["bias"][:1]
    with pytest.raises(ValueError, match=r"grads\['dense'\]\['bias'\] has shape \(1,\)"):
        opt.update(grads, state, params)


@pytest.mark.parametrize(
    "make, buffer",
    [
        (optim.trace(0.9), "state.momentum"),
        (optim.scale_by_adam(), "state.mu"),
        (optim.scale_by_rms(), "state.nu"),
        (optim.scale_by_adagrad(), "state.sum"),
        (optim.accumulate_gradients(optim.scale(1.0), 2), "state.acc"),
    ],
)
def test_wrong_shaped_grad_without_params_names_the_leaf(make, buffer):
    params = _params()
    state = make.init(params)
    grads = _grads(params, 0)
    grads["conv"]["bias"] = jnp.ones((1,))
    with pytest.raises(ValueError, match=rf"grads\['conv'\]\['bias'\] has shape \(1,\), {buffer}\['conv'\]"):
        make.update(grads, state)


def test_apply_updates_rejects_wrong_shapes():
    params = _params()
    updates = {**params, "dense": {**params["dense"], "bias": jnp.zeros(1)}}
    with pytest.raises(ValueError, match=r"apply_updates: .* updates\['dense'\]\['bias'\] has shape \(1,\)"):
        optim.apply_updates(params, updates)


@pytest.mark.parametrize("name", ["sgd", "adam", "chain"])
def test_schedule_with_a_negative_learning_rate(name):
    """Eagerly an error naming the step; under jit a NaN update (the train step's guard stops there)."""
    sched = lambda t: 0.01 - 0.005 * t  # noqa: E731 - negative from step 3
    opt = {
        "sgd": optim.sgd(sched),
        "adam": optim.adam(sched),
        "chain": optim.chain(optim.scale_by_adam(), optim.scale_by_learning_rate(sched)),
    }[name]
    params = _params()
    state = opt.init(params)
    for i in range(3):
        _, state = opt.update(_grads(params, i), state, params)
    with pytest.raises(
        ValueError,
        match=r"learning_rate: the schedule returned -0.005 for step 3; a learning "
        r"rate must be a finite number >= 0",
    ):
        opt.update(_grads(params, 3), state, params)
    u, _ = jax.jit(opt.update)(_grads(params, 3), state, params)
    assert all(np.isnan(np.asarray(x)).all() for x in jax.tree_util.tree_leaves(u))
