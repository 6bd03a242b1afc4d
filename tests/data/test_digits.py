"""The embedded digits data set: shapes, the fixed stratified split, agreement with scikit-learn."""

import gzip
import importlib.util
import types

import numpy as np
import pytest

from jcnn.data import DatasetFormatError, DatasetNotFoundError, load_digits
from jcnn.data import digits as digits_mod


def test_shapes_dtypes_and_range():
    ds = load_digits()
    assert ds.name == "digits" and ds.num_classes == 10
    assert ds.train_images.shape == (1438, 8, 8, 1) and ds.test_images.shape == (359, 8, 8, 1)
    assert ds.train_labels.shape == (1438,) and ds.test_labels.shape == (359,)
    assert ds.train_images.dtype == np.float32 and ds.train_labels.dtype == np.int32
    assert ds.train_images.min() == 0.0 and ds.train_images.max() == 1.0


def test_matches_scikit_learn_and_split_is_a_partition():
    from sklearn.datasets import load_digits as sk_load

    sk = sk_load()
    images, labels = digits_mod.read_digits()
    np.testing.assert_array_equal(images[..., 0] * 16, sk.images)
    np.testing.assert_array_equal(labels, sk.target)
    train_idx, test_idx = digits_mod.stratified_split(labels, 0.2, 0)
    assert np.intersect1d(train_idx, test_idx).size == 0
    np.testing.assert_array_equal(np.union1d(train_idx, test_idx), np.arange(1797))
    ds = load_digits()
    np.testing.assert_array_equal(ds.test_images, images[test_idx])
    np.testing.assert_array_equal(ds.train_labels, labels[train_idx])


def test_split_is_stratified_fixed_and_seeded():
    ds = load_digits()
    _, all_labels = digits_mod.read_digits()
    per_class = np.bincount(all_labels, minlength=10)
    np.testing.assert_array_equal(np.bincount(ds.test_labels, minlength=10), np.round(0.2 * per_class))
    again = load_digits()
    np.testing.assert_array_equal(again.test_images, ds.test_images)
    other = load_digits(seed=1)
    assert not np.array_equal(other.test_images, ds.test_images)
    assert load_digits(test_fraction=0.5).test_images.shape[0] == int(np.round(0.5 * per_class).sum())


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_bad_test_fraction(fraction):
    with pytest.raises(ValueError, match="digits: test_fraction must lie in"):
        load_digits(test_fraction=fraction)


def test_missing_scikit_learn(monkeypatch, tmp_path):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DatasetNotFoundError, match="ships inside scikit-learn, which is not installed"):
        load_digits()
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: types.SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    )
    with pytest.raises(DatasetNotFoundError, match="digits.csv.gz' is missing"):
        load_digits()


@pytest.mark.parametrize(
    "content", [b"not gzip", gzip.compress(b"1,2,3\n4,5,6\n", mtime=0)], ids=["not-gzip", "wrong-columns"]
)
def test_malformed_csv(tmp_path, content):
    path = tmp_path / "digits.csv.gz"
    path.write_bytes(content)
    with pytest.raises(DatasetFormatError, match="digits.csv.gz: "):
        digits_mod.read_digits(str(path))
