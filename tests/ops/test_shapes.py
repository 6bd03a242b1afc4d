"""jcnn.ops.shapes.output_size against the seed's formula (§1.4), torch's actual conv and max_pool
(ceil_mode) output shapes, and every error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from jcnn.ops import output_size


def test_seed_examples():
    # seed §1.4: O = (I + 2P − K)/S + 1
    assert output_size(4, 3) == 2  # the 4×4 image and 3×3 filter of §1
    assert output_size(4, 3, padding=1) == 4  # §1.2: padding 1 keeps the size
    assert output_size(7, 3, stride=2) == 3  # §1.3: stride 2 shrinks the output
    assert output_size((4, 7), 3, (1, 2), (1, 0)) == (4, 3)


@given(
    i=st.integers(1, 20),
    k=st.integers(1, 5),
    s=st.integers(1, 4),
    lo=st.integers(0, 3),
    hi=st.integers(0, 3),
    d=st.integers(1, 3),
)
def test_formula_with_dilation_and_asymmetric_padding(i, k, s, lo, hi, d):
    span = i + lo + hi - d * (k - 1) - 1
    if span < 0:
        with pytest.raises(ValueError, match="non-positive output size"):
            output_size(i, k, s, (lo, hi), d)
        return
    assert output_size(i, k, s, (lo, hi), d) == span // s + 1
    assert output_size((i, i), k, s, ((lo, hi), (lo, hi)), d) == (span // s + 1,) * 2
    if lo == hi:
        assert output_size(i, k, s, lo, d) == (i + 2 * lo - d * (k - 1) - 1) // s + 1


@settings(max_examples=40)
@given(i=st.integers(1, 12), k=st.integers(1, 4), s=st.integers(1, 3), p=st.integers(0, 2), d=st.integers(1, 2))
def test_matches_torch_conv_shapes(i, k, s, p, d):
    x = torch.zeros(1, 1, i, i + 1)
    w = torch.zeros(1, 1, k, k)
    if i + 2 * p - d * (k - 1) - 1 < 0:
        with pytest.raises(RuntimeError):
            F.conv2d(x, w, stride=s, padding=p, dilation=d)
        with pytest.raises(ValueError, match="non-positive output size"):
            output_size((i, i + 1), k, s, p, d)
        return
    assert output_size((i, i + 1), k, s, p, d) == tuple(F.conv2d(x, w, stride=s, padding=p, dilation=d).shape[2:])


@settings(max_examples=60)
@given(
    i=st.integers(1, 12),
    k=st.integers(1, 5),
    s=st.integers(1, 4),
    p=st.integers(0, 2),
    d=st.integers(1, 2),
    ceil_mode=st.booleans(),
)
def test_matches_torch_max_pool_with_ceil_mode(i, k, s, p, d, ceil_mode):
    p = min(p, k // 2)  # torch: pad should be at most half of the kernel size
    x = torch.zeros(1, 1, i)
    try:
        expected = F.max_pool1d(x, k, s, p, d, ceil_mode=ceil_mode).shape[-1]
    except RuntimeError:  # torch: "Output size is too small"
        with pytest.raises(ValueError, match="non-positive output size"):
            output_size(i, k, s, p, d, ceil_mode)
        return
    assert output_size(i, k, s, p, d, ceil_mode) == expected


def test_ceil_mode_drops_a_window_starting_in_the_high_padding():
    # I=5, K=2, S=2, P=1: ceil gives floor((5 + 2 − 2 + 1)/2) + 1 = 4 windows starting at −1, 1, 3, 5;
    # the one at 5 starts in the high padding (>= I + P_low − 1 + 1), so torch keeps 3.
    assert output_size(5, 2, 2, 1, ceil_mode=True) == 3
    assert output_size(6, 3, 2, 0, ceil_mode=True) == 3  # floor gives 2; the last window overhangs by 1


def test_ceil_mode_allows_a_window_larger_than_the_input_as_torch():
    # I=1, K=2, S=2: floor mode has no complete window; ceil mode keeps the one starting at 0.
    assert output_size(1, 2, 2, ceil_mode=True) == 1
    assert F.avg_pool1d(torch.zeros(1, 1, 1), 2, 2, ceil_mode=True).shape[-1] == 1
    with pytest.raises(ValueError, match=r"ceil\(\(1 \+ 0 \+ 0 - 1\*\(4 - 1\) - 1\)/2\) \+ 1 = 0 <= 0"):
        output_size(1, 4, 2, ceil_mode=True)


def test_same_and_valid_strings():
    assert output_size((7, 8), (3, 4), (2, 3), "SAME") == (4, 3)  # ceil(I/S)
    assert output_size((7, 8), (3, 4), (2, 3), "VALID") == (3, 2)
    assert output_size(np.int64(9), 3, 2, "SAME", dilation=3) == 5


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        (
            (3, 5),
            {},
            ValueError,
            r"output_size: non-positive output size: .* I=3, P_low=0, P_high=0, D=1, K=5, S=1 gives "
            r"floor\(\(3 \+ 0 \+ 0 - 1\*\(5 - 1\) - 1\)/1\) \+ 1 = -1 <= 0",
        ),
        ((3, 3), {"dilation": 2, "padding": (0, 1)}, ValueError, r"I=3, P_low=0, P_high=1, D=2, K=3, S=1"),
        ((0, 1), {}, ValueError, r"output_size: input size must be >= 1, got 0"),
        (((4, -1), 1), {}, ValueError, r"output_size: input size must be >= 1, got \(4, -1\)"),
        ((4, 0), {}, ValueError, r"output_size: every kernel must be >= 1, got 0"),
        ((4, 2), {"stride": 0}, ValueError, r"output_size: every stride must be >= 1, got 0"),
        ((4, 2), {"dilation": 0}, ValueError, r"output_size: every dilation must be >= 1, got 0"),
        (((4, 4), (2, 2, 2)), {}, ValueError, r"output_size: kernel needs one value per spatial dim \(2"),
        ((4, 2), {"padding": -1}, ValueError, r"output_size: padding must be non-negative, got -1"),
        ((4, 2), {"padding": "HALF"}, ValueError, r"output_size: unknown padding string 'HALF'"),
        ((4, 2), {"stride": True}, TypeError, r"output_size: stride must be an int or a sequence of 1 ints"),
    ],
)
def test_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        output_size(*args, **kwargs)
