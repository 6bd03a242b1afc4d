"""image_folder: torchvision's listing order, the layout errors, unreadable files skipped or fatal, the
seeded stratified split and the train/val layout, exact mean/std, and lazy decoding equal to cached."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from jcnn.data import (
    DatasetFormatError,
    DatasetNotFoundError,
    FolderImages,
    ImageDecodeError,
    image_folder,
    list_images,
)
from jcnn.data.folder import stratified_split
from tests.data._images import CLASSES, write_separable_folder


def _save(path, value=100, size=(5, 7), mode="RGB"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    arr = np.full((size[1], size[0], 3), value, np.uint8)
    arr[0, 0] = (value * 7) % 256, (value * 3) % 256, 255 - value  # not constant per channel
    Image.fromarray(arr).convert(mode).save(path)
    return str(path)


def test_listing_follows_torchvision_order_and_skips_what_is_not_an_image(tmp_path):
    r = str(tmp_path)
    expected = [
        _save(f"{r}/cat/a.png"),
        _save(f"{r}/cat/b.JPG"),
        _save(f"{r}/cat/x-y/c.bmp"),
        _save(f"{r}/cat/x/d.webp"),
        _save(f"{r}/cat/x/z/e.png"),
        _save(f"{r}/dog/1.png"),
    ]
    _save(f"{r}/cat/.hidden/secret.png")
    _save(f"{r}/cat/.dot.png")
    _save(f"{r}/.cache/junk.png")  # a hidden directory is not a class
    (tmp_path / "dog" / "labels.csv").write_text("a,b\n")
    os.symlink(tmp_path / "cat", tmp_path / "cat" / "x" / "loop")  # a link back up: visited once
    names, paths, labels, ignored = list_images(r)
    assert names == ("cat", "dog")
    # torchvision: directories sorted by path ("x-y" < "x/..." since '-' < '/'), then file names.
    assert paths == sorted(expected[:5], key=lambda p: (os.path.dirname(p), p)) + expected[5:]
    assert labels.tolist() == [0] * 5 + [1] and labels.dtype == np.int32
    assert ignored == [f"{r}/dog/labels.csv"]


def test_layout_errors_name_what_is_wrong(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="is not a directory"):
        list_images(tmp_path / "nope")
    _save(tmp_path / "flat" / "a.png")
    with pytest.raises(DatasetFormatError, match="has no class sub-directories .it holds 1 images directly"):
        list_images(tmp_path / "flat")
    _save(tmp_path / "one" / "only" / "a.png")
    with pytest.raises(DatasetFormatError, match="needs at least 2 classes"):
        list_images(tmp_path / "one")
    _save(tmp_path / "two" / "a" / "x.png")
    os.makedirs(tmp_path / "two" / "b" / "nested")
    (tmp_path / "two" / "b" / "nested" / "notes.txt").write_text("?")
    with pytest.raises(
        DatasetFormatError, match=f"class directory '{tmp_path}/two/b' holds no images .*1 other files ignored"
    ):
        list_images(tmp_path / "two")
    _save(tmp_path / "val" / "c" / "x.png")
    with pytest.raises(DatasetFormatError, match="class directories that the training folder lacks: 'c'"):
        list_images(tmp_path / "val", ("a", "b"))


@pytest.fixture(scope="module")
def separable(tmp_path_factory):
    root = tmp_path_factory.mktemp("separable")
    return str(root), write_separable_folder(root, per_class=10)


def test_unreadable_files_are_skipped_with_a_report_or_fatal(separable):
    root, made = separable
    ds = image_folder(root, size=8, test_fraction=0.3)
    assert sorted(p for p, _ in ds.skipped) == made["bad"]
    reasons = dict(ds.skipped)
    assert "truncated" in reasons[f"{root}/vstripes/nested/truncated.png"]
    assert "cannot identify image file" in reasons[f"{root}/hstripes/notes.png"]
    assert list(ds.ignored) == made["ignored"]
    assert len(ds.train_images) + len(ds.test_images) == made["images"] == 30
    assert ds.class_names == CLASSES and ds.num_classes == 3 and ds.name == "folder"
    with pytest.raises(DatasetFormatError, match=r"3 file\(s\) could not be read as images: .*corrupt.jpg"):
        image_folder(root, size=8, on_error="raise")
    with pytest.raises(ValueError, match="on_error must be one of skip, raise"):
        image_folder(root, size=8, on_error="ignore")


def test_split_is_stratified_seeded_and_disjoint(separable):
    root, _ = separable
    a = image_folder(root, size=4, test_fraction=0.3, split_seed=5, cache_mb=0)
    b = image_folder(root, size=4, test_fraction=0.3, split_seed=5, cache_mb=0)
    c = image_folder(root, size=4, test_fraction=0.3, split_seed=6, cache_mb=0)
    assert a.test_images.paths == b.test_images.paths and a.test_images.paths != c.test_images.paths
    assert np.bincount(a.test_labels).tolist() == [3, 3, 3]  # round(0.3 · 10) of each class
    assert set(a.train_images.paths).isdisjoint(a.test_images.paths)
    assert len(set(a.train_images.paths) | set(a.test_images.paths)) == 30
    labels = np.array([0, 0, 0, 1, 1, 2])
    train, test = stratified_split(labels, 0.5, 0)
    assert sorted(labels[test].tolist()) == [0, 0, 1]  # round(1.5)=2 of 3, 1 of 2, but never the only image
    with pytest.raises(ValueError, match=r"test_fraction must lie in \(0, 1\)"):
        stratified_split(labels, 1.0, 0)


def test_mean_std_are_the_training_pixels_and_lazy_equals_cached(separable):
    root, _ = separable
    cached = image_folder(root, size=(6, 5))
    lazy = image_folder(root, size=(6, 5), cache_mb=0)
    assert cached.train_images.cached == len(cached.train_images) and lazy.train_images.cached == 0
    u8 = cached.train_images.uint8()
    assert u8.shape == (24, 6, 5, 3) and u8.dtype == np.uint8  # 2 of each class's 10 held out
    pixels = u8.reshape(-1, 3) / 255.0
    np.testing.assert_allclose(cached.mean, pixels.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cached.std, pixels.std(0), rtol=1e-12)
    x = cached.train_images[:]
    np.testing.assert_allclose(x.reshape(-1, 3).mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.reshape(-1, 3).std(0), 1.0, atol=1e-5)
    for key in (slice(None), slice(3, 9), np.array([4, 0, 4, -1]), 2, -3):
        np.testing.assert_array_equal(lazy.train_images[key], cached.train_images[key])
        np.testing.assert_array_equal(lazy.test_images[key], cached.test_images[key])
    assert cached.train_images[2].shape == (6, 5, 3)
    np.testing.assert_array_equal(np.asarray(lazy.test_images), cached.test_images[:])
    with pytest.raises(TypeError, match="index with an int, a slice or an index array"):
        lazy.train_images[0, 1]
    # A bounded cache keeps the first images that fit, the rest decode on demand.
    small = image_folder(root, size=(6, 5), cache_mb=10 * 90 / 2**20)
    assert small.train_images.cached + small.test_images.cached == 10
    np.testing.assert_array_equal(small.train_images[:], cached.train_images[:])
    gray = image_folder(root, size=4, color="grayscale", normalize=False)
    assert gray.train_images.shape[1:] == (4, 4, 1) and gray.mean is None
    np.testing.assert_array_equal(gray.train_images[:], gray.train_images.uint8() / np.float32(255))
    given = image_folder(root, size=4, normalize=((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)))
    np.testing.assert_allclose(given.train_images[:], (given.train_images.uint8() / 255 - 0.5) / 0.25, atol=1e-6)
    with pytest.raises(ValueError, match="normalize must be .mean, std. with 3 values each and std > 0"):
        image_folder(root, size=4, normalize=((0.5,), (0.0,)))
    config = cached.config()
    assert config["class_names"] == list(CLASSES) and config["normalize"]["mean"] == list(cached.mean)
    assert config["skipped_images"] == 3 and config["split_seed"] == 0 and config["val_dir"] is None


def test_train_and_val_folders_are_the_split(tmp_path):
    for split, n in (("train", 3), ("val", 2)):
        for c, name in enumerate(("ant", "bee")):
            for i in range(n - c):
                _save(tmp_path / split / name / f"{i}.png", value=40 * i + c)
    ds = image_folder(tmp_path, size=4)
    assert ds.root == str(tmp_path / "train") and ds.val_root == str(tmp_path / "val")
    assert [os.path.relpath(p, tmp_path) for p in ds.test_images.paths] == [
        "val/ant/0.png",
        "val/ant/1.png",
        "val/bee/0.png",
    ]
    assert ds.test_labels.tolist() == [0, 0, 1] and len(ds.train_images) == 5
    assert ds.test_fraction is None and ds.config()["val_dir"] == str(tmp_path / "val")
    # The statistics come from the training folder only.
    u8 = ds.train_images.uint8().reshape(-1, 3) / 255.0
    np.testing.assert_allclose(ds.mean, u8.mean(0), rtol=1e-12)


def test_unreadable_class_and_empty_test_split_are_errors(tmp_path):
    _save(tmp_path / "a" / "0.png")
    _save(tmp_path / "a" / "1.png")
    os.makedirs(tmp_path / "b")
    (tmp_path / "b" / "broken.png").write_bytes(b"garbage")
    with pytest.raises(DatasetFormatError, match=f"class directory '{tmp_path}/b' has no readable images"):
        image_folder(tmp_path, size=4)
    (tmp_path / "b" / "broken.png").unlink()
    _save(tmp_path / "b" / "0.png")
    with pytest.raises(DatasetFormatError, match="the test split is empty: test_fraction 0.2 of 3 images"):
        image_folder(tmp_path, size=4)


def test_a_file_that_changes_during_the_run_is_named(tmp_path):
    for c in ("a", "b"):
        for i in range(3):
            _save(tmp_path / c / f"{i}.png", value=50 + i)
    ds = image_folder(tmp_path, size=4, cache_mb=0, test_fraction=0.4)
    victim = ds.train_images.paths[0]
    with open(victim, "wb") as f:
        f.write(b"overwritten")
    with pytest.raises(ImageDecodeError, match=f"{victim}: .*it was readable when the folder was scanned"):
        ds.train_images[:]
    assert isinstance(ds.train_images, FolderImages)
