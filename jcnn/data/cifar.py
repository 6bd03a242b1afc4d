"""CIFAR-10 from the local "python version" batches, never downloaded.

The directory (or its ``cifar-10-batches-py`` subfolder, as the official tarball extracts) holds
``data_batch_1`` … ``data_batch_5`` and ``test_batch``: pickled dicts whose ``data`` is uint8
``(n, 3072)`` (1,024 red, then green, then blue values of a 32×32 image, row-major) and ``labels`` a
list of ``n`` ints in ``0..9``. The pickles are read by an unpickler that only admits NumPy's array
reconstruction, so a hostile file cannot run code.
"""

from __future__ import annotations

import importlib
import os
import pickle
from typing import Any

import numpy as np

from jcnn.data.base import (
    Dataset,
    DatasetFormatError,
    candidate_dirs,
    check_labels,
    find_file,
    not_found,
)

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
"""The training batches of the python version of CIFAR-10."""
TEST_FILE = "test_batch"
"""Its test batch."""
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
"""The ten CIFAR-10 classes, indexed by label."""
_SUBDIRS = ("cifar-10-batches-py", "cifar10", "cifar-10", "cifar10/cifar-10-batches-py")
_LAYOUT = (
    "download and extract the CIFAR-10 python version (cifar-10-python.tar.gz from "
    "https://www.cs.toronto.edu/~kriz/cifar.html) so that data_batch_1..data_batch_5 and test_batch lie "
    "in one directory."
)
# (module, name) pairs a CIFAR pickle may reference: bytes decoding and NumPy array rebuilding.
_ALLOWED = {
    ("_codecs", "encode"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        canonical = module.replace("numpy._core", "numpy.core")
        if (canonical, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only NumPy arrays are allowed)")
        for candidate in (canonical.replace("numpy.core", "numpy._core"), canonical):
            try:
                return getattr(importlib.import_module(candidate), name)
            except (ImportError, AttributeError):
                continue
        raise pickle.UnpicklingError(f"cannot find {module}.{name} in this NumPy")


def read_batch(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch file → images uint8 ``(n, 32, 32, 3)`` and labels int32 ``(n,)``."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise DatasetFormatError(f"{path}: not a CIFAR-10 python batch (unpickling failed: {exc})") from exc
    if not isinstance(batch, dict):
        raise DatasetFormatError(f"{path}: expected a pickled dict, got {type(batch).__name__}")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise DatasetFormatError(f"{path}: expected the keys 'data' and 'labels', got {sorted(map(str, batch))}")
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DatasetFormatError(f"{path}: 'data' must be a uint8 array of shape (n, 3072), got {got}")
    labels = np.asarray(batch["labels"])
    if labels.ndim != 1 or labels.shape[0] != data.shape[0] or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetFormatError(
            f"{path}: 'labels' must be {data.shape[0]} integers (one per image), got {labels.dtype} {labels.shape}"
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, check_labels(path, labels, 10)


def _read_all(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    parts = [read_batch(p) for p in paths]
    images = np.concatenate([p[0] for p in parts]).astype(np.float32) / 255.0
    return images, np.concatenate([p[1] for p in parts])


def load_cifar10(data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """CIFAR-10: images ``(N, 32, 32, 3)`` float32 = pixel / 255 (RGB), labels int32, 10 classes."""
    dirs = candidate_dirs("cifar10", data_dir, _SUBDIRS)
    # All six files must come from one directory: mixing two copies would be silently wrong.
    for d in dirs:
        if find_file([d], [TEST_FILE, *TRAIN_FILES]) is not None:
            dirs = [d]
            break
    paths = []
    for name in (*TRAIN_FILES, TEST_FILE):
        path = find_file(dirs, [name])
        if path is None:
            raise not_found("cifar10", name, dirs, _LAYOUT)
        paths.append(path)
    train_x, train_y = _read_all(paths[:-1])
    test_x, test_y = _read_all(paths[-1:])
    return Dataset(train_x, train_y, test_x, test_y, 10, "cifar10")
