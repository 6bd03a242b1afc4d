"""One process of the two-process data-parallel check in test_distributed.py (not a test module).

argv: process_id, coordinator port. Prints the step's loss and updated params as JSON on its last line.
"""

import json
import sys

import jax

jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.config.update("jax_default_matmul_precision", "highest")

from jcnn.scale import distributed  # noqa: E402

process_id, port = int(sys.argv[1]), sys.argv[2]
distributed.initialize_distributed(f"127.0.0.1:{port}", 2, process_id)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import jcnn  # noqa: E402
from jcnn import optim  # noqa: E402
from jcnn.losses import softmax_cross_entropy  # noqa: E402
from jcnn.training.train import TrainState  # noqa: E402

assert jax.device_count() == 4 and jax.local_device_count() == 2, jax.devices()
model = jcnn.serial(jcnn.Flatten, jcnn.Dense(10))
_, params, state = model.init(jax.random.PRNGKey(0), (-1, 4, 4, 1))
opt = optim.sgd(0.1, momentum=0.9)
rng = np.random.default_rng(0)
x = rng.normal(size=(8, 4, 4, 1)).astype(np.float32)
y = rng.integers(0, 10, 8).astype(np.int32)
mesh = distributed.data_mesh()
sharding = NamedSharding(mesh, P("data"))
lo, hi = process_id * 4, process_id * 4 + 4  # each process feeds its own half of the global batch
xs = jax.make_array_from_process_local_data(sharding, x[lo:hi])
ys = jax.make_array_from_process_local_data(sharding, y[lo:hi])
ts = TrainState(params, state, opt.init(params), jnp.zeros((), jnp.int32), jax.random.key_data(jax.random.PRNGKey(1)))
step = distributed.make_parallel_train_step(model, softmax_cross_entropy, opt, mesh, donate=False)
out, metrics = step(distributed.replicate(mesh, ts), xs, ys)
kernel = np.asarray(multihost_utils.process_allgather(out.params["dense_1"]["kernel"], tiled=True))
print(json.dumps({"loss": float(metrics["loss"]), "kernel": kernel.ravel().tolist()}), flush=True)
