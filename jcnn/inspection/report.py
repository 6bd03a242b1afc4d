"""``jcnn inspect``: the seed's step-by-step picture of a CNN, for one image of your own.

:func:`forward_report` runs a trained classifier on one image with :func:`jcnn.intermediates` and writes
one PNG per stage — the input, then every convolution, pooling, normalization and activation layer in
the order the model runs them (its first channels as images, or its values as bars once the maps are
flat), each with its path, kind, output shape and a histogram of its values — then the class
probabilities, and ``index.html`` that lays the figures out in that order. matplotlib (the ``train``
extra) draws them on the Agg canvas.
"""

from __future__ import annotations

import html
import json
import os
from typing import Any, NamedTuple

import numpy as np

from jcnn.layers.structure import walk
from jcnn.training.plots import _figure, _grid, _normalize, _save

STAGE_KINDS = frozenset(
    {
        "Conv",
        "ConvTranspose",
        "MaxPool",
        "AvgPool",
        "LPPool",
        "AdaptiveAvgPool",
        "AdaptiveMaxPool",
        "GlobalAvgPool",
        "GlobalMaxPool",
        "BatchNorm",
        "LayerNorm",
        "InstanceNorm",
        "GroupNorm",
        "LocalResponseNorm",
        "LocalContrastNorm",
        "Relu",
        "Relu6",
        "LeakyRelu",
        "PRelu",
        "Elu",
        "Gelu",
        "Silu",
        "Sigmoid",
        "Tanh",
        "HardTanh",
        "Softplus",
        "Hardswish",
        "Hardsigmoid",
    }
)
"""The layer kinds drawn as stages (the convolution, pooling, normalization and activation steps);
others (``Dense``, ``Flatten``, ``Dropout``, ...) are not."""


class Stage(NamedTuple):
    """One figure of the report: the layer's ``path`` and ``kind``, its output ``shape`` (batch 1),
    the PNG's file name and the value range."""

    index: int  # type: ignore[assignment]  # shadows tuple.index (fine at run time); the name is the stages.json key
    path: str
    kind: str
    shape: tuple[int, ...]
    image: str
    minimum: float
    maximum: float


def stage_paths(model: Any) -> list[tuple[str, str]]:
    """``(path, kind)`` of the layers shown as stages, in the order of the model's declared tree."""
    seen: dict[str, str] = {}
    for node in walk(model):
        if node.is_leaf and node.path and node.layer.kind in STAGE_KINDS:
            seen.setdefault(node.path, node.layer.kind)
    return list(seen.items())


