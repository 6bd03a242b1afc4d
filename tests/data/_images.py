"""Small image folders written with Pillow, so folder / predict / export tests never need real photos."""

from __future__ import annotations

import os

import numpy as np

CLASSES = ("hstripes", "plain", "vstripes")  # sorted: the labels are 0, 1, 2


def pattern(label: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 ``(height, width)`` of class ``label``: four horizontal stripes, a flat grey, or four
    vertical stripes (periods relative to the size, so they survive any resize, crop and flip), plus noise."""
    rows, cols = np.mgrid[0:height, 0:width]
    if label == 0:
        base = np.where((rows * 8 // height) % 2 == 0, 210, 40)
    elif label == 2:
        base = np.where((cols * 8 // width) % 2 == 0, 210, 40)
    else:
        base = np.full((height, width), 125)
    return np.clip(base + rng.normal(0, 12, (height, width)), 0, 255).astype(np.uint8)


def write_separable_folder(root: str | os.PathLike, per_class: int = 24, *, seed: int = 0) -> dict:
    """An ``ImageFolder`` of three separable classes, with everything a real folder has: odd sizes
    (12..40 px, not square), RGB, grayscale, RGBA and palette images as PNG/JPEG/BMP/WebP, nested
    directories, a hidden file, a text file, a corrupt file, a truncated PNG and a text file named .png.
    Returns ``{"bad": [paths that cannot be read], "ignored": [...], "images": n readable}``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    root = os.fspath(root)
    count = 0
    for label, name in enumerate(CLASSES):
        for i in range(per_class):
            h, w = (int(v) for v in rng.integers(12, 41, 2))
            gray = pattern(label, h, w, rng)
            tint = rng.uniform(0.6, 1.0, 3)
            rgb = np.clip(gray[..., None] * tint, 0, 255).astype(np.uint8)
            kind = i % 5
            img = {
                0: Image.fromarray(rgb),
                1: Image.fromarray(gray),
                2: Image.fromarray(np.dstack([rgb, np.full((h, w), 200, np.uint8)])),
                3: Image.fromarray(rgb).convert("P"),
                4: Image.fromarray(rgb),
            }[kind]
            ext = (".png", ".jpg", ".png", ".bmp", ".webp")[kind]
            sub = ("", "nested", os.path.join("nested", "deeper"))[i % 3]
            os.makedirs(os.path.join(root, name, sub), exist_ok=True)
            img.save(os.path.join(root, name, sub, f"{name}_{i:03d}{ext}"), quality=95)
            count += 1
    bad = [
        os.path.join(root, "plain", "corrupt.jpg"),
        os.path.join(root, "vstripes", "nested", "truncated.png"),
        os.path.join(root, "hstripes", "notes.png"),
    ]
    with open(bad[0], "wb") as f:
        f.write(b"\xff\xd8\xff\xe0" + bytes(rng.integers(0, 256, 300, dtype=np.uint8)))
    Image.fromarray(pattern(2, 30, 30, rng)).save(os.path.join(root, "full.png"))  # a loose file at the root
    with open(os.path.join(root, "full.png"), "rb") as f:
        data = f.read()
    os.unlink(os.path.join(root, "full.png"))
    with open(bad[1], "wb") as f:
        f.write(data[: len(data) // 2])
    with open(bad[2], "w") as f:
        f.write("not an image\n")
    ignored = [os.path.join(root, "plain", "README.txt")]
    with open(ignored[0], "w") as f:
        f.write("what these images are\n")
    with open(os.path.join(root, "plain", ".DS_Store"), "wb") as f:
        f.write(b"\x00\x01")
    return {"bad": sorted(bad), "ignored": ignored, "images": count}
