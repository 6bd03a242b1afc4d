"""A trained run as a classifier: load a checkpoint written by ``jcnn train`` (or ``fit`` with a zoo
model in its config), feed image files through the run's own input pipeline, return the top classes.

The input pipeline is rebuilt from the run's config: the model's input ``(H, W, C)``, the colour and
resize mode, and the normalisation ``(u8 / 255 − mean) / std`` computed when the run was trained
(:func:`jcnn.data.load_image`, :func:`jcnn.data.normalize_pixels`). Runs on the built-in data sets
(no ``color``/``resize``/``normalize`` in their config) stretch the image to the input size, take its
colour from the channel count, and feed ``u8 / 255``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from jcnn._types import Params, State
from jcnn.layers.base import Layer


class Classifier(NamedTuple):
    """A model with its trained ``params``/``state`` and the run's input pipeline and class names."""

    model: Layer
    params: Params
    state: State
    input_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    color: str
    resize: str
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    config: dict[str, Any]


def run_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``config`` that ``fit`` stored in the checkpoint ``path`` (reads only the header)."""
    from jcnn.training import checkpoint

    meta = checkpoint.load_metadata(path)
    config = (meta.get("fit") or {}).get("config") if isinstance(meta, dict) else None
    if not isinstance(config, dict) or "input_shape" not in config:
        raise ValueError(
            f"{os.fspath(path)}: not a checkpoint written by jcnn train / jcnn.training.train.fit "
            "(its metadata has no fit config with an input_shape)"
        )
    return config


def _class_names(config: dict[str, Any]) -> tuple[str, ...]:
    from jcnn.data import CLASS_NAMES

    k = int(config["num_classes"])
    names = config.get("class_names") or CLASS_NAMES.get(config.get("dataset", ""))
    if names is None or len(names) != k:
        names = [str(i) for i in range(k)]
    return tuple(str(n) for n in names)


def _restore(path: str, model: Layer, input_shape: tuple[int, ...]) -> tuple[Params, State]:
    """The ``params`` and ``state`` of a TrainState checkpoint, checked against ``model``'s own shapes."""
    from jcnn.training import checkpoint

    template = dict(
        zip(
            ("params", "state"),
            jax.eval_shape(lambda key: model.init(key, (1, *input_shape))[1:], jax.random.PRNGKey(0)),
        )
    )
    tree, _ = checkpoint.restore(path)
    leaves, problems = [], []
    for name, spec in zip(checkpoint.tensor_names(template), jax.tree_util.tree_leaves(template)):
        node: Any = tree
        for part in name.split("/"):
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, np.ndarray):
            problems.append(f"{name}: missing in the file")
        elif node.shape != spec.shape or node.dtype != spec.dtype:
            problems.append(
                f"{name}: {node.dtype}{list(node.shape)} in the file, {spec.dtype}{list(spec.shape)} for the model"
            )
        leaves.append(node)
    if problems:
        raise checkpoint.CheckpointMismatchError(
            f"checkpoint {path!r} does not hold this model's parameters ({len(problems)} difference(s)):\n  "
            + "\n  ".join(problems)
        )
    rebuilt = jax.tree_util.tree_unflatten(
        jax.tree_util.tree_structure(template), [jax.numpy.asarray(a) for a in leaves]
    )
    return rebuilt["params"], rebuilt["state"]


@functools.lru_cache(maxsize=8)
def _zoo_model(name: str, num_classes: int, channels: int) -> Layer:
    # One Layer value per configuration: a process that loads runs again reuses the compiled forward.
    from jcnn.models import get_model

    return get_model(name, num_classes=num_classes, in_channels=channels)


def load_classifier(path: str | os.PathLike[str], *, model: Layer | None = None) -> Classifier:
    """Rebuild the classifier of the run whose checkpoint is ``path``.

    ``model``: the ``Layer`` that was trained; by default the zoo model named in the run's config,
    built for its classes and channels. Raises ``ValueError`` for a file that is not such a checkpoint
    and :class:`jcnn.training.checkpoint.CheckpointMismatchError` when its tensors do not fit the model.
    """
    from jcnn.data.images import check_color, check_resize
    from jcnn.models import MODELS

    path = os.fspath(path)
    config = run_config(path)
    h, w, c = (int(d) for d in config["input_shape"])
    if model is None:
        name = config.get("model")
        if name not in MODELS:
            raise ValueError(f"{path}: the run's model {name!r} is not a zoo model; pass model= to load it")
        model = _zoo_model(name, int(config["num_classes"]), c)
    color = config.get("color") or ("grayscale" if c == 1 else "rgb")
    if check_color(color)[1] != c:
        raise ValueError(f"{path}: color {color!r} does not give the model's {c} input channels")
    resize = check_resize(config.get("resize") or "stretch")
    norm = config.get("normalize")
    mean = tuple(float(v) for v in norm["mean"]) if norm else None
    std = tuple(float(v) for v in norm["std"]) if norm else None
    params, state = _restore(path, model, (h, w, c))
    return Classifier(model, params, state, (h, w, c), _class_names(config), color, resize, mean, std, config)


def preprocess(clf: Classifier, paths: Sequence[str | os.PathLike[str]]) -> np.ndarray:
    """The network's input ``(N, H, W, C)`` float32 for image files, as the run's training fed it.

    Raises :class:`jcnn.data.ImageDecodeError` naming every file that cannot be read.
    """
    from jcnn.data.base import DatasetFormatError
    from jcnn.data.images import ImageDecodeError, load_image, normalize_pixels

    h, w, _ = clf.input_shape
    images, bad = [], []
    for p in paths:
        try:
            images.append(load_image(p, (h, w), color=clf.color, resize=clf.resize))
        except ImageDecodeError as exc:
            bad.append(exc)
    if len(bad) == 1:
        raise bad[0]
    if bad:
        raise DatasetFormatError(f"{len(bad)} images cannot be read: " + "; ".join(str(e) for e in bad))
    return normalize_pixels(np.stack(images), clf.mean, clf.std)


def logits(clf: Classifier, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """``model.apply(params, state, images, train=False)`` as NumPy ``(N, classes)``, in batches."""
    from jcnn.training.train import predict

    return predict(clf.model, clf.params, clf.state, images, batch_size=batch_size)


def top_k(scores: np.ndarray, k: int, class_names: Sequence[str]) -> list[list[dict[str, Any]]]:
    """Per row of logits ``(N, K)``: the ``k`` most probable classes (softmax in float64), best first,
    as ``{"index", "class", "probability"}``; ties go to the lower index."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"top_k: k must be an int >= 1, got {k!r}")
    z = np.asarray(scores, np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    probs = z / z.sum(axis=1, keepdims=True)
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [
        [{"index": int(i), "class": class_names[i], "probability": float(p[i])} for i in row]
        for row, p in zip(order, probs)
    ]


def classify(
    clf: Classifier, paths: Sequence[str | os.PathLike[str]], *, k: int = 5, batch_size: int = 64
) -> list[dict[str, Any]]:
    """``[{"image": path, "top_k": [...]}]`` for image files: :func:`preprocess`, :func:`logits`,
    :func:`top_k` (``k`` capped at the number of classes)."""
    scores = logits(clf, preprocess(clf, paths), batch_size=batch_size)
    best = top_k(scores, min(k, scores.shape[1]), clf.class_names)
    return [{"image": os.fspath(p), "top_k": t} for p, t in zip(paths, best)]
