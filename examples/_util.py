"""Shared plumbing of the example scripts: the command line and PNG output (matplotlib, Agg canvas)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any


def parse_args(name: str, description: str, argv: Sequence[str] | None) -> argparse.Namespace:
    """``--out DIR`` (default ``runs/examples/<name>``) and ``--quick`` (smaller sizes, for tests)."""
    parser = argparse.ArgumentParser(prog=f"examples/{name}.py", description=description)
    parser.add_argument(
        "--out", default=os.path.join("runs", "examples", name), help="directory for the figures (default: %(default)s)"
    )
    parser.add_argument("--quick", action="store_true", help="smaller problem sizes, for a fast check")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    return args


def figure(width: float, height: float) -> Any:
    """A matplotlib figure on the Agg canvas, without pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Any, out: str, filename: str) -> str:
    """Write ``fig`` to ``out/filename`` and print the path."""
    path = os.path.join(out, filename)
    fig.savefig(path)
    print(f"wrote {path}")
    return path


def show_matrix(
    ax: Any,
    a: Any,
    title: str,
    *,
    fmt: str = "{:.0f}",
    cmap: str = "Blues",
    vmin: float | None = None,
    vmax: float | None = None,
) -> None:
    """A small 2-D array as a heat map with each value written in its cell (white on dark colours)."""
    import numpy as np

    a = np.asarray(a, dtype=float)
    image = ax.imshow(a, cmap=cmap, vmin=vmin, vmax=vmax)
    if a.size <= 100:
        for (i, j), v in np.ndenumerate(a):
            r, g, b, _ = image.cmap(image.norm(v))
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
