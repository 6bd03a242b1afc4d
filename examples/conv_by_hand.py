"""Convolution (docs/convolution.md) computed by hand from the formula, against ``jcnn.ops.conv``.

    cross-correlation (what a CNN layer computes; jcnn's default):  O[i,j] = Σ_m Σ_n I[i+m, j+n]·K[m,n] + B
    true convolution (the kernel flipped; ``flip=True``):            O[i,j] = Σ_m Σ_n I[i−m, j−n]·K[m,n] + B

Run: ``python examples/conv_by_hand.py [--out DIR] [--quick]``; writes ``conv_by_hand.png``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
from _util import figure, parse_args, save, show_matrix

import jcnn

# The worked example of docs/convolution.md: a 4x4 input, a 3x3 filter and a bias of 3.
IMAGE = np.array([[1, 2, 3, 0], [0, 1, 2, 3], [3, 0, 1, 2], [2, 3, 0, 1]], dtype=np.float32)
KERNEL = np.array([[2, 0, 1], [0, 1, 2], [1, 0, 2]], dtype=np.float32)
BIAS = 3.0


def correlate_by_hand(image: np.ndarray, kernel: np.ndarray, bias: float = 0.0) -> np.ndarray:
    """``O[i,j] = Σ_m Σ_n I[i+m, j+n]·K[m,n] + B`` over the valid positions, with plain loops."""
    kh, kw = kernel.shape
    out = np.zeros((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            for m in range(kh):
                for n in range(kw):
                    out[i, j] += image[i + m, j + n] * kernel[m, n]
    return out + bias


def convolve_by_hand(image: np.ndarray, kernel: np.ndarray, bias: float = 0.0) -> np.ndarray:
    """``O[i,j] = Σ_m Σ_n I[i−m, j−n]·K[m,n] + B``, for every ``(i, j)`` where all ``I[i−m, j−n]`` exist
    (``i ≥ K_h − 1``), stored from index 0."""
    kh, kw = kernel.shape
    out = np.zeros((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
    for i in range(kh - 1, image.shape[0]):
        for j in range(kw - 1, image.shape[1]):
            for m in range(kh):
                for n in range(kw):
                    out[i - kh + 1, j - kw + 1] += image[i - m, j - n] * kernel[m, n]
    return out + bias


def jcnn_conv(image: np.ndarray, kernel: np.ndarray, bias: float, *, flip: bool) -> np.ndarray:
    """One channel in, one out: the image ``(H, W)`` as NHWC ``(1, H, W, 1)``, the kernel ``(kh, kw)`` as
    HWIO ``(kh, kw, 1, 1)``."""
    y = jcnn.ops.conv(image[None, :, :, None], kernel[:, :, None, None], np.array([bias], np.float32), flip=flip)
    return np.asarray(y)[0, :, :, 0]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args("conv_by_hand", __doc__.splitlines()[0], argv)
    rows = []
    for flip, by_hand in ((False, correlate_by_hand), (True, convolve_by_hand)):
        hand = by_hand(IMAGE, KERNEL, BIAS)
        lib = jcnn_conv(IMAGE, KERNEL, BIAS, flip=flip)
        print(f"flip={flip}: by hand {hand.tolist()}  jcnn.ops.conv {lib.tolist()}")
        assert np.allclose(hand, lib), (hand, lib)
        rows.append((flip, hand, lib))
    assert np.array_equal(rows[0][1], [[18, 19], [9, 18]])  # the textbook's answer: 15, 16, 6, 15 plus B = 3

    # The same agreement on a larger random case (a flip is the correlation with K[::-1, ::-1]).
    rng = np.random.default_rng(0)
    size = 12 if args.quick else 28
    image, kernel = rng.normal(size=(size, size)).astype(np.float32), rng.normal(size=(5, 5)).astype(np.float32)
    for flip, by_hand in ((False, correlate_by_hand), (True, convolve_by_hand)):
        err = np.abs(by_hand(image, kernel) - jcnn_conv(image, kernel, 0.0, flip=flip)).max()
        print(f"random {size}x{size} * 5x5, flip={flip}: max |by hand - jcnn| = {err:.2e}")
        assert err < 1e-4
    assert np.allclose(convolve_by_hand(image, kernel), correlate_by_hand(image, kernel[::-1, ::-1]), atol=1e-4)

    fig = figure(12, 6)
    axes = fig.subplots(2, 4)
    for ax_row, (flip, hand, lib) in zip(axes, rows):
        name = "convolution I[i−m, j−n]" if flip else "cross-correlation I[i+m, j+n]"
        show_matrix(ax_row[0], IMAGE, "input I")
        show_matrix(
            ax_row[1],
            KERNEL[::-1, ::-1] if flip else KERNEL,
            "K flipped (what slides)" if flip else "K (what slides)",
            cmap="Oranges",
        )
        show_matrix(ax_row[2], hand, f"by hand: {name} + {BIAS:g}")
        show_matrix(ax_row[3], lib, f"jcnn.ops.conv(flip={flip})")
    fig.suptitle("Convolution: O = Σ I·K + B by hand and with jcnn.ops.conv")
    save(fig, args.out, "conv_by_hand.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
