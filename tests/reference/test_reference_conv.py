"""jcnn.reference.conv against hand-worked numbers (the seed's §1 example) and against independent
oracles: numpy.convolve / scipy.signal, and identities (channel sum of §1.5, stride = subsampling,
dilation = zero-inserted kernel, groups = concatenation, padding modes = np.pad, conv_transpose = adjoint)."""

from __future__ import annotations

import numpy as np
import pytest

from jcnn.reference import conv_transpose, convolve, correlate

IMAGE = np.array([[1, 2, 3, 0], [0, 1, 2, 3], [3, 0, 1, 2], [2, 3, 0, 1]], float)
FILTER = np.array([[2, 0, 1], [0, 1, 2], [1, 0, 2]], float)


def _nhwc(a: np.ndarray) -> np.ndarray:
    return a[None, :, :, None]


def _hwio(k: np.ndarray) -> np.ndarray:
    return k[:, :, None, None]


def test_seed_worked_example():
    # O[0,0] = 1·2 + 2·0 + 3·1 + 0·0 + 1·1 + 2·2 + 3·1 + 0·0 + 1·2 = 15, and so on for the other windows.
    np.testing.assert_array_equal(correlate(_nhwc(IMAGE), _hwio(FILTER))[0, :, :, 0], [[15, 16], [6, 15]])
    np.testing.assert_array_equal(
        correlate(_nhwc(IMAGE), _hwio(FILTER), np.array([3.0]))[0, :, :, 0], [[18, 19], [9, 18]]
    )
    # True convolution: the filter reversed in both axes, [[2, 0, 1], [2, 1, 0], [1, 0, 2]];
    # O[0,0] = 1·2 + 2·0 + 3·1 + 0·2 + 1·1 + 2·0 + 3·1 + 0·0 + 1·2 = 11.
    np.testing.assert_array_equal(convolve(_nhwc(IMAGE), _hwio(FILTER))[0, :, :, 0], [[11, 12], [10, 11]])
    # Padding 1 keeps the 4×4 size (seed §1.2); the centre window is unchanged.
    padded = correlate(_nhwc(IMAGE), _hwio(FILTER), padding=1)[0, :, :, 0]
    assert padded.shape == (4, 4)
    np.testing.assert_array_equal(padded[1:3, 1:3], [[15, 16], [6, 15]])
    assert padded[0, 0] == 1 * 1 + 2 * 2 + 0 * 0 + 1 * 2  # the top-left window sees K[1:, 1:] only
    # Stride 2 on the padded image (seed §1.3): O = (4 + 2 − 3)/2 + 1 = 2.
    np.testing.assert_array_equal(
        correlate(_nhwc(IMAGE), _hwio(FILTER), padding=1, stride=2)[0, :, :, 0], padded[::2, ::2]
    )


def test_1d_against_numpy():
    r = np.random.default_rng(0)
    x, k = r.standard_normal(11), r.standard_normal(4)
    np.testing.assert_allclose(
        correlate(x[None, :, None], k[:, None, None])[0, :, 0], np.correlate(x, k, "valid"), rtol=1e-12
    )
    np.testing.assert_allclose(
        convolve(x[None, :, None], k[:, None, None])[0, :, 0], np.convolve(x, k, "valid"), rtol=1e-12
    )


@pytest.mark.parametrize("shape, kshape", [((6, 7), (3, 2)), ((4, 5, 3), (2, 3, 2))])
def test_2d_3d_against_scipy_and_channel_sum(shape, kshape):
    signal = pytest.importorskip("scipy.signal")
    r = np.random.default_rng(1)
    x = r.standard_normal((2, *shape, 3))
    k = r.standard_normal((*kshape, 3, 2))
    out = correlate(x, k)
    conv_out = convolve(x, k)
    for b in range(2):
        for o in range(2):
            # §1.5: an output channel is the sum over input channels of single-channel correlations.
            expected = sum(signal.correlate(x[b, ..., c], k[..., c, o], "valid") for c in range(3))
            np.testing.assert_allclose(out[b, ..., o], expected, rtol=1e-12, atol=1e-12)
            expected = sum(signal.convolve(x[b, ..., c], k[..., c, o], "valid") for c in range(3))
            np.testing.assert_allclose(conv_out[b, ..., o], expected, rtol=1e-12, atol=1e-12)


