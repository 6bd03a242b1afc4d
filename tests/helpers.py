"""Comparison helpers shared by the tests."""

from __future__ import annotations

import numpy as np

F32_RTOL = 1e-5


def rel_error(actual, expected) -> float:
    """Normwise relative error ``max|a − e| / max|e|`` (absolute error when ``e`` is all zeros)."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, f"shape mismatch: got {a.shape}, expected {e.shape}"
    scale = np.max(np.abs(e)) if e.size else 0.0
    err = np.max(np.abs(a - e)) if e.size else 0.0
    return float(err / scale) if scale > 0 else float(err)


def assert_close(actual, expected, rtol: float = F32_RTOL, what: str = "") -> None:
    """Assert ``rel_error(actual, expected) <= rtol`` with a message that shows the error."""
    err = rel_error(actual, expected)
    assert err <= rtol, f"{what or 'values'}: relative error {err:.3e} > {rtol:.1e}"


def to_torch_layout(x: np.ndarray):
    """Channels-last ``(N, *spatial, C)`` NumPy → channels-first torch tensor ``(N, C, *spatial)``."""
    import torch

    x = np.asarray(x)
    perm = (0, x.ndim - 1) + tuple(range(1, x.ndim - 1))
    return torch.from_numpy(np.ascontiguousarray(x.transpose(perm)))


def from_torch_layout(t) -> np.ndarray:
    """Channels-first torch tensor → channels-last NumPy."""
    x = t.detach().cpu().numpy()
    perm = (0,) + tuple(range(2, x.ndim)) + (1,)
    return x.transpose(perm)


def torch_conv_weight(kernel: np.ndarray):
    """HWIO kernel ``(*spatial, C_in/g, C_out)`` → torch ``(C_out, C_in/g, *spatial)``."""
    import torch

    k = np.asarray(kernel)
    n = k.ndim - 2
    return torch.from_numpy(np.ascontiguousarray(k.transpose((n + 1, n) + tuple(range(n)))))


def torch_conv_transpose_weight(kernel: np.ndarray):
    """Transposed kernel ``(*spatial, C_in, C_out/g)`` → torch ``(C_in, C_out/g, *spatial)``."""
    import torch

    k = np.asarray(kernel)
    n = k.ndim - 2
    return torch.from_numpy(np.ascontiguousarray(k.transpose((n, n + 1) + tuple(range(n)))))
