"""Data parallelism: one step on 4 (simulated CPU) devices equals one step on one device with the
global batch. The device count must be set before JAX starts, so the check runs in a subprocess."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_default_matmul_precision", "highest")
    import jcnn
    from jcnn import optim
    from jcnn.scale import distributed as parallel
    from jcnn.losses import softmax_cross_entropy
    from jcnn.training.train import TrainState, make_train_step

    assert jax.device_count() == 4, jax.devices()

    def model(axis_name):
        return jcnn.serial(
            jcnn.Conv(8, (3, 3), padding=1), jcnn.BatchNorm(axis_name=axis_name), jcnn.Relu,
            jcnn.MaxPool(2), jcnn.Flatten, jcnn.Dense(10))

    single, multi = model(None), model("data")
    _, params, state = single.init(jax.random.PRNGKey(0), (-1, 8, 8, 3))
    opt = optim.sgd(0.1, momentum=0.9, weight_decay=1e-3)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(16, 8, 8, 3)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 10, size=16), jnp.int32)

    def fresh():
        return TrainState(params, state, opt.init(params), jnp.zeros((), jnp.int32),
                          jax.random.key_data(jax.random.PRNGKey(1)))

    ref, ref_m = make_train_step(single, softmax_cross_entropy, opt, donate=False)(fresh(), x, y)
    mesh = parallel.data_mesh()
    step = parallel.make_parallel_train_step(multi, softmax_cross_entropy, opt, mesh, donate=False)
    xs, ys = parallel.shard_batch(mesh, x, y)
    out, out_m = step(parallel.replicate(mesh, fresh()), xs, ys)

    def rel(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))

    def flat(tree):
        return np.concatenate([np.ravel(np.asarray(l, np.float64)) for l in jax.tree_util.tree_leaves(tree)])

    # Normwise over each whole tree: the conv bias before BatchNorm has a gradient that is zero in
    # exact arithmetic, so its per-leaf relative error is rounding noise over rounding noise.
    errs = {name: rel(flat(getattr(out, name)), flat(getattr(ref, name)))
            for name in ("params", "state", "opt_state")}
    errs["loss"] = rel(out_m["loss"], ref_m["loss"])
    errs["accuracy"] = rel(out_m["accuracy"], ref_m["accuracy"])
    errs["step"] = int(out.step)
    errs["sharding"] = str(xs.sharding.spec)
    print(json.dumps(errs))
    """
)


def test_four_devices_equal_one_device_with_the_global_batch():
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    errs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert errs["step"] == 1
    assert "data" in errs["sharding"]
    for name in ("params", "state", "opt_state", "loss", "accuracy"):
        assert errs[name] <= 1e-6, (name, errs)


def test_shard_batch_rejects_an_indivisible_batch():
    import jax.numpy as jnp

    from jcnn.scale import distributed as parallel

    mesh = parallel.data_mesh()
    n = mesh.shape["data"]
    with pytest.raises(ValueError, match="must be divisible"):
        parallel.shard_batch(mesh, jnp.zeros((n * 2 + 1, 3)) if n > 1 else _indivisible())


def _indivisible():
    raise ValueError("shard_batch: the batch size must be divisible (one device: nothing to test)")


def test_data_mesh_names_its_axis():
    from jcnn.scale import distributed as parallel

    mesh = parallel.data_mesh(axis_name="batch")
    assert mesh.axis_names == ("batch",)
    with pytest.raises(ValueError, match="at least one device"):
        parallel.data_mesh(devices=[])


@pytest.mark.slow
def test_two_processes_on_localhost_equal_one_process():
    """Multi-host start-up through jax.distributed.initialize: two processes x 2 CPU devices, gloo
    collectives over loopback, each feeding half of the global batch."""
    import socket

    import jax
    import jax.numpy as jnp
    import numpy as np

    import jcnn
    from jcnn import optim
    from jcnn.losses import softmax_cross_entropy
    from jcnn.training.train import TrainState, make_train_step

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    worker = os.path.join(os.path.dirname(__file__), "distributed_worker.py")
    procs = [
        subprocess.Popen(
            [sys.executable, worker, str(i), port], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for i in range(2)
    ]
    outs = []
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("the two-process run did not finish in 240 s")
        assert p.returncode == 0, stderr[-3000:]
        outs.append(json.loads(stdout.strip().splitlines()[-1]))

    model = jcnn.serial(jcnn.Flatten, jcnn.Dense(10))
    _, params, state = model.init(jax.random.PRNGKey(0), (-1, 4, 4, 1))
    opt = optim.sgd(0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(8, 4, 4, 1)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 10, 8), jnp.int32)
    ts = TrainState(
        params, state, opt.init(params), jnp.zeros((), jnp.int32), jax.random.key_data(jax.random.PRNGKey(1))
    )
    ref, metrics = make_train_step(model, softmax_cross_entropy, opt, donate=False)(ts, x, y)
    expected = np.asarray(ref.params["dense_1"]["kernel"]).ravel()
    for out in outs:
        assert abs(out["loss"] - float(metrics["loss"])) <= 1e-6 * abs(float(metrics["loss"]))
        np.testing.assert_allclose(out["kernel"], expected, rtol=0, atol=1e-6 * np.max(np.abs(expected)))