def test_stride_dilation_groups_padding_identities():
    r = np.random.default_rng(2)
    x = r.standard_normal((2, 9, 8, 4))
    k = r.standard_normal((3, 2, 2, 6))
    b = r.standard_normal(6)
    full = correlate(x, k, b, groups=2)
    np.testing.assert_allclose(correlate(x, k, b, stride=(2, 3), groups=2), full[:, ::2, ::3], rtol=1e-12)
    # groups: group g reads channels [2g, 2g+2) and writes [3g, 3g+3)
    per_group = [
        correlate(x[..., 2 * g : 2 * g + 2], k[..., 3 * g : 3 * g + 3], b[3 * g : 3 * g + 3]) for g in range(2)
    ]
    np.testing.assert_allclose(full, np.concatenate(per_group, axis=-1), rtol=1e-12)
    # dilation D: the kernel with D − 1 zeros inserted between taps
    dilated = np.zeros((5, 4, 2, 6))
    dilated[::2, ::3] = k
    np.testing.assert_allclose(
        correlate(x, k, b, dilation=(2, 3), groups=2), correlate(x, dilated, b, groups=2), rtol=1e-12
    )
    # convolve = correlate with the kernel reversed in space, with stride and dilation too
    np.testing.assert_allclose(
        convolve(x, k, b, stride=2, dilation=(2, 1), groups=2),
        correlate(x, k[::-1, ::-1], b, stride=2, dilation=(2, 1), groups=2),
        rtol=1e-12,
    )
    pads = ((1, 2), (2, 0))
    for mode, np_mode in [("zeros", "constant"), ("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")]:
        expected = correlate(np.pad(x, ((0, 0), *pads, (0, 0)), mode=np_mode), k, b, groups=2)
        np.testing.assert_allclose(correlate(x, k, b, padding=pads, padding_mode=mode, groups=2), expected, rtol=1e-12)
    np.testing.assert_allclose(
        correlate(x, k, b, padding=(1, 2), groups=2), correlate(x, k, b, padding=((1, 1), (2, 2)), groups=2), rtol=1e-12
    )


@pytest.mark.parametrize("n", [1, 2, 3])
def test_conv_transpose_is_the_adjoint_of_correlate(n):
    # <correlate(x, K), y> = <x, conv_transpose(y, K^T)> for zero padding: the transposed conv is the
    # adjoint linear map. output_padding restores the rows that the strided conv never reached.
    r = np.random.default_rng(3 + n)
    spatial = (7, 6, 5)[:n]
    ksize, stride, dilation, pad = (3, 2, 2)[:n], (2, 3, 1)[:n], (1, 2, 2)[:n], (1, 0, 1)[:n]
    groups, cig, cog = 2, 2, 3
    x = r.standard_normal((2, *spatial, cig * groups))
    k = r.standard_normal((*ksize, cig, cog * groups))
    y_shape = correlate(x, k, stride=stride, padding=pad, dilation=dilation, groups=groups).shape
    y = r.standard_normal(y_shape)
    out_pad = tuple((i + 2 * p - d * (kk - 1) - 1) % s for i, p, d, kk, s in zip(spatial, pad, dilation, ksize, stride))
    # (*K, C_in/G, G·C_out/G) → (*K, G·C_out/G, C_in/G): entry [g·cog + j, i] = k[i, g·cog + j]
    kt = np.moveaxis(k.reshape(*ksize, cig, groups, cog), n, n + 2).reshape(*ksize, groups * cog, cig)
    back = conv_transpose(y, kt, stride=stride, padding=pad, output_padding=out_pad, dilation=dilation, groups=groups)
    assert back.shape == x.shape
    lhs = np.sum(correlate(x, k, stride=stride, padding=pad, dilation=dilation, groups=groups) * y)
    np.testing.assert_allclose(lhs, np.sum(x * back), rtol=1e-12)


def test_conv_transpose_scatter_by_hand():
    # 1-D, stride 2, kernel [1, 10, 100]: input [1, 2] scatters to [1, 10, 100+2, 20, 200].
    x = np.array([1.0, 2.0])[None, :, None]
    k = np.array([1.0, 10.0, 100.0])[:, None, None]
    np.testing.assert_array_equal(conv_transpose(x, k, stride=2)[0, :, 0], [1, 10, 102, 20, 200])
    np.testing.assert_array_equal(conv_transpose(x, k, stride=2, padding=1)[0, :, 0], [10, 102, 20])
    np.testing.assert_array_equal(
        conv_transpose(x, k, stride=2, padding=1, output_padding=1)[0, :, 0], [10, 102, 20, 200]
    )
    np.testing.assert_array_equal(
        conv_transpose(x, k, np.array([0.5]), stride=2, padding=((0, 2),))[0, :, 0], [1.5, 10.5, 102.5]
    )
