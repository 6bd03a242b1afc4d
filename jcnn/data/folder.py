"""A folder of your own images as a data set: torchvision's ``ImageFolder`` layout, decoded lazily.

Layout: ``ROOT/<class>/.../<image>``, one sub-directory per class; the sorted class names give the labels
``0..K−1``; images in nested directories belong to their top-level class directory; files are visited in
torchvision's order (directories sorted by path, then file names). Hidden files and directories (a
leading ``.``) are skipped, files without an image extension (:data:`IMAGE_EXTENSIONS`) are ignored and
counted. A fixed split is either ``ROOT/train/<class>/…`` with ``ROOT/val/<class>/…`` (or ``test/``),
found by itself, or ``val_root=``; otherwise a seeded stratified split: ``round(test_fraction · n_c)`` of
each class's readable images (at least one left for training) go to the test set.

Memory: :func:`image_folder` decodes every file once at the target size (threads), to find the unreadable
ones before training starts (``on_error="skip"`` drops them with a report, ``"raise"`` fails listing
them) and to compute the per-channel mean and std of the training images (exact integer sums of the
uint8 pixels). The first ``cache_mb`` MiB of decoded uint8 images are kept; every other image is decoded
again when a batch asks for it (by the prefetch thread while training). Only the paths, labels and that
bounded cache stay in memory.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import sys
import weakref
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from jcnn.data.base import DatasetFormatError, DatasetNotFoundError
from jcnn.data.images import (
    IMAGE_EXTENSIONS,
    ImageDecodeError,
    check_color,
    check_resize,
    check_size,
    load_image,
    normalize_pixels,
)

ON_ERROR = ("skip", "raise")
"""The values of :func:`image_folder`'s ``on_error``: drop unreadable files with a report, or fail listing them."""
VAL_DIRS = ("val", "test")
"""The held-out directory names looked for beside ``ROOT/train`` (in this order) for a fixed split."""
_SCAN_CHUNK = 256


# ------------------------------------------------------------------------------------------- listing


def _class_dirs(root: str) -> list[str]:
    return sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))


def _walk(top: str) -> tuple[list[str], list[str]]:
    """``(images, ignored)`` under ``top`` in torchvision's order, following links but never a loop."""
    seen = {os.path.realpath(top)}
    found = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        keep = []
        for d in dirnames:
            real = os.path.realpath(os.path.join(dirpath, d))
            if not d.startswith(".") and real not in seen:
                seen.add(real)
                keep.append(d)
        dirnames[:] = keep
        found.append((dirpath, filenames))
    images: list[str] = []
    ignored: list[str] = []
    for dirpath, filenames in sorted(found):
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = os.path.join(dirpath, name)
            (images if name.lower().endswith(IMAGE_EXTENSIONS) else ignored).append(path)
    return images, ignored


