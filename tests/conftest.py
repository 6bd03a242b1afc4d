"""Suite-wide settings: fixed seeds, float64 available for gradient checks, highest matmul precision,
bounded hypothesis runs, one thread per pytest worker (CI has 2 cores and runs 2 workers)."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

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
