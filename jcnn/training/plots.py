"""PNG figures of a training run (matplotlib, Agg canvas; the ``train`` extra, imported lazily).

- :func:`plot_history`: loss and accuracy per epoch, train and test.
- :func:`plot_filters`: the first conv layer's kernels, one panel per output channel.
- :func:`plot_feature_maps`: one image and the first conv layer's output on it, one panel per channel
  (:func:`first_conv_output` reads that output by its path with :func:`jcnn.intermediates`).
- :func:`plot_confusion_matrix`: the counts ``C[true, predicted]`` and the overall accuracy.
- :func:`plot_ledger`: a training parity ledger (``jcnn verify --train``): relative error against step for
  each layer group, one panel per quantity, log scale.

Every function takes the output ``path``, creates its directory, and returns the path written.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from jcnn._types import Params, State
from jcnn.layers.base import Layer


def _figure(width: float, height: float) -> Any:
    """A figure on the Agg canvas, without pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike[str]) -> str:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    return path


def _grid(n: int) -> tuple[int, int]:
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def _normalize(a: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the array's own min and max (a constant array becomes 0.5)."""
    a = np.asarray(a, dtype=np.float64)
    lo, hi = float(a.min()), float(a.max())
    return np.full_like(a, 0.5) if hi - lo <= 0 else (a - lo) / (hi - lo)


def plot_history(history: Sequence[dict[str, Any]], path: str | os.PathLike[str], *, title: str = "") -> str:
    """Loss (left) and accuracy (right) against epoch for every ``train_*``/``test_*`` key present."""
    if not history:
        raise ValueError("plot_history: the history is empty; train at least one epoch")
    epochs = [r["epoch"] for r in history]
    fig = _figure(10, 4)
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for split, style in (("train", "-o"), ("test", "-s")):
            key = f"{split}_{metric}"
            if any(key in r for r in history):
                ax.plot(epochs, [r.get(key, math.nan) for r in history], style, ms=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_yscale("log")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def first_conv_kernel(params: Params) -> tuple[str, np.ndarray]:
    """The first conv kernel in ``params``, walking dicts in insertion order (the order ``init`` built
    them, i.e. the model's layer order): its ``/``-joined path and the array ``(*spatial, C_in/g, C_out)``.
    A conv kernel is a ``"kernel"`` leaf of rank >= 3."""
    found = _find_kernel(params, ())
    if found is None:
        raise ValueError("first_conv_kernel: the params hold no conv kernel (a 'kernel' leaf of rank >= 3)")
    return found


def _find_kernel(tree: Any, path: tuple[str, ...]) -> tuple[str, np.ndarray] | None:
    if isinstance(tree, dict):
        items: Any = tree.items()
    elif isinstance(tree, (tuple, list)):
        items = enumerate(tree)
    else:
        return None
    for name, child in items:
        here = path + (str(name),)
        if name == "kernel" and hasattr(child, "shape") and len(child.shape) >= 3:
            return "/".join(here), np.asarray(child)
        found = _find_kernel(child, here)
        if found is not None:
            return found
    return None


def plot_filters(kernel: Any, path: str | os.PathLike[str], *, title: str = "first conv layer filters") -> str:
    """One panel per output channel of a 2-D conv kernel ``(kh, kw, C_in, C_out)``: RGB when
    ``C_in == 3``, else the mean over input channels in grey (blue→red for signed weights)."""
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 4:
        raise ValueError(f"plot_filters: expected a 2-D conv kernel (kh, kw, C_in, C_out), got shape {k.shape}")
    c_out = k.shape[-1]
    rows, cols = _grid(c_out)
    fig = _figure(1.3 * cols + 0.5, 1.3 * rows + 0.6)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i >= c_out:
            continue
        w = k[..., i]
        if w.shape[-1] == 3:
            ax.imshow(_normalize(w), interpolation="nearest")
        else:
            m = w.mean(axis=-1)
            bound = float(np.abs(m).max()) or 1.0
            ax.imshow(m, cmap="bwr", vmin=-bound, vmax=bound, interpolation="nearest")
        ax.set_title(str(i), fontsize=8)
    fig.suptitle(f"{title} {tuple(k.shape)}")
    return _save(fig, path)


def first_conv_output(model: Layer, params: Params, state: State, images: Any) -> np.ndarray:
    """The output of the first ``Conv`` layer of ``model`` on ``images`` (eval mode; its bias added, before
    any activation): ``(N, *spatial_out, C_out)``, read with :func:`jcnn.intermediates` at that layer's
    path, so the layer's own stride, padding, dilation and lowering are used, whatever the batch size.
    """
    from jcnn.inspection.intermediates import intermediates
    from jcnn.layers.structure import walk

    path = next(
        (n.path for n in walk(model) if n.is_leaf and n.layer.kind in ("Conv", "ConvTranspose") and n.path), None
    )
    if path is None:
        raise ValueError(
            f"first_conv_output: the model has no Conv layer (its layers: "
            f"{sorted({n.layer.kind for n in walk(model)})})"
        )
    # jitted: one compile, and the layers after the first conv are not computed (eagerly, every op of the
    # whole model compiled and ran: 4 s of a small CLI run's figures)
    first = jax.jit(lambda p, s, x: intermediates(model, p, s, x, select=path)[1][path])
    return np.asarray(first(params, state, images))


def plot_feature_maps(
    image: Any, maps: Any, path: str | os.PathLike[str], *, title: str = "first conv layer feature maps"
) -> str:
    """The input ``image (H, W, C)`` next to each channel of ``maps (h, w, K)``, each panel scaled to its
    own min–max (so a per-channel bias does not change the picture)."""
    image, maps = np.asarray(image, dtype=np.float64), np.asarray(maps, dtype=np.float64)
    if image.ndim != 3 or maps.ndim != 3:
        raise ValueError(
            f"plot_feature_maps: expected image (H, W, C) and maps (h, w, K), got {image.shape} and {maps.shape}"
        )
    k = maps.shape[-1]
    rows, cols = _grid(k + 1)
    fig = _figure(1.5 * cols + 0.5, 1.5 * rows + 0.6)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes:
        ax.set_axis_off()
    shown = image if image.shape[-1] == 3 else image.mean(axis=-1)
    axes[0].imshow(_normalize(shown), cmap=None if image.shape[-1] == 3 else "gray", interpolation="nearest")
    axes[0].set_title("input", fontsize=8)
    for i in range(k):
        axes[i + 1].imshow(_normalize(maps[..., i]), cmap="viridis", interpolation="nearest")
        axes[i + 1].set_title(str(i), fontsize=8)
    fig.suptitle(f"{title} {tuple(maps.shape)}")
    return _save(fig, path)


def confusion_matrix(labels: Any, predictions: Any, num_classes: int) -> np.ndarray:
    """``C[i, j]`` = number of examples of true class ``i`` predicted as ``j``; ``(num_classes, num_classes)``
    int64. ``predictions`` may be class indices ``(N,)`` or scores ``(N, num_classes)`` (argmax)."""
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    if predictions.ndim == 2:
        predictions = predictions.argmax(axis=-1)
    if labels.shape != predictions.shape or labels.ndim != 1:
        raise ValueError(
            f"confusion_matrix: expected labels (N,) and predictions (N,) or (N, K), got {labels.shape} "
            f"and {np.asarray(predictions).shape}"
        )
    for name, a in (("labels", labels), ("predictions", predictions)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(
                f"confusion_matrix: {name} must lie in [0, {num_classes}), got range [{a.min()}, {a.max()}]"
            )
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels.astype(np.int64), predictions.astype(np.int64)), 1)
    return cm


def plot_confusion_matrix(
    cm: Any, path: str | os.PathLike[str], *, class_names: Sequence[str] | None = None, title: str = "confusion matrix"
) -> str:
    """Heat map of ``cm[true, predicted]`` with the counts written in each cell."""
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"plot_confusion_matrix: expected a square matrix, got shape {cm.shape}")
    n = cm.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    if len(names) != n:
        raise ValueError(f"plot_confusion_matrix: got {len(names)} class names for {n} classes")
    side = max(4.0, 0.45 * n + 2)
    fig = _figure(side + 1, side)
    ax = fig.subplots()
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax, shrink=0.8)
    if n <= 30:
        threshold = cm.max() / 2 if cm.size else 0
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    str(cm[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if cm[i, j] > threshold else "black",
                )
        ax.set_xticks(range(n), names, rotation=90 if max(map(len, names)) > 2 else 0)
        ax.set_yticks(range(n), names)
    total = cm.sum()
    accuracy = np.trace(cm) / total if total else math.nan
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title} (accuracy {accuracy:.4f}, {total} examples)")
    return _save(fig, path)


