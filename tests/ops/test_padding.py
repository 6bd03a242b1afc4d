"""jcnn.ops.padding: every padding form of DESIGN.md §2 (normalize_padding, as_tuple) and every padding
mode of pad_spatial against np.pad and torch.nn.functional.pad, plus every error."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from jax import lax

from jcnn.ops import PADDING_MODES, normalize_padding, pad_spatial
from jcnn.ops.padding import as_tuple, effective_kernel
from tests.helpers import assert_close, from_torch_layout, to_torch_layout

NP_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
TORCH_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


@pytest.mark.parametrize(
    "padding, expected",
    [
        (2, ((2, 2), (2, 2))),
        (np.int64(1), ((1, 1), (1, 1))),
        ((1, 3), ((1, 1), (3, 3))),
        ([(0, 2), (1, 0)], ((0, 2), (1, 0))),
        (((0, 2), 3), ((0, 2), (3, 3))),
        ("VALID", ((0, 0), (0, 0))),
        ("valid", ((0, 0), (0, 0))),
    ],
)
def test_normalize_padding_forms(padding, expected):
    assert normalize_padding(padding, 2, "op") == expected


@given(size=st.integers(1, 12), window=st.integers(1, 7), stride=st.integers(1, 4))
def test_same_padding_keeps_ceil_size_like_xla(size, window, stride):
    ((lo, hi),) = normalize_padding("SAME", 1, "op", input_spatial=(size,), window=(window,), stride=(stride,))
    assert ((lo, hi),) == tuple(lax.padtype_to_pads((size,), (window,), (stride,), "SAME"))
    assert hi - lo in (0, 1)  # the odd pixel goes on the high side
    if size + lo + hi >= window:
        assert (size + lo + hi - window) // stride + 1 == -(-size // stride)


def test_same_padding_with_dilated_window_and_lowercase():
    pairs = normalize_padding(
        "same", 2, "op", input_spatial=(7, 8), window=effective_kernel((3, 2), (2, 3)), stride=(1, 2)
    )
    assert pairs == ((2, 2), (1, 1))  # windows 5 and 4: totals 4 and (4 − 1)·2 + 4 − 8 = 2


@pytest.mark.parametrize(
    "padding, kwargs, error, match",
    [
        ("FULL", {}, ValueError, r"op: unknown padding string 'FULL'; expected 'VALID' or 'SAME'"),
        ("SAME", {}, ValueError, r"op: padding='SAME' needs the input size, window and stride"),
        (True, {}, TypeError, r"op: padding must be an int, a sequence or 'VALID'/'SAME', got True"),
        (1.5, {}, TypeError, r"op: padding must be an int, a sequence or 'VALID'/'SAME', got 1.5"),
        ((1, 2, 3), {}, ValueError, r"op: padding needs one entry per spatial dim \(2 for this input\)"),
        (
            ((1, 2, 3), 1),
            {},
            ValueError,
            r"op: each padding entry must be an int or a \(low, high\) pair, got \(1, 2, 3\)",
        ),
        ((1.5, 1), {}, ValueError, r"op: each padding entry must be an int or a \(low, high\) pair, got 1.5"),
        (-1, {}, ValueError, r"op: padding must be non-negative, got -1"),
        (((0, -1), 0), {}, ValueError, r"op: padding must be non-negative"),
    ],
)
def test_normalize_padding_errors(padding, kwargs, error, match):
    with pytest.raises(error, match=match):
        normalize_padding(padding, 2, "op", **kwargs)


def test_as_tuple_and_errors():
    assert as_tuple(2, 3, "stride", "op") == (2, 2, 2)
    assert as_tuple([1, np.int32(2)], 2, "stride", "op") == (1, 2)
    assert as_tuple(0, 2, "output_padding", "op", minimum=0) == (0, 0)
    with pytest.raises(TypeError, match=r"op: stride must be an int or a sequence of 2 ints, got the bool True"):
        as_tuple(True, 2, "stride", "op")
    with pytest.raises(TypeError, match=r"op: stride must be an int or a sequence of 2 ints, got None"):
        as_tuple(None, 2, "stride", "op")
    with pytest.raises(ValueError, match=r"op: stride needs one value per spatial dim \(2 for this input\)"):
        as_tuple((1, 2, 3), 2, "stride", "op")
    with pytest.raises(ValueError, match=r"op: every dilation must be >= 1, got \(1, 0\)"):
        as_tuple((1, 0), 2, "dilation", "op")
    assert effective_kernel((3, 1, 2), (2, 5, 3)) == (5, 1, 4)


@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_pad_spatial_matches_numpy_and_torch(mode, n):
    r = np.random.default_rng(n)
    spatial = (4, 3, 5)[:n]
    pairs = ((3, 1), (0, 2), (2, 3))[:n]  # reflect needs < size, circular <= size: both hold
    x = r.standard_normal((2, *spatial, 3)).astype(np.float32)
    cot = r.standard_normal((2, *(s + lo + hi for s, (lo, hi) in zip(spatial, pairs)), 3)).astype(np.float32)

    @jax.jit
    def run(a, c):
        y, vjp = jax.vjp(lambda a_: pad_spatial(a_, pairs, mode), a)
        return y, vjp(c)[0]

    y, g = run(x, cot)
    assert y.dtype == jnp.float32
    np.testing.assert_array_equal(y, np.pad(x, ((0, 0), *pairs, (0, 0)), mode=NP_MODE[mode]))
    xt = to_torch_layout(x).requires_grad_()
    yt = F.pad(xt, [v for p in reversed(pairs) for v in p], mode=TORCH_MODE[mode])
    np.testing.assert_array_equal(y, from_torch_layout(yt))
    yt.backward(to_torch_layout(cot))
    assert_close(g, from_torch_layout(xt.grad), what=f"{mode} gradient vs torch")


def test_pad_spatial_value_dtypes_limits_and_jit():
    x = np.arange(12, dtype=np.float32).reshape(1, 4, 3)

    @jax.jit  # the constant, largest-reflect and largest-circular pads in one compile
    def run(a):
        return (
            pad_spatial(a, ((1, 2),), value=-7.0),
            pad_spatial(a, ((3, 3),), "reflect"),
            pad_spatial(a, ((4, 4),), "circular"),
        )

    constant, reflect, circular = run(x)
    np.testing.assert_array_equal(constant, np.pad(x, ((0, 0), (1, 2), (0, 0)), constant_values=-7.0))
    assert pad_spatial(x, ((0, 0),), "reflect") is x  # nothing to pad (eager: the input itself comes back)
    for dtype in (jnp.bfloat16, jnp.float16, jnp.float32):
        for mode in PADDING_MODES:
            out = jax.eval_shape(lambda a: pad_spatial(a, ((1, 1),), mode, value=-np.inf), x.astype(dtype))
            assert out.dtype == dtype
    # the largest pads each mode allows: reflect size − 1, circular size
    np.testing.assert_array_equal(reflect, np.pad(x, ((0, 0), (3, 3), (0, 0)), "reflect"))
    np.testing.assert_array_equal(circular, np.pad(x, ((0, 0), (4, 4), (0, 0)), "wrap"))
    jitted = jax.jit(lambda a: pad_spatial(a, ((2, 1),), "circular"))
    np.testing.assert_array_equal(jitted(x), np.pad(x, ((0, 0), (2, 1), (0, 0)), "wrap"))


@pytest.mark.parametrize(
    "pairs, mode, match",
    [
        (((1, 1),), "mirror", r"conv: unknown padding_mode 'mirror'; expected one of \('zeros'"),
        (
            ((4, 0),),
            "reflect",
            r"conv: padding_mode='reflect' needs padding < input size, got padding \(4, 0\) "
            r"for spatial size 4",
        ),
        (((0, 5),), "circular", r"conv: padding_mode='circular' needs padding <= input size, got padding \(0, 5\)"),
    ],
)
def test_pad_spatial_errors(pairs, mode, match):
    with pytest.raises(ValueError, match=match):
        pad_spatial(np.zeros((1, 4, 2), np.float32), pairs, mode, op="conv")
