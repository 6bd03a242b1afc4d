"""How the cost of a training step grows with batch size and image size.

    python -m benchmarks.sweep [--model resnet18] [--impls jcnn torch_cl] [--quick]

Times the train step (median after warm-up) for batch sizes 16…256 at the model's image size, then for
image sizes 32…128 at batch 16, and writes ``benchmarks/results/sweep.json`` and ``sweep.png``
(ms per step and images/s against batch; ms per step against pixels per image). Linear growth in
ms/step means the step is bound by work; a flat images/s curve at small batch means per-step overhead.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from benchmarks.compare import SETTINGS, build, timed

OUT = Path(__file__).parent / "results"


def measure(impl: str, model: str, batch: int, size: int, steps: int) -> dict:
    b = build(impl, model, batch, size)
    timed(b.step, 2)
    step = statistics.median(timed(b.step, steps))
    return {
        "impl": impl,
        "model": model,
        "batch": batch,
        "image_size": size,
        "step_ms": 1e3 * step,
        "imgs_per_s": batch / step,
        "compile_s": b.compile_s,
        "temp_bytes": b.temp_bytes,
    }


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for impl in dict.fromkeys(r["impl"] for r in rows):
        by_batch = [r for r in rows if r["impl"] == impl and r["sweep"] == "batch"]
        by_size = [r for r in rows if r["impl"] == impl and r["sweep"] == "size"]
        axes[0].plot([r["batch"] for r in by_batch], [r["step_ms"] for r in by_batch], "o-", label=impl)
        axes[1].plot([r["batch"] for r in by_batch], [r["imgs_per_s"] for r in by_batch], "o-", label=impl)
        axes[2].plot([r["image_size"] ** 2 for r in by_size], [r["step_ms"] for r in by_size], "o-", label=impl)
    model = rows[0]["model"]
    for ax, (xl, yl) in zip(axes, (("batch", "ms / step"), ("batch", "images / s"), ("pixels per image", "ms / step"))):
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_xscale("log", base=2)
    axes[1].set_xscale("log", base=2)
    axes[0].set_title(f"{model}: step time vs batch")
    axes[1].set_title(f"{model}: throughput vs batch")
    axes[2].set_title(f"{model}: step time vs image size (batch {rows[-1]['batch']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet18", choices=list(SETTINGS))
    parser.add_argument("--impls", nargs="+", default=["jcnn", "raw", "torch_cl"])
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 96, 128])
    parser.add_argument("--size-batch", type=int, default=16, help="batch for the image-size sweep")
    parser.add_argument("--quick", action="store_true", help="three batch sizes, two image sizes, 3 steps")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.sizes = [16, 64, 256], [32, 64]
    steps = 3 if args.quick else 7
    base = SETTINGS[args.model][1]
    rows = []
    t0 = time.perf_counter()
    for impl in args.impls:
        for batch in args.batches:
            rows.append({**measure(impl, args.model, batch, base, steps), "sweep": "batch"})
            print(f"{impl:8s} batch {batch:4d} @{base}: {rows[-1]['step_ms']:8.1f} ms", flush=True)
        for size in args.sizes:
            rows.append({**measure(impl, args.model, args.size_batch, size, steps), "sweep": "size"})
            print(f"{impl:8s} batch {args.size_batch:4d} @{size}: {rows[-1]['step_ms']:8.1f} ms", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sweep.json").write_text(
        json.dumps({"rows": rows, "wall_s": time.perf_counter() - t0}, indent=1) + "\n"
    )
    plot(rows, args.out / "sweep.png")
    print(f"wrote {args.out / 'sweep.json'} and sweep.png in {time.perf_counter() - t0:.0f}s")
    return rows


if __name__ == "__main__":
    main()