def layer_group(path: str, depth: int = 1) -> str:
    """The first ``depth`` components of a layer path (``"layer1.0.conv1"`` → ``"layer1"``); ``""`` (the
    model output, the loss) is ``"(model)"``."""
    return ".".join(path.split(".")[:depth]) if path else "(model)"


def plot_ledger(report: dict[str, Any], path: str | os.PathLike[str], *, title: str = "") -> str:
    """The ledger ``report`` (``jcnn.interop.ledger.ledger_json``: ``entries`` of ``step``, ``path``,
    ``quantity``, ``max_rel_err``; ``tolerance``; ``verdict``) as one log-scale panel per quantity: the
    worst relative error of each layer group against step, the tolerance dashed and the first divergence
    marked. Groups are the first path component, or the first two when that gives fewer than 3 groups
    (MobileNet's ``features.0`` … ``features.18``). Zero errors are drawn at 1e-18."""
    entries = report.get("entries") or []
    if not entries:
        raise ValueError("plot_ledger: the report has no entries; run at least one step")
    paths = {e["path"] for e in entries if e["path"]}
    depth = 1 if len({layer_group(p) for p in paths}) >= 3 else 2
    quantities = list(dict.fromkeys(e["quantity"] for e in entries))
    steps = sorted({e["step"] for e in entries})
    cols = min(3, len(quantities))
    rows = math.ceil(len(quantities) / cols)
    fig = _figure(5.0 * cols + 2.0, 3.4 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    verdict = report.get("verdict")
    tolerance = report.get("tolerance")
    groups = list(dict.fromkeys(layer_group(e["path"], depth) for e in entries))
    from matplotlib import colormaps
    from matplotlib.ticker import MaxNLocator

    cmap = colormaps["tab20" if len(groups) > 10 else "tab10"]
    color = {g: cmap(i % cmap.N) for i, g in enumerate(groups)}
    for ax, quantity in zip(axes, quantities):
        worst: dict[str, dict[int, float]] = {}
        for e in entries:
            if e["quantity"] != quantity:
                continue
            value = e["max_rel_err"]
            value = math.inf if value is None else max(float(value), 1e-18)
            cell = worst.setdefault(layer_group(e["path"], depth), {})
            cell[e["step"]] = max(cell.get(e["step"], 0.0), value)
        for group, by_step in worst.items():
            xs = [s for s in steps if s in by_step]
            ax.plot(xs, [by_step[s] for s in xs], "-o", ms=2.5, lw=1, color=color[group])
        if tolerance:
            ax.axhline(tolerance, color="k", ls="--", lw=0.8)
        if verdict and verdict.get("quantity") == quantity:
            ax.axvline(verdict["step"], color="r", lw=0.8, alpha=0.6)
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("step")
        ax.set_ylabel("max relative error")
        ax.set_title(quantity.replace("_", " "))
        ax.grid(alpha=0.3)
    for ax in axes[len(quantities) :]:
        ax.axis("off")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=color[g], marker="o", ms=2.5, lw=1) for g in groups]
    handles.append(Line2D([], [], color="k", ls="--", lw=0.8))
    fig.legend(handles, groups + ["tolerance"], loc="outside right upper", fontsize=7)
    if verdict:
        where = f"diverges at step {verdict['step']}, {verdict['path'] or '(model)'} {verdict['quantity']}"
    else:
        where = "every quantity within tolerance"
    fig.suptitle(f"{title or report.get('model', 'ledger')}: {where}")
    return _save(fig, path)
