"""Data sets and input pipelines: the embedded digits, local MNIST / Fashion-MNIST / CIFAR-10 files, a
folder of your own images (``image_folder``, Pillow), a seeded batch iterator, a prefetching thread and
pure-JAX augmentation. Nothing here ever downloads anything.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from jcnn.data.augment import (
    AUGMENTATION_DEFAULTS,
    augment,
    cutmix,
    mix_batch,
    mixup,
    random_crop,
    random_flip,
    soft_targets,
)
from jcnn.data.base import (
    DATA_DIR_ENV,
    Dataset,
    DatasetFormatError,
    DatasetNotFoundError,
    default_data_dir,
)
from jcnn.data.cifar import CLASS_NAMES as CIFAR10_CLASSES
from jcnn.data.cifar import load_cifar10
from jcnn.data.digits import load_digits
from jcnn.data.folder import FolderDataset, FolderImages, image_folder, list_images
from jcnn.data.idx import load_fashion_mnist, load_mnist, read_idx
from jcnn.data.images import IMAGE_EXTENSIONS, ImageDecodeError, load_image, normalize_pixels
from jcnn.data.iterators import Batches, batches
from jcnn.data.prefetch import Prefetcher, prefetch_batches

_LOADERS: dict[str, Callable[[str | os.PathLike[str] | None], Dataset]] = {
    "digits": lambda data_dir: load_digits(),
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
}
DATASETS = tuple(_LOADERS)
"""The names :func:`load_dataset` accepts."""
_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar-10": "cifar10"}

CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "digits": tuple("0123456789"),
    "mnist": tuple("0123456789"),
    "fashion-mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    "cifar10": CIFAR10_CLASSES,
}
"""The class names of each data set, indexed by label."""


def canonical_name(name: str) -> str:
    """``name`` as one of :data:`DATASETS` (case-insensitive; ``fashion_mnist``/``cifar-10`` accepted)."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return key


def load_dataset(name: str, data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """Load a data set by name: ``"digits"`` (embedded, ``data_dir`` ignored), ``"mnist"``,
    ``"fashion-mnist"``, ``"cifar10"`` (from files in ``data_dir``, default ``$JCNN_DATA_DIR`` or
    ``~/.jcnn/data``).

    Raises ``ValueError`` for an unknown name, :class:`DatasetNotFoundError` (a ``ValueError``) naming the
    missing file and where to put it, :class:`DatasetFormatError` naming a malformed file.
    """
    return _LOADERS[canonical_name(name)](data_dir)


__all__ = [
    "AUGMENTATION_DEFAULTS",
    "Batches",
    "CLASS_NAMES",
    "DATASETS",
    "DATA_DIR_ENV",
    "Dataset",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "FolderDataset",
    "FolderImages",
    "IMAGE_EXTENSIONS",
    "ImageDecodeError",
    "Prefetcher",
    "augment",
    "cutmix",
    "mix_batch",
    "mixup",
    "soft_targets",
    "batches",
    "canonical_name",
    "default_data_dir",
    "image_folder",
    "list_images",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_image",
    "load_mnist",
    "normalize_pixels",
    "prefetch_batches",
    "random_crop",
    "random_flip",
    "read_idx",
]
