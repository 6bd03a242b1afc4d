"""Writers for small IDX and CIFAR-10 files, so loader tests never need the real data sets."""

from __future__ import annotations

import gzip
import os
import pickle

import numpy as np

IDX_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}


def idx_bytes(arr: np.ndarray) -> bytes:
    """The IDX encoding of ``arr``: magic, big-endian u32 dims, big-endian data."""
    arr = np.asarray(arr)
    head = bytes([0, 0, IDX_CODES[arr.dtype], arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx(path: str | os.PathLike, arr: np.ndarray, *, gz: bool = False) -> str:
    data = idx_bytes(arr)
    path = os.fspath(path)
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if gz else data)
    return path


def write_mnist(
    directory: str | os.PathLike,
    *,
    n_train: int = 7,
    n_test: int = 5,
    hw: tuple = (6, 5),
    gz: bool = False,
    dotted: bool = False,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Write the four MNIST files (random uint8 images of ``hw``, labels 0..9); returns the arrays."""
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, *hw), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, (n_train,), dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, *hw), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, (n_test,), dtype=np.uint8),
    }
    for stem, arr in arrays.items():
        name = stem.replace("-idx", ".idx") if dotted else stem
        write_idx(os.path.join(directory, name + (".gz" if gz else "")), arr, gz=gz)
    return arrays


def write_cifar_batch(
    path: str | os.PathLike, n: int, *, seed: int = 0, protocol: int = 2, str_keys: bool = False
) -> tuple[np.ndarray, list]:
    """One CIFAR-10 batch dict pickled as the official files are; returns ``(data (n, 3072), labels)``."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    batch = {
        "batch_label": "testing batch",
        "data": data,
        "labels": labels,
        "filenames": [f"img_{i}.png" for i in range(n)],
    }
    if not str_keys:
        batch = {k.encode(): v for k, v in batch.items()}
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=protocol)
    return data, labels


def write_cifar(directory: str | os.PathLike, *, n: int = 3, protocol: int = 2) -> dict[str, tuple]:
    """All six CIFAR-10 files with ``n`` images each; returns ``{file name: (data, labels)}``."""
    os.makedirs(directory, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    return {
        name: write_cifar_batch(os.path.join(directory, name), n, seed=i, protocol=protocol)
        for i, name in enumerate(names)
    }
