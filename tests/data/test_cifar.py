"""CIFAR-10 python-batch loading on small pickles the tests write themselves."""

import os
import pickle

import numpy as np
import pytest

from jcnn.data import DatasetFormatError, DatasetNotFoundError, load_cifar10
from jcnn.data.cifar import read_batch
from tests.data._util import write_cifar, write_cifar_batch


@pytest.mark.parametrize("protocol, sub", [(2, ""), (pickle.HIGHEST_PROTOCOL, "cifar-10-batches-py")])
def test_load_cifar10(tmp_path, protocol, sub):
    written = write_cifar(tmp_path / sub if sub else tmp_path, n=3, protocol=protocol)
    ds = load_cifar10(tmp_path)
    assert ds.name == "cifar10" and ds.num_classes == 10
    assert ds.train_images.shape == (15, 32, 32, 3) and ds.test_images.shape == (3, 32, 32, 3)
    assert ds.train_images.dtype == np.float32 and ds.test_labels.dtype == np.int32
    data, labels = written["test_batch"]
    np.testing.assert_array_equal(ds.test_labels, labels)
    # Row layout: 1024 red, 1024 green, 1024 blue values, each plane row-major over (32, 32).
    n, i, j = 2, 5, 17
    for c in range(3):
        assert ds.test_images[n, i, j, c] == np.float32(data[n, c * 1024 + i * 32 + j] / 255.0)
    train_data = np.concatenate([written[f"data_batch_{k}"][0] for k in range(1, 6)])
    np.testing.assert_array_equal(
        ds.train_images.reshape(15, -1, 3).transpose(0, 2, 1).reshape(15, -1) * 255, train_data.astype(np.float32)
    )


def test_str_keys_accepted(tmp_path):
    data, labels = write_cifar_batch(tmp_path / "b", 2, str_keys=True, protocol=4)
    images, out_labels = read_batch(tmp_path / "b")
    assert images.shape == (2, 32, 32, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(out_labels, labels)


def test_missing_files(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="cifar10: data directory .* does not exist"):
        load_cifar10(tmp_path / "absent")
    write_cifar(tmp_path / "cifar-10-batches-py")
    os.remove(tmp_path / "cifar-10-batches-py" / "test_batch")
    with pytest.raises(DatasetNotFoundError, match="cifar10: file 'test_batch' not found .*cifar-10-batches-py"):
        load_cifar10(tmp_path)


class _Hostile:
    def __reduce__(self):
        return (os.getcwd, ())


def _dump(path, obj, protocol=2):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


@pytest.mark.parametrize(
    "obj, match",
    [
        (_Hostile(), "refusing to load .*getcwd .only NumPy arrays"),
        ([1, 2], "expected a pickled dict, got list"),
        ({b"data": np.zeros((1, 3072), np.uint8)}, "expected the keys 'data' and 'labels'"),
        (
            {b"data": np.zeros((1, 3071), np.uint8), b"labels": [0]},
            r"'data' must be a uint8 array of shape \(n, 3072\)",
        ),
        ({b"data": np.zeros((1, 3072), np.float32), b"labels": [0]}, "got float32"),
        ({b"data": [1, 2], b"labels": [0]}, "got list"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "'labels' must be 2 integers"),
        ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [12]}, r"labels must lie in \[0, 10\)"),
    ],
)
def test_malformed_batches_name_the_file(tmp_path, obj, match):
    path = tmp_path / "data_batch_1"
    _dump(path, obj)
    with pytest.raises(DatasetFormatError, match=f"data_batch_1: .*{match}"):
        read_batch(path)


@pytest.mark.parametrize("raw", [b"not a pickle at all", pickle.dumps({b"data": 1})[:-4]])
def test_garbage_and_truncated_pickles(tmp_path, raw):
    path = tmp_path / "test_batch"
    path.write_bytes(raw)
    with pytest.raises(DatasetFormatError, match="test_batch: not a CIFAR-10 python batch"):
        read_batch(path)
