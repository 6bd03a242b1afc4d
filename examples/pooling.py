"""Max and average pooling (2×2 windows, stride 2), by hand and with ``jcnn.ops``; see docs/pooling.md.

Run: ``python examples/pooling.py [--out DIR] [--quick]``; writes ``pooling.png``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
from _util import figure, parse_args, save, show_matrix

import jcnn

# The 2x2 max-pooling example of docs/pooling.md.
X = np.array([[1, 2, 1, 0], [0, 1, 2, 3], [3, 0, 1, 2], [2, 4, 0, 1]], dtype=np.float32)


def pool_by_hand(x: np.ndarray, window: int, reduce) -> np.ndarray:
    """``O[i,j] = reduce(x[w·i : w·i + w, w·j : w·j + w])`` (stride = window)."""
    h, w = x.shape[0] // window, x.shape[1] // window
    return np.array(
        [
            [reduce(x[window * i : window * i + window, window * j : window * j + window]) for j in range(w)]
            for i in range(h)
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args("pooling", __doc__.splitlines()[0], argv)
    nhwc = X[None, :, :, None]
    max_lib = np.asarray(jcnn.ops.max_pool(nhwc, 2))[0, :, :, 0]
    avg_lib = np.asarray(jcnn.ops.avg_pool(nhwc, 2))[0, :, :, 0]
    assert np.array_equal(max_lib, pool_by_hand(X, 2, np.max)) and np.array_equal(max_lib, [[2, 3], [4, 2]])
    assert np.allclose(avg_lib, pool_by_hand(X, 2, np.mean))
    print(f"max pool {max_lib.tolist()}, average pool {avg_lib.tolist()}")

    digit = jcnn.data.load_digits().test_images[0]  # (8, 8, 1)
    pooled = [
        (name, np.asarray(fn(digit[None], 2))[0, :, :, 0])
        for name, fn in (("max", jcnn.ops.max_pool), ("average", jcnn.ops.avg_pool))
    ]

    fig = figure(12, 6)
    axes = fig.subplots(2, 3)
    show_matrix(axes[0, 0], X, "input")
    show_matrix(axes[0, 1], max_lib, "2×2 max pool")
    show_matrix(axes[0, 2], avg_lib, "2×2 average pool", fmt="{:.2f}")
    axes[1, 0].imshow(digit[:, :, 0], cmap="gray")
    axes[1, 0].set_title("a digit, 8×8", fontsize=9)
    for ax, (name, img) in zip(axes[1, 1:], pooled):
        ax.imshow(img, cmap="gray")
        ax.set_title(f"{name} pooled, 4×4", fontsize=9)
    for ax in axes[1]:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Pooling halves each spatial size: max keeps the strongest response, average smooths")
    save(fig, args.out, "pooling.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
