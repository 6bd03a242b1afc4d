"""The embedded default data set: scikit-learn's handwritten digits (8×8, 1,797 images, 10 classes).

Read straight from the ``digits.csv.gz`` that scikit-learn ships inside its wheel (no download, and
scikit-learn itself is never imported). Each CSV row is 64 pixel intensities in ``0..16`` followed by
the label. The split is fixed: stratified, 20 % of each class (rounded) goes to test, chosen by a NumPy
generator seeded with ``seed`` (default 0) — 1,438 train / 359 test images.
"""

from __future__ import annotations

import gzip
import importlib.util
import os

import numpy as np

from jcnn.data.base import Dataset, DatasetFormatError, DatasetNotFoundError, check_labels

NUM_IMAGES = 1797
"""Images in scikit-learn's digits data set."""
NUM_CLASSES = 10
"""Its classes, the digits 0-9."""
_RELATIVE_PATH = ("datasets", "data", "digits.csv.gz")


def digits_file() -> str:
    """Path of scikit-learn's ``digits.csv.gz``, found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetNotFoundError(
            "digits: the embedded digits data set ships inside scikit-learn, which is not installed; "
            "install it with `pip install 'jcnn[train]'` (or `pip install scikit-learn`)"
        )
    for location in spec.submodule_search_locations:
        path = os.path.join(location, *_RELATIVE_PATH)
        if os.path.isfile(path):
            return path
    raise DatasetNotFoundError(
        f"digits: scikit-learn is installed but {os.path.join('sklearn', *_RELATIVE_PATH)!r} is missing "
        "from it; reinstall scikit-learn"
    )


def read_digits(path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits: images float32 ``(1797, 8, 8, 1)`` = pixel / 16 in ``[0, 1]``, labels int32 ``(1797,)``."""
    path = path or digits_file()
    try:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    except (OSError, EOFError, ValueError) as exc:
        raise DatasetFormatError(f"{path}: cannot read the digits CSV ({exc})") from exc
    if table.shape != (NUM_IMAGES, 65):
        raise DatasetFormatError(f"{path}: expected a (1797, 65) table of 64 pixels + label, got {table.shape}")
    images = (table[:, :64] / 16.0).astype(np.float32).reshape(NUM_IMAGES, 8, 8, 1)
    return images, check_labels(path, table[:, 64], NUM_CLASSES)


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train_idx, test_idx)``: ``round(test_fraction · n_c)`` random images of each class ``c`` to test."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"digits: test_fraction must lie in (0, 1), got {test_fraction!r}")
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        test.append(rng.permutation(idx)[: int(round(test_fraction * idx.size))])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(labels.size), test_idx)
    return train_idx, test_idx


def load_digits(*, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """The digits :class:`Dataset`: ``(N, 8, 8, 1)`` float32 in ``[0, 1]``, 10 classes, fixed seeded split."""
    images, labels = read_digits()
    train_idx, test_idx = stratified_split(labels, test_fraction, seed)
    return Dataset(images[train_idx], labels[train_idx], images[test_idx], labels[test_idx], NUM_CLASSES, "digits")
