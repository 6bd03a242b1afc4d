"""Step time of ``fit`` on an image folder with and without the prefetching thread.

    python -m benchmarks.prefetch                  # 1,024 JPEGs of 320×240, LeNet-5 at 32×32 RGB, batch 64
    python -m benchmarks.prefetch --quick          # 256 JPEGs, one measured epoch: well under a minute

Writes a synthetic folder of JPEG "photos" (smooth colour fields plus noise, 4 classes), then trains on
it with ``jcnn.training.train.fit`` three ways: images decoded for every batch in the training loop
(``cache_mb=0, prefetch=0``), decoded for every batch by the prefetching thread (``cache_mb=0,
prefetch=2``), and all decoded once into the cache (``prefetch=0``; the floor: indexing and the step
alone). The first epoch compiles and is not counted; the step time is the training loop's wall time
per step over the measured epochs (evaluation excluded), as ``fit`` reports it (``images_per_s``).
The modes take turns epoch by epoch, so a slow patch of a shared machine hits them alike. Prints a
table and writes ``benchmarks/results/prefetch.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "prefetch.json"
MODES = {
    "decode in loop": {"cache_mb": 0, "prefetch": 0},
    "decode in prefetch thread": {"cache_mb": 0, "prefetch": 2},
    "cached (floor)": {"cache_mb": 4096, "prefetch": 0},
}


def write_photos(root: str, n: int, width: int, height: int, seed: int = 0) -> None:
    """``n`` JPEGs (quality 90) in 4 class directories: a smooth colour field per class plus noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width] / max(width, height)
    for i in range(n):
        label = i % 4
        d = os.path.join(root, f"class_{label}")
        os.makedirs(d, exist_ok=True)
        phase = rng.uniform(0, 2 * np.pi, 3)
        field = np.stack([np.sin(6 * (rows + cols * (label + 1) / 4) + p) for p in phase], -1)
        img = np.clip(127 + 90 * field + rng.normal(0, 20, (height, width, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(os.path.join(d, f"{i:05d}.jpg"), quality=90)


def run(args: argparse.Namespace) -> dict:
    import jax

    from jcnn.cli import train as cli_train
    from jcnn.data import image_folder
    from jcnn.training.train import fit

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_photos(tmp, args.images, args.width, args.height)
        written = time.perf_counter() - t0
        model = cli_train._build_model(args.model, 4, 3)
        optimizer = cli_train.make_optimizer("adamw", 1e-3, weight_decay=0.05)
        folders = {
            name: image_folder(tmp, size=args.size, cache_mb=m["cache_mb"], test_fraction=0.1, workers=args.workers)
            for name, m in MODES.items()
        }
        steps = {name: [] for name in MODES}
        common = dict(batch_size=args.batch, progress=False, log=lambda msg: None, eval_batch_size=256)
        state = {}
        for epoch in range(args.epochs + 1):  # epoch 0 compiles (once: the same model and optimizer)
            for name, mode in MODES.items():
                ds = folders[name]
                result = fit(
                    model,
                    optimizer,
                    (ds.train_images, ds.train_labels),
                    (ds.test_images[:64], ds.test_labels[:64]),
                    epochs=1,
                    seed=epoch,
                    prefetch=mode["prefetch"],
                    train_state=state.get(name),
                    **common,
                )
                state[name] = jax.tree_util.tree_map(lambda a: a.copy(), result.state)
                if epoch > 0:
                    steps[name].append(args.batch / result.history[-1]["images_per_s"])
        n_train = len(folders["cached (floor)"].train_images)
    table = {
        name: {"step_ms_median": 1e3 * statistics.median(v), "step_ms_all": [1e3 * s for s in v], **MODES[name]}
        for name, v in steps.items()
    }
    return {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "model": args.model,
        "input": args.size,
        "batch": args.batch,
        "train_images": n_train,
        "photo": f"{args.width}x{args.height} JPEG q90",
        "decode_workers": args.workers or min(8, os.cpu_count() or 1),
        "measured_epochs": args.epochs,
        "seconds_to_write_folder": written,
        "modes": table,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=1024)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--size", type=int, default=32, help="the model's input (square)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--model", default="lenet5")
    p.add_argument("--epochs", type=int, default=3, help="measured epochs (after one that compiles)")
    p.add_argument("--workers", type=int, default=None, help="decoding threads (default min(8, cores))")
    p.add_argument("--quick", action="store_true", help="256 images, one measured epoch")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    if args.quick:
        args.images, args.epochs = 256, 1
    result = run(args)
    print(
        f"{result['model']} at {args.size}x{args.size}x3, batch {args.batch}, {result['train_images']} training "
        f"images ({result['photo']}), {result['decode_workers']} decoding threads, {result['machine']}"
    )
    floor = result["modes"]["cached (floor)"]["step_ms_median"]
    for name, row in result["modes"].items():
        print(f"  {name:28s} {row['step_ms_median']:7.1f} ms/step  ({row['step_ms_median'] / floor:4.2f}x the floor)")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