def list_images(
    root: str | os.PathLike[str], class_names: Sequence[str] | None = None
) -> tuple[tuple[str, ...], list[str], np.ndarray, list[str]]:
    """``(class_names, paths, labels int32, ignored)`` of an ``ImageFolder`` directory.

    ``class_names`` given (a validation folder): its class directories must be among them and keep
    their labels. Raises :class:`DatasetFormatError` for a folder without class directories or a class
    directory without images, naming it.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise DatasetNotFoundError(f"folder: {root!r} is not a directory")
    found = _class_dirs(root)
    if not found:
        loose = len(_walk(root)[0])
        extra = f" (it holds {loose} images directly; move them into ROOT/<class name>/)" if loose else ""
        raise DatasetFormatError(
            f"folder: {root!r} has no class sub-directories{extra}; the layout is ROOT/<class name>/<images>, "
            "one sub-directory per class (torchvision's ImageFolder)"
        )
    if class_names is None:
        class_names = tuple(found)
        if len(class_names) < 2:
            raise DatasetFormatError(
                f"folder: {root!r} has {len(class_names)} class directory ({found[0]!r}); a classifier "
                "needs at least 2 classes, one sub-directory each"
            )
    else:
        unknown = sorted(set(found) - set(class_names))
        if unknown:
            raise DatasetFormatError(
                f"folder: {root!r} has class directories that the training folder lacks: "
                f"{', '.join(map(repr, unknown))} (training classes: {', '.join(class_names)})"
            )
    index = {name: i for i, name in enumerate(class_names)}
    paths: list[str] = []
    labels: list[int] = []
    ignored: list[str] = []
    for name in found:
        images, other = _walk(os.path.join(root, name))
        if not images:
            raise DatasetFormatError(
                f"folder: class directory {os.path.join(root, name)!r} holds no images "
                f"({', '.join(IMAGE_EXTENSIONS)}"
                + (f"; {len(other)} other files ignored" if other else "")
                + "); add images or remove the directory"
            )
        paths += images
        labels += [index[name]] * len(images)
        ignored += other
    return tuple(class_names), paths, np.asarray(labels, np.int32), ignored


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train_idx, test_idx)``: per class ``c`` of ``n_c`` images, ``min(round(test_fraction ·
    n_c), n_c − 1)`` chosen by ``numpy.random.default_rng(seed)`` go to test (classes in label order)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"folder: test_fraction must lie in (0, 1), got {test_fraction!r}")
    rng = np.random.default_rng(seed)
    test = [np.zeros(0, np.int64)]
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = min(int(round(test_fraction * idx.size)), idx.size - 1)
        test.append(rng.permutation(idx)[:k])
    test_idx = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(labels.size), test_idx), test_idx


# ------------------------------------------------------------------------------------------- decoding


class _Store:
    """The files of one folder data set: decoded on demand at one size, a read-only bounded cache of
    uint8 images filled by the scan, and a thread pool (Pillow releases the GIL while decoding)."""

    def __init__(self, paths: Sequence[str], size: tuple[int, int], color: str, resize: str, workers: int) -> None:
        self.paths = list(paths)
        self.size, self.color, self.resize = size, color, resize
        self.channels = check_color(color)[1]
        self.cache: dict[int, np.ndarray] = {}
        self.workers = workers
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def _decode(self, i: int) -> np.ndarray:
        return load_image(self.paths[i], self.size, color=self.color, resize=self.resize)

    def pool(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="jcnn-decode")
            weakref.finalize(self, self._pool.shutdown, wait=False)
        return self._pool

    def get(self, indices: np.ndarray) -> np.ndarray:
        """uint8 ``(n, H, W, C)`` for the global file indices, from the cache or decoded in parallel."""
        out = np.empty((len(indices), *self.size, self.channels), np.uint8)
        missing = []
        for j, i in enumerate(indices):
            hit = self.cache.get(int(i))
            if hit is None:
                missing.append(j)
            else:
                out[j] = hit
        if missing:
            decode = self._decode_after_scan
            arrays = (
                self.pool().map(decode, [int(indices[j]) for j in missing])
                if len(missing) > 1
                else [decode(int(indices[missing[0]]))]
            )
            for j, arr in zip(missing, arrays):
                out[j] = arr
        return out

    def _decode_after_scan(self, i: int) -> np.ndarray:
        try:
            return self._decode(i)
        except ImageDecodeError as exc:
            raise ImageDecodeError(
                exc.path, f"{exc.reason}; it was readable when the folder was scanned, so it changed during the run"
            ) from exc


def _scan_one(store: _Store, i: int) -> tuple[np.ndarray | None, str | None, np.ndarray]:
    """Decode file ``i``: ``(uint8 image or None, error or None, per-channel [Σu, Σu²] int64 (C, 2))``."""
    try:
        img = store._decode(i)
    except ImageDecodeError as exc:
        return None, exc.reason, np.zeros((store.channels, 2), np.int64)
    flat = img.reshape(-1, store.channels).astype(np.int64)
    return img, None, np.stack([flat.sum(0), (flat * flat).sum(0)], axis=1)


def _scan(store: _Store, cache_bytes: int, progress: bool) -> tuple[list[str | None], np.ndarray]:
    """Decode every file once: the error of each (``None`` when readable) and its pixel sums; fills the
    cache with the first readable images up to ``cache_bytes``."""
    n = len(store.paths)
    errors: list[str | None] = [None] * n
    sums = np.zeros((n, store.channels, 2), np.int64)
    image_bytes = store.size[0] * store.size[1] * store.channels
    capacity = cache_bytes // image_bytes
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, desc="scanning images", unit="img", leave=False, file=sys.stderr, dynamic_ncols=True)
    try:
        for start in range(0, n, _SCAN_CHUNK):
            chunk = range(start, min(start + _SCAN_CHUNK, n))
            for i, (img, error, s) in zip(chunk, store.pool().map(lambda k: _scan_one(store, k), chunk)):
                errors[i], sums[i] = error, s
                if img is not None and len(store.cache) < capacity:
                    store.cache[i] = img
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    return errors, sums


def channel_stats(sums: np.ndarray, pixels_per_image: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of ``u8 / 255`` from per-image ``[Σu, Σu²]`` ``(n, C, 2)``,
    computed exactly in integers: ``std = sqrt(n·Σu² − (Σu)²) / (n · 255)`` over ``n`` pixels. A constant
    channel gets std 1 (nothing to scale)."""
    total = [[int(v) for v in row] for row in sums.sum(axis=0)]
    n = int(sums.shape[0]) * int(pixels_per_image)
    mean = tuple(s1 / (n * 255) for s1, _ in total)
    std = tuple((math.sqrt(n * s2 - s1 * s1) / (n * 255)) or 1.0 for s1, s2 in total)
    return mean, std


