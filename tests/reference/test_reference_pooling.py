"""Tests of ``jcnn.reference.pooling``. The pooling oracle itself: hand-computed examples (the seed's 2×2 max pool, torch's divisor and
ceil_mode rules, adaptive bins) and a direct comparison with torch.nn.functional (no JAX involved)."""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as F

from jcnn import reference
from tests.helpers import assert_close, from_torch_layout, to_torch_layout


def _nhwc(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)[None, :, :, None]


def test_seed_2x2_max_pool():
    # seed §2.1: 2×2 max pooling with stride 2 keeps the largest value of each 2×2 block
    x = _nhwc([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]])
    np.testing.assert_array_equal(reference.max_pool(x, 2)[0, :, :, 0], [[6, 8], [3, 4]])
    np.testing.assert_array_equal(reference.avg_pool(x, 2)[0, :, :, 0], [[13 / 4, 21 / 4], [2, 2]])


def test_hand_computed_padding_divisors_and_ceil_mode():
    x = np.arange(1.0, 7.0)[None, :, None]  # 1..6
    # K=3, S=2, P=1, ceil: windows [-1,1], [1,3], [3,5], [5,7]; 6 is padding, 7 past the padded input
    np.testing.assert_allclose(reference.avg_pool(x, 3, 2, 1, ceil_mode=True)[0, :, 0], [1, 3, 5, 3])
    np.testing.assert_allclose(
        reference.avg_pool(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)[0, :, 0], [1.5, 3, 5, 6]
    )
    np.testing.assert_allclose(reference.max_pool(x, 3, 2, 1, ceil_mode=True)[0, :, 0], [2, 4, 6, 6])
    # asymmetric padding (0, 1), dilation 2: taps i, i+2 over [1..6, pad]
    np.testing.assert_allclose(reference.max_pool(x, 2, 1, [(0, 1)], dilation=2)[0, :, 0], [3, 4, 5, 6, 5])
    # lp: (Σ x²)^(1/2) over [1,2], [3,4], [5,6]
    np.testing.assert_allclose(reference.lp_pool(x, 2, 2)[0, :, 0], np.sqrt([5, 25, 61]))
    # ceil_mode lp rescales a clipped window like torch: K=4, S=4 → windows [1..4], [5,6] × 4/2
    np.testing.assert_allclose(reference.lp_pool(x, 1, 4, ceil_mode=True)[0, :, 0], [10, 22])


def test_adaptive_bins_and_global_pools():
    assert reference.adaptive_bins(5, 3) == [(0, 2), (1, 4), (3, 5)]
    assert reference.adaptive_bins(4, 2) == [(0, 2), (2, 4)]
    assert reference.adaptive_bins(2, 3) == [(0, 1), (0, 2), (1, 2)]
    x = np.arange(1.0, 6.0)[None, :, None]
    np.testing.assert_allclose(reference.adaptive_avg_pool(x, 3)[0, :, 0], [1.5, 3, 4.5])
    np.testing.assert_allclose(reference.adaptive_max_pool(x, 3)[0, :, 0], [2, 4, 5])
    np.testing.assert_allclose(reference.adaptive_max_pool(x, [None])[0, :, 0], [1, 2, 3, 4, 5])
    y = _nhwc([[1, -2], [3, 4]])
    np.testing.assert_allclose(reference.global_avg_pool(y), [[1.5]])
    np.testing.assert_allclose(reference.global_max_pool(y), [[4.0]])


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_matches_torch(n, ceil_mode, rng):
    x = rng.standard_normal((2, *(7, 6, 5)[:n], 2))
    xt = to_torch_layout(x)
    k, s, p = (3, 2, 2)[:n], (2, 1, 2)[:n], (1, 0, 1)[:n]
    pool = lambda name: getattr(F, f"{name}{n}d")  # noqa: E731
    assert_close(
        reference.max_pool(x, k, s, p, (1, 2, 1)[:n], ceil_mode),
        from_torch_layout(pool("max_pool")(xt, k, s, p, (1, 2, 1)[:n], ceil_mode)),
        rtol=1e-12,
    )
    for cip in (True, False):
        assert_close(
            reference.avg_pool(x, k, s, p, ceil_mode, cip),
            from_torch_layout(pool("avg_pool")(xt, k, s, p, ceil_mode, cip)),
            rtol=1e-12,
        )
    z = np.abs(x) + 0.1
    tk, ts = (k[0], s[0]) if n == 1 else (k, s)
    assert_close(
        reference.lp_pool(z, 3, k, s, ceil_mode),
        from_torch_layout(pool("lp_pool")(to_torch_layout(z), 3.0, tk, ts, ceil_mode)),
        rtol=1e-12,
    )
    out = (4, 3, 2)[:n]
    assert_close(reference.adaptive_avg_pool(x, out), from_torch_layout(pool("adaptive_avg_pool")(xt, out)), rtol=1e-12)
    assert_close(reference.adaptive_max_pool(x, out), from_torch_layout(pool("adaptive_max_pool")(xt, out)), rtol=1e-12)
    assert_close(reference.global_avg_pool(x), xt.mean(tuple(range(2, n + 2))).numpy(), rtol=1e-12)
    assert_close(reference.global_max_pool(x), xt.amax(tuple(range(2, n + 2))).numpy(), rtol=1e-12)
