"""Batch, layer and instance normalization (docs/normalization.md) side by side.

With a batch ``(N, H, W, C)`` the three differ only in which elements share one mean and variance:

    batch norm     (*, C, *)  per channel, over the batch and all positions
    layer norm     (N, *, *)  per sample, over all channels and positions
    instance norm  (N, C, *)  per sample and channel, over the positions

The figure shows, for the input and each output, the mean and standard deviation over the positions of
every (sample n, channel c) pair: batch norm zeroes each column's average, layer norm each row's,
instance norm every cell. Run: ``python examples/normalization.py [--out DIR] [--quick]``; writes
``normalization.png``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
from _util import figure, parse_args, save, show_matrix

import jcnn


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args("normalization", __doc__.splitlines()[0], argv)
    rng = np.random.default_rng(0)
    n, hw, c = (4, 4, 3) if args.quick else (6, 8, 5)
    # Every sample and every channel gets its own offset and scale, so the three methods differ visibly.
    offsets = rng.normal(0, 3, (n, 1, 1, 1)) + rng.normal(0, 3, (1, 1, 1, c))
    scales = rng.uniform(0.5, 3, (n, 1, 1, 1)) * rng.uniform(0.5, 3, (1, 1, 1, c))
    x = (offsets + scales * rng.normal(size=(n, hw, hw, c))).astype(np.float32)
    outputs = {
        "input": x,
        "batch norm (*, C, *)": np.asarray(jcnn.ops.batch_norm(x)[0]),
        "layer norm (N, *, *)": np.asarray(jcnn.ops.layer_norm(x)[0]),
        "instance norm (N, C, *)": np.asarray(jcnn.ops.instance_norm(x)[0]),
    }
    # The statistics each method fixes, computed from the outputs in float64.
    y = {k: v.astype(np.float64) for k, v in outputs.items()}
    assert np.allclose(y["batch norm (*, C, *)"].mean(axis=(0, 1, 2)), 0, atol=1e-5)
    assert np.allclose(y["batch norm (*, C, *)"].std(axis=(0, 1, 2)), 1, atol=1e-3)
    assert np.allclose(y["layer norm (N, *, *)"].mean(axis=(1, 2, 3)), 0, atol=1e-5)
    assert np.allclose(y["layer norm (N, *, *)"].std(axis=(1, 2, 3)), 1, atol=1e-3)
    assert np.allclose(y["instance norm (N, C, *)"].mean(axis=(1, 2)), 0, atol=1e-5)
    assert np.allclose(y["instance norm (N, C, *)"].std(axis=(1, 2)), 1, atol=1e-3)

    fig = figure(3.0 * len(outputs), 5.5)
    axes = fig.subplots(2, len(outputs))
    # One colour scale per row, so that "zero" and "one" look the same in every panel.
    mean_max = max(np.abs(out.mean(axis=(1, 2))).max() for out in y.values())
    std_max = max(out.std(axis=(1, 2)).max() for out in y.values())
    for col, (name, out) in enumerate(y.items()):
        means = np.round(out.mean(axis=(1, 2)), 1) + 0.0  # + 0.0 turns a rounded -0.0 into 0.0
        show_matrix(
            axes[0, col],
            means,
            f"{name}\nmean over positions [n, c]",
            fmt="{:.1f}",
            cmap="coolwarm",
            vmin=-mean_max,
            vmax=mean_max,
        )
        show_matrix(
            axes[1, col],
            out.std(axis=(1, 2)),
            "std over positions [n, c]",
            fmt="{:.1f}",
            cmap="viridis",
            vmin=0,
            vmax=std_max,
        )
        for ax in axes[:, col]:
            ax.set_ylabel("sample n")
            ax.set_xlabel("channel c")
    fig.suptitle(f"Normalization of a ({n}, {hw}, {hw}, {c}) batch: which elements share statistics")
    save(fig, args.out, "normalization.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
