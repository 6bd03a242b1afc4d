"""A trained classifier as a ``jax.export`` artifact: serialized StableHLO that runs without jcnn.

The exported function is the eval-mode forward with the run's normalisation in front and the trained
parameters and state baked in as constants::

    logits = model.apply(params, state, (pixels − mean) / std, train=False)    # float32 (b, classes)

for ``pixels`` float32 ``(b, H, W, C)`` = ``u8 / 255`` of images decoded as the run's config says, with
a symbolic batch ``b`` (``jax.export.symbolic_shape("b")``): one artifact serves every batch size. A
serving process needs jax, jaxlib and flatbuffers only: ``jax.export.deserialize(data).call(pixels)``.
Next to ``model.jax`` a ``model.jax.json`` describes the input (shape, colour, resize mode), the class
names and the platforms; ``docs/serving.md`` shows a server.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jcnn.serving.inference import Classifier

PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
"""The platforms an artifact can be lowered for (``jax.export``'s names)."""
SIDECAR_SUFFIX = ".json"
"""Appended to the artifact's path for its JSON description (``model.jax`` → ``model.jax.json``)."""


def check_platforms(platforms: str | Sequence[str]) -> tuple[str, ...]:
    """``"cpu,cuda"`` or a sequence of names → a tuple of distinct names from :data:`PLATFORMS`."""
    names = [p.strip().lower() for p in (platforms.split(",") if isinstance(platforms, str) else platforms)]
    bad = [p for p in names if p not in PLATFORMS]
    if bad or not names:
        raise ValueError(
            f"export: platforms must be a comma-separated list of {', '.join(PLATFORMS)}, got {platforms!r}"
        )
    return tuple(dict.fromkeys(names))


def forward_fn(clf: Classifier) -> Any:
    """``pixels (b, H, W, C) float32 in [0, 1] -> logits (b, classes) float32``: the normalisation and
    the eval-mode forward, closing over the parameters (so that export bakes them in)."""
    params = jax.tree_util.tree_map(jnp.asarray, clf.params)
    state = jax.tree_util.tree_map(jnp.asarray, clf.state)
    given = _normalization(clf)
    norm = None if given is None else (np.asarray(given[0], np.float32), np.asarray(given[1], np.float32))

    def forward(pixels: jax.Array) -> jax.Array:
        x = pixels if norm is None else (pixels - norm[0]) / norm[1]
        out: jax.Array = clf.model.apply(params, state, x, train=False)[0]
        return out.astype(jnp.float32)

    return forward


def _normalization(clf: Classifier) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The run's ``(mean, std)``, or None for a run fed ``u8 / 255``; a mean without a std is an error."""
    if clf.mean is None:
        return None
    if clf.std is None:
        raise ValueError("export: the classifier has a normalisation mean but no std")
    return clf.mean, clf.std


def export_classifier(clf: Classifier, *, platforms: str | Sequence[str] = ("cpu",)) -> Any:
    """The ``jax.export.Exported`` of :func:`forward_fn` for a float32 input ``(b, H, W, C)`` with a
    symbolic batch ``b >= 1``, lowered for each of ``platforms`` (one artifact; the caller's platform is
    picked when it runs)."""
    from jax import export

    platforms = check_platforms(platforms)
    (b,) = export.symbolic_shape("b")
    spec = jax.ShapeDtypeStruct((b, *clf.input_shape), jnp.float32)
    return export.export(jax.jit(forward_fn(clf)), platforms=platforms)(spec)


def describe(clf: Classifier, exported: Any, *, source: str | None = None) -> dict[str, Any]:
    """The sidecar ``model.jax.json``: what a serving process needs to feed the artifact and read it."""
    h, w, c = clf.input_shape
    norm = _normalization(clf)
    return {
        "format": "jax.export (StableHLO), jax.export.deserialize(bytes).call(pixels)",
        "input": {
            "shape": ["b", h, w, c],
            "dtype": "float32",
            "layout": "NHWC",
            "pixels": "u8 / 255 (normalisation is inside the artifact)",
            "color": clf.color,
            "resize": clf.resize,
        },
        "output": {"shape": ["b", len(clf.class_names)], "dtype": "float32", "meaning": "logits"},
        "class_names": list(clf.class_names),
        "normalize": None if norm is None else {"mean": list(norm[0]), "std": list(norm[1])},
        "platforms": list(exported.platforms),
        "calling_convention_version": int(exported.calling_convention_version),
        "jax_version": jax.__version__,
        "model": clf.config.get("model"),
        "checkpoint": source,
    }


def _write_atomic(path: str, data: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"export: directory {directory!r} does not exist (create it first)")
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def serialize(exported: Any) -> bytes:
    """``exported.serialize()``; a clear ``ImportError`` when jax's optional flatbuffers is missing."""
    try:
        importlib.import_module("flatbuffers")  # jax.export's serializer needs it and says so less plainly
    except ImportError as exc:
        raise ImportError(
            "writing a jax.export artifact needs the flatbuffers package; install it with "
            "`pip install 'jcnn[serve]'` (or `pip install flatbuffers`)"
        ) from exc
    return bytes(exported.serialize())


def export_checkpoint(
    checkpoint: str | os.PathLike[str], out: str | os.PathLike[str], *, platforms: str | Sequence[str] = ("cpu",)
) -> tuple[str, str, dict[str, Any]]:
    """Export the run whose checkpoint is ``checkpoint`` to ``out`` and ``out + ".json"`` (both written
    atomically); returns the two paths and the sidecar's content."""
    from jcnn.serving.inference import load_classifier

    clf = load_classifier(checkpoint)
    exported = export_classifier(clf, platforms=platforms)
    data = serialize(exported)
    out = os.fspath(out)
    info = describe(clf, exported, source=os.path.abspath(os.fspath(checkpoint)))
    info["bytes"] = len(data)
    sidecar = out + SIDECAR_SUFFIX
    _write_atomic(out, data)
    _write_atomic(sidecar, (json.dumps(info, indent=2) + "\n").encode("utf-8"))
    return out, sidecar, info
