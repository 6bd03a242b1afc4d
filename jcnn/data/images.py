"""Image files → uint8 arrays at a model's input size, decoded with Pillow (the ``train`` extra).

``load_image(path, (H, W), color=, resize=)`` is the one decoder that training (:func:`image_folder`),
``jcnn predict`` and the serving example follow, step by step:

1. open with Pillow (PNG, JPEG, BMP, WebP; the first frame of an animation) and apply the EXIF
   orientation (phone photos are stored sideways with a tag that says so);
2. colour: ``"rgb"`` → ``RGB`` (an alpha channel is dropped, as torchvision's loader does; palette images
   go through ``RGBA``), ``"grayscale"`` → ``L`` (ITU-R 601-2 luma ``0.299 R + 0.587 G + 0.114 B``);
   16-bit grayscale is rounded to 8 bits (``round(v · 255 / 65535)``; Pillow's own conversion clips);
3. size: ``"crop"`` resamples the largest centred box of the target's aspect ratio (torchvision's
   ``Resize`` of the shorter side then ``CenterCrop``, in one step), ``"stretch"`` the whole image;
   bilinear, antialiased when shrinking (Pillow's ``resize``). JPEGs are first decoded at the smallest
   DCT scale (1/2, 1/4, 1/8) that still covers that size (``Image.draft``), which makes large photos cheap.

The network then sees ``pixels = u8 / 255`` normalised per channel, ``(pixels − mean) / std``
(:func:`normalize_pixels`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from jcnn.data.base import DatasetFormatError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
"""The file name endings read as images (case-insensitive); other files in a folder are ignored."""
COLORS = {"rgb": ("RGB", 3), "grayscale": ("L", 1)}
"""``color`` name → (Pillow mode, channels)."""
RESIZE_MODES = ("crop", "stretch")
"""The values of ``resize``: the centred box of the target's aspect ratio, or the whole image."""
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_EXIF_ORIENTATION = 0x0112


class ImageDecodeError(DatasetFormatError):
    """A file that Pillow cannot read as an image (not an image, corrupt, truncated); names the path."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: cannot read the image ({reason})")
        self.path, self.reason = path, reason


def pillow() -> Any:
    """The ``PIL.Image`` module, imported on first use; a clear ``ImportError`` when Pillow is missing."""
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - Pillow is part of the train and test extras
        raise ImportError(
            "reading image files needs Pillow, which is not installed; install it with "
            "`pip install 'jcnn[train]'` (or `pip install pillow`)"
        ) from exc
    return Image


def check_size(size: int | Sequence[int]) -> tuple[int, int]:
    """``size`` as ``(H, W)`` (an int means a square), each an int ``>= 1``."""
    pair = (size, size) if isinstance(size, (int, np.integer)) and not isinstance(size, bool) else size
    if (
        not isinstance(pair, (tuple, list))
        or len(pair) != 2
        or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1 for d in pair)
    ):
        raise ValueError(f"size must be an int >= 1 or a pair (H, W) of them, got {size!r}")
    return int(pair[0]), int(pair[1])


def check_color(color: str) -> tuple[str, int]:
    """Pillow's mode and the channel count for ``color`` (``"rgb"`` or ``"grayscale"``)."""
    if color not in COLORS:
        raise ValueError(f"color must be one of {', '.join(COLORS)}, got {color!r}")
    return COLORS[color]


def check_resize(resize: str) -> str:
    """``resize`` itself when it is one of :data:`RESIZE_MODES`; a ``ValueError`` otherwise."""
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
    return resize


def _crop_box(width: int, height: int, tw: int, th: int) -> tuple[float, float, float, float]:
    """The largest box of aspect ``tw/th`` centred in a ``width × height`` image (float pixel edges)."""
    if width * th > height * tw:  # wider than the target: cut the sides
        w = height * tw / th
        return ((width - w) / 2, 0.0, (width + w) / 2, float(height))
    h = width * th / tw
    return (0.0, (height - h) / 2, float(width), (height + h) / 2)


def _draft(img: Any, mode: str, tw: int, th: int, resize: str) -> None:
    """Ask the JPEG decoder for the smallest DCT scale whose result still covers the final resample."""
    if getattr(img, "format", None) != "JPEG":
        return
    width, height = img.size
    try:
        turned = img.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8)
    except Exception:  # noqa: BLE001 - a broken EXIF block only costs the speed-up
        turned = False
    if turned:
        tw, th = th, tw
    if resize == "crop":
        scale = max(tw / width, th / height)
        want = (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale)))
    else:
        want = (tw, th)
    img.draft(mode, want)


def _to_mode(img: Any, mode: str) -> Any:
    Image = pillow()
    if img.mode in _SIXTEEN_BIT:
        wide = np.clip(np.asarray(img, dtype=np.int64), 0, 65535)
        img = Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8), "L")
    elif img.mode in ("P", "PA"):
        img = img.convert("RGBA")
    return img if img.mode == mode else img.convert(mode)


def load_image(
    path: str | os.PathLike[str], size: int | Sequence[int], *, color: str = "rgb", resize: str = "crop"
) -> np.ndarray:
    """Decode one image file to uint8 ``(H, W, C)`` (``C`` = 3 for ``"rgb"``, 1 for ``"grayscale"``).

    Raises :class:`ImageDecodeError` (a ``ValueError``) naming ``path`` for a file Pillow cannot read:
    not an image, an unsupported format, corrupt or truncated data.
    """
    th, tw = check_size(size)
    mode, channels = check_color(color)
    check_resize(resize)
    Image = pillow()
    from PIL import ImageOps

    path = os.fspath(path)
    try:
        with Image.open(path) as img:
            _draft(img, mode, tw, th, resize)
            img.load()
            img = ImageOps.exif_transpose(img)
            img = _to_mode(img, mode)
            if img.size != (tw, th):
                width, height = img.size
                box = _crop_box(width, height, tw, th) if resize == "crop" else None
                img = img.resize((tw, th), Image.Resampling.BILINEAR, box=box)
            arr = np.asarray(img, dtype=np.uint8)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types (OSError, SyntaxError, ValueError, ...)
        raise ImageDecodeError(path, " ".join(str(exc).split()) or type(exc).__name__) from exc
    return arr.reshape(th, tw, channels)


def normalize_pixels(
    images: np.ndarray, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
) -> np.ndarray:
    """uint8 images ``(..., C)`` → float32 ``(u8 / 255 − mean) / std`` per channel (only ``u8 / 255``
    without ``mean``/``std``). This is the network's input in training, ``jcnn predict`` and export."""
    x: np.ndarray = np.asarray(images).astype(np.float32) / np.float32(255.0)
    if mean is None:
        return x
    out: np.ndarray = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return out
