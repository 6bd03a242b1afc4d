"""MNIST / Fashion-MNIST IDX loading on small files the tests write themselves."""

import gzip
import os

import numpy as np
import pytest

from jcnn.data import DatasetFormatError, DatasetNotFoundError, load_fashion_mnist, load_mnist, read_idx
from tests.data._util import idx_bytes, write_idx, write_mnist


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips_every_type(tmp_path, rng, dtype, gz):
    arr = (rng.standard_normal((3, 4, 2)) * 100).astype(dtype)
    out = read_idx(write_idx(tmp_path / "a.idx", arr, gz=gz))
    assert out.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("gz, dotted, sub", [(False, False, ""), (True, False, "MNIST/raw"), (True, True, "mnist")])
def test_load_mnist_layouts(tmp_path, gz, dotted, sub):
    arrays = write_mnist(tmp_path / sub if sub else tmp_path, gz=gz, dotted=dotted)
    ds = load_mnist(tmp_path)
    assert ds.name == "mnist" and ds.num_classes == 10
    assert ds.train_images.shape == (7, 6, 5, 1) and ds.test_images.shape == (5, 6, 5, 1)
    assert ds.train_images.dtype == np.float32 and ds.train_labels.dtype == np.int32
    np.testing.assert_array_equal(ds.train_images[..., 0] * 255, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(ds.test_images[..., 0] * 255, arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(ds.train_labels, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(ds.test_labels, arrays["t10k-labels-idx1-ubyte"])
    assert 0.0 <= ds.train_images.min() and ds.train_images.max() <= 1.0


def test_fashion_mnist_in_torchvision_layout_and_env_default(tmp_path, monkeypatch):
    arrays = write_mnist(tmp_path / "FashionMNIST" / "raw", gz=True, seed=3)
    monkeypatch.setenv("JCNN_DATA_DIR", str(tmp_path))
    ds = load_fashion_mnist()
    assert ds.name == "fashion-mnist"
    np.testing.assert_array_equal(ds.test_labels, arrays["t10k-labels-idx1-ubyte"])


def test_missing_directory_and_missing_file(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="mnist: data directory .*nope.* does not exist"):
        load_mnist(tmp_path / "nope")
    write_mnist(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte")
    with pytest.raises(DatasetNotFoundError, match=r"t10k-labels-idx1-ubyte\[\.gz\]' not found .*never downloads"):
        load_mnist(tmp_path)
    assert issubclass(DatasetNotFoundError, ValueError)


def _corrupt(tmp_path, name, data):
    write_mnist(tmp_path)
    with open(tmp_path / name, "wb") as f:
        f.write(data)


@pytest.mark.parametrize(
    "data, match",
    [
        (b"\x01\x00\x08\x01" + bytes(8), "not an IDX file .bad magic 01000801"),
        (b"\x00\x00\x07\x01" + bytes(8), "not an IDX file"),
        (b"", "not an IDX file .bad magic empty"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
        (idx_bytes(np.zeros((7, 6, 5), np.uint8))[:-3], "IDX data truncated"),
        (idx_bytes(np.zeros((7, 6, 5), np.uint8)) + b"xx", "IDX data has trailing bytes"),
        (b"\x1f\x8b" + b"garbage", "corrupt gzip data"),
        (idx_bytes(np.zeros((7, 30), np.uint8)), r"expected uint8 images of shape \(N, H, W\)"),
        (idx_bytes(np.zeros((7, 6, 5), np.float32)), "expected uint8 images"),
    ],
)
def test_malformed_image_file_names_the_file(tmp_path, data, match):
    _corrupt(tmp_path, "train-images-idx3-ubyte", data)
    with pytest.raises(DatasetFormatError, match=f"train-images-idx3-ubyte: {match}"):
        load_mnist(tmp_path)


@pytest.mark.parametrize(
    "labels, match",
    [
        (np.zeros((7, 2), np.uint8), r"expected labels of shape \(N,\)"),
        (np.zeros(6, np.uint8), "6 labels for 7 images"),
        (np.full(7, 10, np.uint8), r"labels must lie in \[0, 10\), got values in \[10, 10\]"),
        (np.array([1, 2, 1.5, 3, 0, 0, 0], np.float32), r"labels must be whole class numbers, got 1.5 \(1 of 7"),
        (np.array([1, 2, np.nan, 3, 0, 0, 0], np.float64), "labels must be whole class numbers, got nan"),
        (np.full(7, -1, np.int8), r"labels must lie in \[0, 10\), got values in \[-1, -1\]"),
    ],
)
def test_bad_labels(tmp_path, labels, match):
    _corrupt(tmp_path, "train-labels-idx1-ubyte", idx_bytes(labels))
    with pytest.raises(DatasetFormatError, match=f"train-labels-idx1-ubyte: {match}"):
        load_mnist(tmp_path)


def test_gzip_detected_from_bytes_not_name(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = tmp_path / "plain-name"
    path.write_bytes(gzip.compress(idx_bytes(arr)))
    np.testing.assert_array_equal(read_idx(path), arr)