# ------------------------------------------------------------------------------------------ the arrays


class FolderImages:
    """A lazy array ``(N, H, W, C)`` float32 over some of a folder's files: ``images[i]``,
    ``images[a:b]``, ``images[index_array]`` decode what the cache lacks and return
    ``(u8 / 255 − mean) / std``. Works wherever ``jcnn.training.train.fit``, ``evaluate`` and ``batches`` take
    NumPy images; ``np.asarray(images)`` loads them all."""

    def __init__(
        self, store: _Store, indices: np.ndarray, mean: Sequence[float] | None, std: Sequence[float] | None
    ) -> None:
        self._store, self.indices = store, np.asarray(indices, np.int64)
        self.mean, self.std = mean, std
        self.shape = (len(self.indices), *store.size, store.channels)
        self.dtype = np.dtype(np.float32)
        self.ndim = 4

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def paths(self) -> list[str]:
        """The image files, in the order of the rows."""
        return [self._store.paths[i] for i in self.indices]

    @property
    def cached(self) -> int:
        """How many of these images the cache holds (the others are decoded when asked for)."""
        return sum(int(i) in self._store.cache for i in self.indices)

    def uint8(self, key: Any = slice(None)) -> np.ndarray:
        """The decoded uint8 images ``(n, H, W, C)`` at ``key`` (a slice or an index array), before
        normalisation."""
        sel = self.indices[key]
        return self._store.get(np.atleast_1d(sel))

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            row: np.ndarray = normalize_pixels(self._store.get(self.indices[np.asarray([key])]), self.mean, self.std)[0]
            return row
        if isinstance(key, tuple):
            raise TypeError("FolderImages: index with an int, a slice or an index array (one axis)")
        return normalize_pixels(self._store.get(self.indices[key]), self.mean, self.std)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"FolderImages(shape={self.shape}, cached={self.cached})"


class FolderDataset(NamedTuple):
    """What :func:`image_folder` returns. The first six fields are those of :class:`jcnn.data.Dataset`
    (the images lazy, normalised); then what the run's config keeps for ``jcnn predict`` / ``export``."""

    train_images: FolderImages
    train_labels: np.ndarray
    test_images: FolderImages
    test_labels: np.ndarray
    num_classes: int
    name: str
    class_names: tuple[str, ...]
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    skipped: tuple[tuple[str, str], ...]  # (path, reason) of each unreadable file left out
    ignored: tuple[str, ...]  # files without an image extension
    root: str
    val_root: str | None
    color: str
    resize: str
    test_fraction: float | None
    split_seed: int | None

    def config(self) -> dict[str, Any]:
        """The JSON-ready description a run stores, from which predict/export rebuild the input."""
        # mean and std are set together (both None without normalisation)
        normalize = None if self.mean is None or self.std is None else {"mean": list(self.mean), "std": list(self.std)}
        return {
            "data_dir": os.path.abspath(self.root),
            "val_dir": None if self.val_root is None else os.path.abspath(self.val_root),
            "class_names": list(self.class_names),
            "color": self.color,
            "resize": self.resize,
            "normalize": normalize,
            "test_fraction": self.test_fraction,
            "split_seed": self.split_seed,
            "skipped_images": len(self.skipped),
        }


def _find_val_root(root: str) -> str | None:
    if not os.path.isdir(os.path.join(root, "train")):
        return None
    return next((os.path.join(root, d) for d in VAL_DIRS if os.path.isdir(os.path.join(root, d))), None)


