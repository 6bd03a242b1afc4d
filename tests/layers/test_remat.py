"""remat: same values and gradients, measurably less temporary memory in a compiled ResNet step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jcnn
from tests.helpers import assert_close


def basic_block(features: int, stride: int, project: bool) -> jcnn.Layer:
    body = jcnn.serial(
        ("conv1", jcnn.Conv(features, (3, 3), stride=stride, padding=1, use_bias=False)),
        ("bn1", jcnn.BatchNorm()),
        jcnn.Relu,
        ("conv2", jcnn.Conv(features, (3, 3), padding=1, use_bias=False)),
        ("bn2", jcnn.BatchNorm()),
    )
    shortcut = (
        jcnn.serial(jcnn.Conv(features, (1, 1), stride=stride, use_bias=False), jcnn.BatchNorm())
        if project
        else jcnn.Identity
    )
    return jcnn.serial(jcnn.residual(body, shortcut), jcnn.Relu)


def small_resnet(wrap) -> jcnn.Layer:
    blocks = []
    for i, (features, stride) in enumerate([(8, 1), (8, 1), (16, 2), (16, 1)]):
        blocks.append((f"block{i}", wrap(basic_block(features, stride, project=i == 2))))
    return jcnn.serial(("stem", jcnn.Conv(8, (3, 3), padding=1)), *blocks, jcnn.GlobalAvgPool, ("fc", jcnn.Dense(10)))


INPUT = (8, 16, 16, 3)


def _grad_fn(model, state):
    def loss(params, x):
        logits, new_state = model.apply(params, state, x, train=True)
        return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - logits[:, 0]), new_state

    return jax.jit(jax.grad(loss, has_aux=True))


@pytest.fixture(scope="module")
def compiled():
    out = {}
    x = jax.random.normal(jax.random.PRNGKey(1), INPUT, jnp.float32)
    for name, wrap in (("plain", lambda layer: layer), ("remat", jcnn.remat)):
        model = small_resnet(wrap)
        _, params, state = model.init(jax.random.PRNGKey(0), INPUT)
        fn = _grad_fn(model, state)
        executable = fn.lower(params, x).compile()  # one compile: measured, then run
        temp = executable.memory_analysis().temp_size_in_bytes
        grads, new_state = executable(params, x)
        out[name] = (params, state, grads, new_state, temp)
    return out


def test_remat_keeps_params_state_and_names(compiled):
    p_plain, s_plain = compiled["plain"][:2]
    p_remat, s_remat = compiled["remat"][:2]
    assert jax.tree_util.tree_structure(p_plain) == jax.tree_util.tree_structure(p_remat)
    assert jax.tree_util.tree_structure(s_plain) == jax.tree_util.tree_structure(s_remat)
    for a, b in zip(jax.tree_util.tree_leaves(p_plain), jax.tree_util.tree_leaves(p_remat)):
        np.testing.assert_array_equal(a, b)
    wrapped = jcnn.remat(jcnn.Conv(4, 3))
    assert wrapped.kind == "remat" and wrapped.prefix == jcnn.Conv(4, 3).prefix == "conv"
    assert [n for n, _ in jcnn.serial(wrapped).children] == ["conv_0"]
    assert repr(wrapped) == "remat(\n  Conv(4, 3)\n)"


def test_remat_gradients_and_state_equal_plain(compiled):
    _, _, g_plain, s_plain, _ = compiled["plain"]
    _, _, g_remat, s_remat, _ = compiled["remat"]
    for a, b in zip(jax.tree_util.tree_leaves(g_remat), jax.tree_util.tree_leaves(g_plain)):
        # Recomputation reorders float32 sums; the kernels' gradients agree to float32 rounding.
        assert_close(a, b, rtol=1e-4, what="gradient")
    for a, b in zip(jax.tree_util.tree_leaves(s_remat), jax.tree_util.tree_leaves(s_plain)):
        assert_close(a, b, what="BatchNorm state")


def test_remat_lowers_temporary_memory_of_the_compiled_step(compiled):
    plain, remat = compiled["plain"][-1], compiled["remat"][-1]
    # Measured on CPU: ~2x less (only the block inputs are kept for the backward pass).
    assert remat < 0.75 * plain, (plain, remat)


def test_checkpoint_path_gives_the_same_gradients():
    layer = jcnn.serial(jcnn.Dense(6), jcnn.Tanh, jcnn.Dense(5))
    x = jax.random.normal(jax.random.PRNGKey(2), (2, 3, 4), jnp.float32)
    _, params, state = layer.init(jax.random.PRNGKey(0), x.shape)

    def loss(model):
        return lambda p: jnp.sum(model.apply(p, state, x, train=True)[0] ** 2)

    reference = jax.jit(jax.grad(loss(layer)))(params)
    for backend in ("cpu", "gpu"):  # "gpu" takes the jax.checkpoint path, which also runs on CPU
        grads = jax.jit(jax.grad(loss(jcnn.remat(layer, backend=backend))))(params)
        for a, b in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(reference)):
            assert_close(a, b, what=f"gradient ({backend} path)")


def test_remat_passes_the_key_and_train_flag():
    layer = jcnn.remat(jcnn.serial(jcnn.Dropout(0.5), jcnn.Dense(3)))
    _, params, state = layer.init(jax.random.PRNGKey(0), (4, 8))
    x = jnp.ones((4, 8), jnp.float32)
    y_eval, _ = layer.apply(params, state, x, train=False)
    y_a, _ = layer.apply(params, state, x, train=True, key=jax.random.PRNGKey(1))
    y_b, _ = layer.apply(params, state, x, train=True, key=jax.random.PRNGKey(2))
    assert not np.allclose(y_a, y_b) and not np.allclose(y_a, y_eval)
    g = jax.grad(lambda p: jnp.sum(layer.apply(p, state, x, train=True, key=jax.random.PRNGKey(1))[0]))(params)
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(g))


def test_remat_rejects_a_non_layer():
    with pytest.raises(TypeError, match="remat: expected a Layer"):
        jcnn.remat(lambda x: x)
