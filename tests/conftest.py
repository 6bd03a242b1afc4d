"""Suite-wide settings: fixed seeds, float64 available for gradient checks, highest matmul precision,
bounded hypothesis runs (``HYPOTHESIS_PROFILE=many`` for a deep run), one thread per pytest worker (CI has 2
cores and runs 2 workers), and one persistent XLA compilation cache shared by the workers, the slow step
and the ``jcnn`` subprocesses that tests start: a program compiled once is not compiled again in the run
(``make test`` starts it empty, as a fresh clone does)."""

import os
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".jax_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_default_matmul_precision", "highest")

settings.register_profile(
    "ci",
    max_examples=12,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("many", parent=settings.get_profile("ci"), max_examples=400, derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

try:
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
except ImportError:  # torch is a test extra; tests that need it import it themselves
    pass


@pytest.fixture
def rng() -> np.random.Generator:
    """A fixed-seed NumPy generator, fresh for each test."""
    return np.random.default_rng(0)
