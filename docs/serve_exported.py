#!/usr/bin/env python3
"""Serve a classifier written by `jcnn export`, with jax, flatbuffers, NumPy and Pillow only (no jcnn).

    python serve_exported.py model.jax IMAGE [IMAGE ...]     # print one JSON line per image
    python serve_exported.py model.jax --http 8000           # serve POST /predict (the image's bytes)

    curl --data-binary @cat.jpg http://localhost:8000/predict
    {"top_k": [{"index": 3, "class": "cat", "probability": 0.97}, ...]}

`model.jax` is the serialized jax.export artifact (the normalisation, the network and its trained
parameters, for any batch size); `model.jax.json` next to it says how to decode images for it and names
the classes. `Model.pixels` decodes exactly as jcnn does (jcnn.data.load_image), so the scores are
those of `jcnn predict`.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from jax import export
from PIL import Image, ImageOps


class Model:
    """The artifact and its description; ``predict`` takes encoded images (PNG/JPEG/BMP/WebP bytes)."""

    def __init__(self, path: str) -> None:
        with open(path, "rb") as f:
            self.exported = export.deserialize(bytearray(f.read()))
        with open(path + ".json") as f:
            self.info = json.load(f)
        _, self.height, self.width, self.channels = self.info["input"]["shape"]
        self.classes = self.info["class_names"]

    def pixels(self, data: bytes) -> np.ndarray:
        """One image as float32 (H, W, C) = u8 / 255: orientation, colour, centre crop or stretch."""
        h, w = self.height, self.width
        mode = "RGB" if self.info["input"]["color"] == "rgb" else "L"
        crop = self.info["input"]["resize"] == "crop"
        with Image.open(io.BytesIO(data)) as img:
            if img.format == "JPEG":  # decode at the smallest DCT scale that still covers the output
                iw, ih = img.size
                turned = img.getexif().get(0x0112, 1) in (5, 6, 7, 8)
                tw, th = (h, w) if turned else (w, h)
                scale = max(tw / iw, th / ih)
                img.draft(mode, (max(1, math.ceil(iw * scale)), max(1, math.ceil(ih * scale))) if crop else (tw, th))
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):  # 16-bit grey: round to 8 bits
                wide = np.clip(np.asarray(img, dtype=np.int64), 0, 65535)
                img = Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8), "L")
            elif img.mode in ("P", "PA"):
                img = img.convert("RGBA")
            img = img if img.mode == mode else img.convert(mode)
            if img.size != (w, h):
                box = None
                if crop:  # the largest centred box of the output's aspect ratio
                    iw, ih = img.size
                    if iw * h > ih * w:
                        bw = ih * w / h
                        box = ((iw - bw) / 2, 0.0, (iw + bw) / 2, float(ih))
                    else:
                        bh = iw * h / w
                        box = (0.0, (ih - bh) / 2, float(iw), (ih + bh) / 2)
                img = img.resize((w, h), Image.Resampling.BILINEAR, box=box)
            u8 = np.asarray(img, dtype=np.uint8).reshape(h, w, self.channels)
        return u8.astype(np.float32) / np.float32(255.0)

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        """float32 (b, H, W, C) pixels in [0, 1] -> float32 (b, classes) logits, any batch size b."""
        return np.asarray(self.exported.call(pixels))

    def predict(self, images: list[bytes], k: int = 5) -> list[list[dict]]:
        """The ``k`` most probable classes of each encoded image, best first."""
        z = self.logits(np.stack([self.pixels(d) for d in images])).astype(np.float64)
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        order = np.argsort(-p, axis=1, kind="stable")[:, :k]
        return [
            [{"index": int(i), "class": self.classes[i], "probability": float(row[i])} for i in best]
            for best, row in zip(order, p)
        ]


def make_server(model: Model, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """An HTTP server: ``POST /predict`` with an image as the body answers ``{"top_k": [...]}``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            if self.path.split("?")[0] != "/predict":
                return self._answer(404, {"error": "POST an image to /predict"})
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                top = model.predict([body])[0]
            except Exception as exc:  # noqa: BLE001 - a bad upload is the client's error
                return self._answer(400, {"error": f"cannot classify the upload: {exc}"})
            self._answer(200, {"top_k": top})

        def _answer(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt: str, *args: object) -> None:
            print(f"{self.address_string()} {fmt % args}", file=sys.stderr)

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the artifact written by jcnn export (model.jax; model.jax.json beside it)")
    parser.add_argument("images", nargs="*", help="image files to classify")
    parser.add_argument("--http", type=int, metavar="PORT", help="serve POST /predict on this port instead")
    parser.add_argument("-k", type=int, default=5, help="classes per image (default 5)")
    args = parser.parse_args(argv)
    model = Model(args.model)
    if args.http is not None:
        server = make_server(model, "0.0.0.0", args.http)
        print(f"serving {args.model} on port {server.server_address[1]}: POST an image to /predict", file=sys.stderr)
        server.serve_forever()
        return 0
    for path in args.images:
        with open(path, "rb") as f:
            print(json.dumps({"image": path, "top_k": model.predict([f.read()], args.k)[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