def _plot_maps(values: np.ndarray, title: str, path: str, channels: int) -> None:
    """First ``channels`` maps of ``(H, W, C)`` (or the values of a flat ``(F,)``) and a histogram."""
    fig = _figure(10, 4.2)
    grid = fig.add_gridspec(1, 2, width_ratios=(3, 1.3))
    if values.ndim == 3:
        k = min(channels, values.shape[-1])
        rows, cols = _grid(k)
        sub = grid[0, 0].subgridspec(rows, cols, wspace=0.05, hspace=0.25)
        for i in range(rows * cols):
            ax = fig.add_subplot(sub[i // cols, i % cols])
            ax.set_axis_off()
            if i < k:
                ax.imshow(_normalize(values[..., i]), cmap="viridis", interpolation="nearest")
                ax.set_title(str(i), fontsize=7)
    else:
        flat = values.reshape(-1)
        ax = fig.add_subplot(grid[0, 0])
        shown = flat[: max(channels * 4, 64)]
        ax.bar(np.arange(shown.size), shown, width=1.0)
        ax.set_xlabel(f"feature (first {shown.size} of {flat.size})")
    hist = fig.add_subplot(grid[0, 1])
    hist.hist(values.reshape(-1), bins=40, color="tab:gray")
    hist.set_title("values", fontsize=9)
    hist.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def _plot_input(image: np.ndarray, title: str, path: str) -> None:
    fig = _figure(8, 4)
    ax, hist = fig.subplots(1, 2, width_ratios=(1.6, 1))
    shown = image if image.shape[-1] == 3 else image.mean(axis=-1)
    ax.imshow(_normalize(shown), cmap=None if image.shape[-1] == 3 else "gray", interpolation="nearest")
    ax.set_axis_off()
    hist.hist(image.reshape(-1), bins=40, color="tab:gray")
    hist.set_title("values (as fed to the network)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def _plot_probabilities(top: list[dict[str, Any]], path: str) -> None:
    fig = _figure(8, 0.45 * len(top) + 1.2)
    ax = fig.subplots()
    ax.barh([t["class"] for t in top][::-1], [t["probability"] for t in top][::-1], color="tab:blue")
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability")
    fig.suptitle("output: class probabilities (softmax of the logits)", fontsize=10)
    _save(fig, path)


def forward_report(
    classifier: Any,
    image_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    channels: int = 16,
    top_k: int = 5,
) -> str:
    """Write the stage figures and ``index.html`` for ``image_path`` into ``out_dir``; return the page's path.

    ``classifier`` is :func:`jcnn.serving.inference.load_classifier`'s result; ``channels`` feature maps are shown
    per stage. ``out_dir/stages.json`` lists the stages (path, kind, shape, image, value range).
    """
    import jax

    from jcnn.inspection.intermediates import intermediates
    from jcnn.serving.inference import preprocess
    from jcnn.serving.inference import top_k as best

    if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
        raise ValueError(f"forward_report: channels must be an int >= 1, got {channels!r}")
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    x = preprocess(classifier, [image_path])
    wanted = stage_paths(classifier.model)
    run = jax.jit(lambda p, s, v: intermediates(classifier.model, p, s, v, select=[p_ for p_, _ in wanted] or None))
    logits, acts = run(classifier.params, classifier.state, x)
    stages = []
    name = "stage_00_input.png"
    _plot_input(
        np.asarray(x[0]),
        f"input {os.path.basename(os.fspath(image_path))}: shape {tuple(x.shape[1:])} (H, W, C)",
        os.path.join(out_dir, name),
    )
    stages.append(Stage(0, "input", "input", tuple(x.shape[1:]), name, float(x.min()), float(x.max())))
    for i, (path, kind) in enumerate(wanted, start=1):
        values = np.asarray(acts[path])[0]
        name = f"stage_{i:02d}_{path.replace('.', '-')}.png"
        _plot_maps(values, f"{i}. {path} ({kind}): output {tuple(values.shape)}", os.path.join(out_dir, name), channels)
        stages.append(Stage(i, path, kind, tuple(values.shape), name, float(values.min()), float(values.max())))
    top = best(np.asarray(logits), min(top_k, logits.shape[-1]), classifier.class_names)[0]
    _plot_probabilities(top, os.path.join(out_dir, "output.png"))
    with open(os.path.join(out_dir, "stages.json"), "w") as f:
        json.dump({"image": os.fspath(image_path), "stages": [s._asdict() for s in stages], "top_k": top}, f, indent=1)
    page = os.path.join(out_dir, "index.html")
    with open(page, "w", encoding="utf-8") as f:
        f.write(_html(os.fspath(image_path), stages, top))
    return page


def _html(image: str, stages: list[Stage], top: list[dict[str, Any]]) -> str:
    esc = html.escape
    items = "\n".join(
        f'<figure id="stage-{s.index}" data-path="{esc(s.path)}" data-kind="{esc(s.kind)}">'
        f'<img src="{esc(s.image)}" alt="{esc(s.path)}">'
        f"<figcaption>{s.index}. <b>{esc(s.path)}</b> {esc(s.kind)} &middot; shape {esc(str(s.shape))} &middot; "
        f"values [{s.minimum:.3g}, {s.maximum:.3g}]</figcaption></figure>"
        for s in stages
    )
    best = esc(f"{top[0]['class']} ({top[0]['probability']:.3f})") if top else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>jcnn inspect: {esc(os.path.basename(image))}</title>
<style>body{{font-family:sans-serif;max-width:1040px;margin:1em auto}}figure{{margin:0 0 1.5em}}
img{{max-width:100%;border:1px solid #ddd}}figcaption{{color:#333;font-size:0.9em}}</style></head>
<body><h1>Every step of the network for {esc(image)}</h1>
<p>{len(stages) - 1} stages (convolution, pooling, normalization, activation), in the order the model
runs them; then the output. Predicted: <b>{best}</b>.</p>
{items}
<figure id="output"><img src="output.png" alt="output"><figcaption>output: class probabilities</figcaption></figure>
</body></html>
"""


__all__ = ["forward_report", "stage_paths", "Stage", "STAGE_KINDS"]
