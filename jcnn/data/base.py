"""What every data set loader shares: the ``Dataset`` tuple, the errors, and where files are looked for.

No loader ever touches the network: a missing file is a :class:`DatasetNotFoundError` that names the
files expected and the directories searched, and says where to put them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

DATA_DIR_ENV = "JCNN_DATA_DIR"
"""The environment variable that names the data directory."""
DEFAULT_DATA_DIR = os.path.join("~", ".jcnn", "data")
"""The data directory when neither ``data_dir`` nor the environment variable is given."""


class Dataset(NamedTuple):
    """A classification data set split into train and test.

    Images are float32, channels-last ``(N, H, W, C)``, scaled to ``[0, 1]``; labels are int32 in
    ``[0, num_classes)``.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    num_classes: int
    name: str


class DatasetNotFoundError(ValueError):
    """A data set's files are not where jcnn looked (jcnn never downloads anything)."""


class DatasetFormatError(ValueError):
    """A data set file exists but is malformed (bad magic, truncated, wrong counts, bad labels)."""


def default_data_dir() -> str:
    """``$JCNN_DATA_DIR`` when set, else ``~/.jcnn/data``."""
    return os.path.expanduser(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def candidate_dirs(name: str, data_dir: str | os.PathLike[str] | None, subdirs: Sequence[str]) -> list[str]:
    """The directories searched for ``name``'s files: ``data_dir`` itself, then each of ``subdirs`` in it.

    ``data_dir=None`` means :func:`default_data_dir`. An explicit ``data_dir`` that does not exist is an
    error (a typo should not fall back to anything).
    """
    if data_dir is None:
        root = default_data_dir()
    else:
        root = os.path.expanduser(os.fspath(data_dir))
        if not os.path.isdir(root):
            raise DatasetNotFoundError(
                f"{name}: data directory {root!r} does not exist; create it and put the {name} files there"
            )
    return [root] + [os.path.join(root, sub) for sub in subdirs]


def find_file(dirs: Sequence[str], names: Sequence[str]) -> str | None:
    """The first existing ``dir/name`` over ``dirs`` × ``names`` (directory-major), else ``None``."""
    for d in dirs:
        for n in names:
            p = os.path.join(d, n)
            if os.path.isfile(p):
                return p
    return None


def not_found(name: str, missing: str, dirs: Sequence[str], layout: str) -> DatasetNotFoundError:
    """The error for a missing file: what is missing, where jcnn looked, what to put where."""
    searched = ", ".join(repr(d) for d in dirs)
    return DatasetNotFoundError(
        f"{name}: file {missing!r} not found (searched {searched}). jcnn never downloads data: {layout} "
        f"Pass the directory with --data-dir / data_dir=, or set ${DATA_DIR_ENV}."
    )


def check_labels(path: str, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Labels as int32, each a whole number in ``[0, num_classes)``, else a :class:`DatasetFormatError`
    naming ``path`` (a float label file holding 1.5 is not truncated to class 1)."""
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer) and labels.size:
        whole = np.isfinite(labels) & (np.mod(labels, 1) == 0)
        if not whole.all():
            raise DatasetFormatError(
                f"{path}: labels must be whole class numbers, got {labels[~whole].flat[0].item()!r} "
                f"({int((~whole).sum())} of {labels.size} are not)"
            )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetFormatError(
            f"{path}: labels must lie in [0, {num_classes}), got values in [{labels.min()}, {labels.max()}]"
        )
    return labels.astype(np.int32)
