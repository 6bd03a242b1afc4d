"""load_image against Pillow's own operations written out (modes, centre crop, stretch, EXIF, JPEG draft),
unreadable files by path, and the normalisation formula."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from jcnn.data import ImageDecodeError, load_image, normalize_pixels
from jcnn.data.images import check_size


def _rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_modes_convert_as_torchvision_loads(tmp_path):
    rgb = _rgb(6, 5)
    alpha = np.random.default_rng(1).integers(0, 256, (6, 5, 1), dtype=np.uint8)
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "rgba.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.bmp")
    # At the target size nothing is resampled: the pixels come back as stored, the alpha dropped.
    np.testing.assert_array_equal(load_image(tmp_path / "rgba.png", (6, 5)), rgb)
    np.testing.assert_array_equal(load_image(tmp_path / "rgb.bmp", (6, 5)), rgb)
    np.testing.assert_array_equal(load_image(tmp_path / "gray.png", (6, 5)), np.repeat(rgb[..., :1], 3, -1))
    gray = load_image(tmp_path / "rgb.bmp", (6, 5), color="grayscale")
    assert gray.shape == (6, 5, 1) and gray.dtype == np.uint8
    luma = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # ITU-R 601-2
    assert np.abs(gray[..., 0] - luma).max() <= 1.0
    palette = Image.fromarray(rgb).convert("P")
    palette.save(tmp_path / "p.png")
    np.testing.assert_array_equal(load_image(tmp_path / "p.png", (6, 5)), np.asarray(palette.convert("RGB")))


def test_sixteen_bit_grayscale_is_rounded_not_clipped(tmp_path):
    wide = np.array([[0, 128, 257, 32767], [32768, 40000, 65278, 65535]], np.uint16)
    Image.fromarray(wide).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    got = load_image(tmp_path / "deep.png", (2, 4), color="grayscale")[..., 0]
    np.testing.assert_array_equal(got, np.round(wide / 257.0).astype(np.uint8))


def test_crop_is_resize_of_the_shorter_side_then_centre_crop(tmp_path):
    """torchvision's Resize(10) + CenterCrop(10), done as one resample of the centre box."""
    rgb = _rgb(20, 40)  # wide 40x20 -> 20x10, centre columns 5..15
    img = Image.fromarray(rgb)
    img.save(tmp_path / "wide.png")
    want = np.asarray(img.resize((20, 10), Image.Resampling.BILINEAR).crop((5, 0, 15, 10)))
    np.testing.assert_array_equal(load_image(tmp_path / "wide.png", 10), want)
    want = np.asarray(img.resize((8, 6), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(load_image(tmp_path / "wide.png", (6, 8), resize="stretch"), want)
    tall = Image.fromarray(_rgb(30, 10, seed=2))  # tall 10x30 -> 5x15, centre rows 5..10
    tall.save(tmp_path / "tall.png")
    want = np.asarray(tall.resize((5, 15), Image.Resampling.BILINEAR).crop((0, 5, 5, 10)))
    np.testing.assert_array_equal(load_image(tmp_path / "tall.png", (5, 5)), want)
    # A non-square target keeps its own aspect ratio: 40x20 -> (H 4, W 6) uses the centre 30x20 box.
    want = np.asarray(img.resize((6, 4), Image.Resampling.BILINEAR, box=(5, 0, 35, 20)))
    np.testing.assert_array_equal(load_image(tmp_path / "wide.png", (4, 6)), want)


def test_exif_orientation_is_applied(tmp_path):
    rgb = _rgb(2, 3)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.fromarray(rgb).save(tmp_path / "phone.png", exif=exif)
    np.testing.assert_array_equal(load_image(tmp_path / "phone.png", (3, 2), resize="stretch"), np.rot90(rgb, -1))


def test_jpeg_draft_stays_close_to_a_full_decode(tmp_path):
    rows, cols = np.mgrid[0:480, 0:640]
    smooth = np.stack([rows * 255 // 480, cols * 255 // 640, (rows + cols) * 255 // 1120], -1).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "photo.jpg", quality=95)
    got = load_image(tmp_path / "photo.jpg", (12, 16)).astype(int)
    with Image.open(tmp_path / "photo.jpg") as img:
        full = np.asarray(img.convert("RGB").resize((16, 12), Image.Resampling.BILINEAR)).astype(int)
    assert np.abs(got - full).max() <= 6, np.abs(got - full).max()


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"this is text, not an image\n", "cannot identify image file"),
        (b"\xff\xd8\xff\xe0" + bytes(range(200)), ""),
        (None, "truncated"),
        (b"", "cannot identify image file"),
    ],
)
def test_unreadable_files_name_their_path(tmp_path, content, reason):
    path = tmp_path / "bad.png"
    if content is None:
        Image.fromarray(_rgb(40, 40)).save(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(ImageDecodeError, match=f"{path}: cannot read the image.*{reason}") as info:
        load_image(path, 8)
    assert info.value.path == str(path)
    assert isinstance(info.value, ValueError)
    with pytest.raises(ImageDecodeError, match="No such file"):
        load_image(tmp_path / "missing.png", 8)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"size must be an int >= 1 or a pair \(H, W\)"):
        check_size((0, 3))
    with pytest.raises(ValueError, match="color must be one of rgb, grayscale, got 'cmyk'"):
        load_image("x.png", 4, color="cmyk")
    with pytest.raises(ValueError, match="resize must be one of crop, stretch, got 'pad'"):
        load_image("x.png", 4, resize="pad")
    assert check_size(7) == (7, 7) and check_size([3, 5]) == (3, 5)


def test_normalize_pixels_formula():
    u8 = np.array([[[0, 51, 255]], [[255, 102, 0]]], np.uint8)  # (2, 1, 3)
    got = normalize_pixels(u8, mean=(0.5, 0.2, 0.1), std=(0.25, 0.5, 2.0))
    want = (u8.astype(np.float64) / 255 - np.array([0.5, 0.2, 0.1])) / np.array([0.25, 0.5, 2.0])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(normalize_pixels(u8), u8.astype(np.float32) / np.float32(255))
