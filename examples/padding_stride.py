"""Padding and stride (docs/convolution.md), and the output-size formula ``O = (I + 2P − K)/S + 1``.

For each (P, S) the figure draws the zero-padded input and marks where the K×K window starts; the
title checks the formula (``jcnn.ops.output_size``) against the shape ``jcnn.ops.conv`` returns.

Run: ``python examples/padding_stride.py [--out DIR] [--quick]``; writes ``padding_stride.png``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
from _util import figure, parse_args, save

import jcnn


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args("padding_stride", __doc__.splitlines()[0], argv)
    size, k = 7, 3
    x = np.arange(1, size * size + 1, dtype=np.float32).reshape(1, size, size, 1) / (size * size)
    kernel = np.ones((k, k, 1, 1), np.float32)
    settings = [(p, s) for s in (1, 2) for p in (0, 1, 2)]
    if args.quick:
        settings = settings[::2]
    fig = figure(3.2 * 3, 3.4 * ((len(settings) + 2) // 3))
    axes = np.atleast_2d(fig.subplots((len(settings) + 2) // 3, 3)).ravel()
    print(f"I = {size}, K = {k}")
    for ax, (p, s) in zip(axes, settings):
        formula = (size + 2 * p - k) // s + 1
        o = jcnn.ops.output_size(size, k, stride=s, padding=p)
        y = np.asarray(jcnn.ops.conv(x, kernel, stride=s, padding=p))
        assert o == formula == y.shape[1] == y.shape[2], (p, s, o, formula, y.shape)
        print(f"P = {p}, S = {s}: O = ({size} + 2*{p} - {k})/{s} + 1 = {o}; jcnn.ops.conv gives {y.shape[1:3]}")
        padded = np.pad(x[0, :, :, 0], p)
        ax.imshow(padded, cmap="Greys", vmin=-0.3, vmax=1.3)
        if p:
            ax.add_patch(_rect(p - 0.5, p - 0.5, size, size, "tab:blue"))
        starts = np.arange(o) * s
        for i in starts:
            for j in starts:
                ax.plot(j + (k - 1) / 2, i + (k - 1) / 2, "o", color="tab:red", ms=4)
        ax.add_patch(_rect(-0.5, -0.5, k, k, "tab:red"))
        ax.set_title(f"P={p}, S={s}: O=({size}+2·{p}−{k})/{s}+1={o}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(settings) :]:
        ax.set_axis_off()
    fig.suptitle(f"{size}×{size} input (blue: unpadded area), {k}×{k} window (red), dots: window centres")
    save(fig, args.out, "padding_stride.png")
    return 0


def _rect(x0: float, y0: float, w: float, h: float, color: str):
    from matplotlib.patches import Rectangle

    return Rectangle((x0, y0), w, h, fill=False, edgecolor=color, linewidth=2)


if __name__ == "__main__":
    sys.exit(main())
