"""``load_dataset`` by name, and the package's exports."""

import numpy as np
import pytest

from jcnn import data
from tests.data._util import write_cifar, write_mnist


def test_load_dataset_by_name(tmp_path):
    write_mnist(tmp_path / "mnist")
    write_mnist(tmp_path / "fashion-mnist", seed=1)
    write_cifar(tmp_path / "cifar-10-batches-py", n=2)
    assert data.load_dataset("digits").train_images.shape[1:] == (8, 8, 1)
    mnist = data.load_dataset("MNIST", tmp_path)
    fashion = data.load_dataset("fashion_mnist", tmp_path)
    assert mnist.name == "mnist" and fashion.name == "fashion-mnist"
    assert not np.array_equal(mnist.train_images, fashion.train_images)
    assert data.load_dataset("cifar-10", str(tmp_path)).test_images.shape == (2, 32, 32, 3)
    assert set(data.DATASETS) == set(data.CLASS_NAMES) == set(data.AUGMENTATION_DEFAULTS)
    assert all(len(v) == 10 for v in data.CLASS_NAMES.values())


def test_unknown_dataset():
    with pytest.raises(
        ValueError, match="unknown dataset 'imagenet'; choose one of digits, mnist, fashion-mnist, cifar10"
    ):
        data.load_dataset("imagenet")


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    assert data.default_data_dir().endswith(".jcnn/data")
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    assert data.default_data_dir() == str(tmp_path)
    with pytest.raises(data.DatasetNotFoundError, match=f"searched '{tmp_path}'"):
        data.load_dataset("mnist")
