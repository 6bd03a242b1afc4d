"""MNIST and Fashion-MNIST from local IDX files (gzip or raw), never downloaded.

IDX layout (big-endian): 2 zero bytes, a type byte (``0x08`` u8, ``0x09`` i8, ``0x0B`` i16, ``0x0C`` i32,
``0x0D`` f32, ``0x0E`` f64), a rank byte, ``rank`` u32 dims, then the data. The four standard files
``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte`` (each optionally ``.gz``; torchvision's ``MNIST/raw`` layout works too) hold
28×28 images with pixels ``0..255`` and labels ``0..9``.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
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

_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# Where else people keep these files under the data directory (plain, then torchvision's layout).
_SUBDIRS = {
    "mnist": ("mnist", "MNIST/raw", "MNIST"),
    "fashion-mnist": ("fashion-mnist", "fashion_mnist", "FashionMNIST/raw", "FashionMNIST"),
}
_SOURCES = {
    "mnist": "the four MNIST IDX files (from http://yann.lecun.com/exdb/mnist/ or any mirror)",
    "fashion-mnist": "the four Fashion-MNIST IDX files (from https://github.com/zalandoresearch/fashion-mnist)",
}


def _file_names(stem: str) -> list[str]:
    # "train-images.idx3-ubyte" is the spelling of some redistributions (e.g. Kaggle's).
    dotted = stem.replace("-idx", ".idx")
    return [stem, stem + ".gz", dotted, dotted + ".gz"]


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (gzip-compressed or raw, detected from its bytes) into a native-endian array."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetFormatError(f"{path}: corrupt gzip data ({exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise DatasetFormatError(
            f"{path}: not an IDX file (bad magic {raw[:4].hex() or 'empty'}: expected 0000, a type byte "
            "08/09/0b/0c/0d/0e and a rank >= 1)"
        )
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise DatasetFormatError(f"{path}: truncated IDX header ({len(raw)} bytes, need {head} for rank {ndim})")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = head + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise DatasetFormatError(
            f"{path}: IDX data {what}: shape {shape} of {dtype.name} needs {expected} bytes, file has {len(raw)}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=head).reshape(shape).astype(dtype.newbyteorder("="))


def _load_split(name: str, dirs: list[str], images_key: str, labels_key: str) -> tuple[np.ndarray, np.ndarray]:
    layout = f"put {_SOURCES[name]} — {', '.join(_STEMS.values())} (each raw or .gz) — in one directory."
    paths = {}
    for key in (images_key, labels_key):
        path = find_file(dirs, _file_names(_STEMS[key]))
        if path is None:
            raise not_found(name, _STEMS[key] + "[.gz]", dirs, layout)
        paths[key] = path
    images, labels = read_idx(paths[images_key]), read_idx(paths[labels_key])
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetFormatError(
            f"{paths[images_key]}: expected uint8 images of shape (N, H, W), got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1:
        raise DatasetFormatError(f"{paths[labels_key]}: expected labels of shape (N,), got {labels.shape}")
    if labels.shape[0] != images.shape[0]:
        raise DatasetFormatError(
            f"{paths[labels_key]}: {labels.shape[0]} labels for {images.shape[0]} images in {paths[images_key]}"
        )
    x = (images.astype(np.float32) / 255.0)[..., None]
    return x, check_labels(paths[labels_key], labels, 10)


def _load(name: str, data_dir: str | os.PathLike[str] | None) -> Dataset:
    dirs = candidate_dirs(name, data_dir, _SUBDIRS[name])
    train = _load_split(name, dirs, "train_images", "train_labels")
    test = _load_split(name, dirs, "test_images", "test_labels")
    return Dataset(train[0], train[1], test[0], test[1], 10, name)


def load_mnist(data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """MNIST from IDX files in ``data_dir``: images ``(N, 28, 28, 1)`` float32 = pixel / 255, 10 classes."""
    return _load("mnist", data_dir)


def load_fashion_mnist(data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """Fashion-MNIST from IDX files in ``data_dir`` (same names and layout as MNIST), 10 classes."""
    return _load("fashion-mnist", data_dir)