def _unreadable_error(bad: list[tuple[str, str]]) -> DatasetFormatError:
    shown = "; ".join(f"{p} ({r})" for p, r in bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
    return DatasetFormatError(
        f"folder: {len(bad)} file(s) could not be read as images: {shown} "
        "(skip them with on_error='skip' / --bad-images skip)"
    )


def image_folder(
    root: str | os.PathLike[str],
    *,
    size: int | Sequence[int],
    color: str = "rgb",
    resize: str = "crop",
    val_root: str | os.PathLike[str] | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    on_error: str = "skip",
    normalize: bool | tuple[Sequence[float], Sequence[float]] = True,
    cache_mb: float = 512,
    workers: int | None = None,
    progress: bool = False,
) -> FolderDataset:
    """A classification data set from an ``ImageFolder`` directory (see the module docstring).

    ``size``: ``(H, W)`` (or an int) of the model's input; ``color``: ``"rgb"`` (C = 3) or
    ``"grayscale"`` (C = 1); ``resize``: ``"crop"`` (centre box, aspect kept) or ``"stretch"``.
    ``val_root``: a separate validation folder (default: ``ROOT/val`` or ``ROOT/test`` when ``ROOT/train``
    exists, else a stratified split of ``test_fraction`` seeded by ``split_seed``). ``on_error``:
    ``"skip"`` leaves unreadable files out (listed in ``.skipped``) or ``"raise"``. ``normalize``:
    ``True`` computes the training images' per-channel mean/std, a pair ``(mean, std)`` uses those (a
    resumed run), ``False`` feeds ``u8 / 255``. ``cache_mb``: decoded images kept in memory (0: decode
    every batch). ``workers``: decoding threads (default ``min(8, cpu_count)``).
    """
    size = check_size(size)
    check_color(color)
    check_resize(resize)
    if on_error not in ON_ERROR:
        raise ValueError(f"folder: on_error must be one of {', '.join(ON_ERROR)}, got {on_error!r}")
    if not (isinstance(cache_mb, (int, float)) and cache_mb >= 0):
        raise ValueError(f"folder: cache_mb must be a number >= 0, got {cache_mb!r}")
    workers = workers or min(8, os.cpu_count() or 1)
    root = os.fspath(root)
    if val_root is None:
        found = _find_val_root(root)
        if found is not None:
            root, val_root = os.path.join(root, "train"), found
    else:
        val_root = os.fspath(val_root)

    class_names, paths, labels, ignored = list_images(root)
    n_train_files = len(paths)
    if val_root is not None:
        _, val_paths, val_labels, val_ignored = list_images(val_root, class_names)
        paths, labels, ignored = paths + val_paths, np.concatenate([labels, val_labels]), ignored + val_ignored

    store = _Store(paths, size, color, resize, workers)
    errors, sums = _scan(store, int(cache_mb * 2**20), progress)
    bad = [(paths[i], e) for i, e in enumerate(errors) if e is not None]
    if bad and on_error == "raise":
        raise _unreadable_error(bad)
    good = np.asarray([e is None for e in errors])
    for c, name in enumerate(class_names):
        mine = labels[:n_train_files] == c
        if mine.any() and not good[:n_train_files][mine].any():
            raise DatasetFormatError(
                f"folder: class directory {os.path.join(root, name)!r} has no readable images "
                f"({int(mine.sum())} unreadable, e.g. {paths[int(np.flatnonzero(mine)[0])]!r})"
            )
    if val_root is None:
        keep = np.flatnonzero(good)
        train_pos, test_pos = stratified_split(labels[keep], test_fraction, split_seed)
        train_idx, test_idx = keep[train_pos], keep[test_pos]
    else:
        everything = np.arange(len(paths))
        train_idx = everything[:n_train_files][good[:n_train_files]]
        test_idx = everything[n_train_files:][good[n_train_files:]]
    if len(test_idx) == 0:
        where = (
            f"the validation folder {val_root!r} has no readable images"
            if val_root is not None
            else f"test_fraction {test_fraction} of {len(train_idx)} images rounds to no test image per class"
        )
        raise DatasetFormatError(f"folder: the test split is empty: {where}")

    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    if normalize is True:
        mean, std = channel_stats(sums[train_idx], size[0] * size[1])
    elif normalize is False or normalize is None:
        mean = std = None
    else:
        mean, std = (tuple(float(v) for v in normalize[0]), tuple(float(v) for v in normalize[1]))
        channels = store.channels
        if len(mean) != channels or len(std) != channels or not all(s > 0 for s in std):
            raise ValueError(
                f"folder: normalize must be (mean, std) with {channels} values each and std > 0, got {normalize!r}"
            )
    return FolderDataset(
        FolderImages(store, train_idx, mean, std),
        labels[train_idx],
        FolderImages(store, test_idx, mean, std),
        labels[test_idx],
        len(class_names),
        "folder",
        class_names,
        mean,
        std,
        tuple(bad),
        tuple(ignored),
        root,
        val_root,
        color,
        resize,
        None if val_root is not None else float(test_fraction),
        None if val_root is not None else int(split_seed),
    )
