"""Time the same models as jcnn, raw ``lax``, Flax NNX, Equinox and PyTorch eager, in one process.

    python -m benchmarks.compare            # full run (make bench)
    python -m benchmarks.compare --quick    # LeNet-5, CIFAR ResNet-18, ResNet-18 at 224², one round, < 6 min

Configurations (model, batch, image size): ResNet-18, ResNet-50 and MobileNet v2 at 224² (batch 16), a
CIFAR ResNet-18 (3×3 stem, no max pool) and VGG-11-BN at 32² (batch 128), LeNet-5 at 32² (batch 128).
For every configuration and implementation: train-step images/s (median of per-step times after warm-up,
each step blocked on), achieved GFLOP/s (the FLOPs of raw ``lax``'s compiled step from XLA's
``cost_analysis()``, the same count for every implementation of the network, over the step time) and its
fraction of the fp32 matmul rate (XLA ``dot`` of two 2048² matrices, measured right before the
configuration's timing rounds), compile time of the jitted step, batch-1 inference latency (median), and
the temporary bytes of the compiled step (``compiled.memory_analysis()``). The implementations of a
configuration take turns round by round, so a slow patch of a shared machine hits them alike. Prints a
table with ratios to raw ``lax`` and writes ``benchmarks/results/latest.json``.

``--quick`` is one round that stops timing an implementation's steps once 8 s of them are spent (at
least one after its warm-up; each row's ``steps_timed`` says how many): the CIFAR ResNet-18 peers' 16 s
steps are timed once, so the run ends in under 6 minutes. Its ratios are single measurements; the full
run (4 rounds of 3 steps) is the one to quote.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

IMPLS = ("jcnn", "raw", "flax", "equinox", "torch", "torch_cl")
# "jcnn_xla": jcnn with every conv on lax.conv_general_dilated, as the raw program: its overhead alone.
EXTRA_IMPLS = ("jcnn_xla",)
MODULES = {
    "jcnn": "jcnn_models",
    "jcnn_xla": "jcnn_models",
    "raw": "raw_lax",
    "flax": "flax_nnx",
    "equinox": "equinox_models",
    "torch": "torch_models",
    "torch_cl": "torch_models",
}
# model → (batch, image size)
SETTINGS = {
    "lenet5": (128, 32),
    "cifar_resnet18": (128, 32),
    "resnet18": (16, 224),
    "vgg11_bn": (128, 32),
    "resnet50": (16, 224),
    "mobilenet_v2": (16, 224),
}
QUICK = ("lenet5", "cifar_resnet18", "resnet18")
QUICK_STEP_BUDGET_S = 8.0
RESULTS = Path(__file__).parent / "results" / "latest.json"


def build(impl: str, model: str, batch: int, size: int) -> Any:
    module = importlib.import_module(f"benchmarks.impls.{MODULES[impl]}")
    if impl == "torch_cl":
        return module.build(model, batch, size, channels_last=True)
    if impl == "jcnn_xla":
        return module.build(model, batch, size, xla_only=True)
    return module.build(model, batch, size)


def timed(fn: Any, n: int, budget_s: float | None = None) -> list[float]:
    """Seconds of each of ``n`` blocking calls of ``fn``; with ``budget_s``, stop early once the calls so
    far took that long (at least one call)."""
    out: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
        if budget_s is not None and sum(out) >= budget_s:
            break
    return out


def matmul_rate(size: int = 2048, calls: int = 5) -> dict[str, float]:
    """fp32 GFLOP/s of one ``size``² × ``size``² product: XLA's ``dot`` (jitted) and torch's ``mm``
    (median of ``calls``)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    a = jnp.asarray(np.random.default_rng(0).standard_normal((size, size)), jnp.float32)
    f = jax.jit(lambda m: m @ m)
    f(a).block_until_ready()
    out = {"xla": 2 * size**3 / statistics.median(timed(lambda: f(a).block_until_ready(), calls)) / 1e9}
    try:
        import torch
    except ImportError:
        return out
    t = torch.from_numpy(np.array(a))  # a writable copy
    t @ t
    out["torch"] = 2 * size**3 / statistics.median(timed(lambda: t @ t, calls)) / 1e9
    return out


def reference_flops(model: str, batch: int, size: int, built: dict) -> float | None:
    """FLOPs of one train step of the network: raw ``lax``'s compiled step (plain XLA convolutions), built
    here if the run does not time it."""
    if "raw" not in built:
        built = {"raw": build("raw", model, batch, size)}
    return built["raw"].extra.get("flops")


def run_model(
    model: str,
    impls: list[str],
    rounds: int,
    steps: int,
    warmup: int,
    latency_calls: int,
    log: Any,
    step_budget_s: float | None = None,
) -> list[dict]:
    batch, size = SETTINGS[model]
    built = {}
    for impl in impls:
        t0 = time.perf_counter()
        built[impl] = build(impl, model, batch, size)
        timed(built[impl].step, warmup)
        timed(built[impl].infer, 2)
        log(f"  built {impl:9s} {model} in {time.perf_counter() - t0:5.1f}s")
    flops = reference_flops(model, batch, size, built)
    rate = matmul_rate()
    log(f"  matmul 2048²: XLA {rate['xla']:.0f} GFLOP/s" + (f", torch {rate['torch']:.0f}" if "torch" in rate else ""))
    step_times: dict[str, list[float]] = {i: [] for i in impls}
    lat_times: dict[str, list[float]] = {i: [] for i in impls}
    for _ in range(rounds):
        for impl in impls:
            step_times[impl] += timed(built[impl].step, steps, step_budget_s)
            lat_times[impl] += timed(built[impl].infer, latency_calls)
    rows = []
    for impl in impls:
        step = statistics.median(step_times[impl])
        gflops = flops / step / 1e9 if flops else None
        rows.append(
            {
                "impl": impl,
                "model": model,
                "batch": batch,
                "size": size,
                "imgs_per_s": batch / step,
                "gflops_per_s": gflops,
                "flops_per_step": flops,
                "matmul_gflops": rate["xla"],
                "torch_mm_gflops": rate.get("torch"),
                "matmul_fraction": gflops / rate["xla"] if gflops else None,
                "step_ms": 1e3 * step,
                "step_ms_iqr": 1e3 * _iqr(step_times[impl]),
                "steps_timed": len(step_times[impl]),
                "compile_s": built[impl].compile_s,
                "latency_ms": 1e3 * statistics.median(lat_times[impl]),
                "temp_bytes": built[impl].temp_bytes,
            }
        )
    return rows


def _iqr(values: list[float]) -> float:
    if len(values) < 4:
        return 0.0
    q = statistics.quantiles(values, n=4)
    return q[2] - q[0]


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("jax", "jaxlib", "flax", "equinox", "optax", "torch", "numpy"):
        try:
            out[name] = importlib.import_module(name).__version__
        except ImportError:
            pass
    return out


def machine() -> str:
    import jax

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, jax backend {jax.default_backend()}, {platform.system()} {platform.release()}"
    )


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def table(rows: list[dict]) -> str:
    """A markdown table: one line per (model, impl), throughput ratios to raw lax and to jcnn."""
    lines = [
        "| model | batch×size | impl | imgs/s | GFLOP/s | of matmul | ×raw | jcnn/impl | compile s | "
        "b1 latency ms | temp MiB |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model in dict.fromkeys(r["model"] for r in rows):
        group = {r["impl"]: r for r in rows if r["model"] == model}
        raw = group.get("raw", {}).get("imgs_per_s")
        jc = group.get("jcnn", {}).get("imgs_per_s")
        for impl, r in group.items():
            comp = f"{r['compile_s']:.1f}" if r["compile_s"] is not None else "-"
            mem = f"{r['temp_bytes'] / 2**20:.1f}" if r["temp_bytes"] is not None else "-"
            gf = f"{r['gflops_per_s']:.0f}" if r.get("gflops_per_s") else "-"
            frac = f"{100 * r['matmul_fraction']:.0f}%" if r.get("matmul_fraction") else "-"
            lines.append(
                f"| {model} | {r['batch']}×{r['size']}² | {impl} | {r['imgs_per_s']:.1f} | {gf} | {frac} | "
                f"{ratio(r['imgs_per_s'], raw)} | {ratio(jc, r['imgs_per_s'])} | {comp} | "
                f"{r['latency_ms']:.2f} | {mem} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one round of up to 3 steps (fewer once 8 s are spent); LeNet-5, CIFAR ResNet-18 and ResNet-18 "
        "at 224² unless --models",
    )
    parser.add_argument(
        "--models", nargs="+", default=None, choices=list(SETTINGS), help="default: every configuration"
    )
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=list(IMPLS + EXTRA_IMPLS))
    parser.add_argument("--rounds", type=int, default=None, help="rounds of interleaved timing")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 4)
    steps, warmup, calls = (3, 1, 5) if args.quick else (3, 1, 10)
    # --quick: an implementation whose steps take long stops after QUICK_STEP_BUDGET_S of them (at least
    # one timed step after its warm-up); "steps_timed" in each row says how many were timed
    budget = QUICK_STEP_BUDGET_S if args.quick else None
    models = args.models or (list(QUICK) if args.quick else list(SETTINGS))

    def log(msg: str) -> None:
        print(msg, flush=True)

    start = time.perf_counter()
    rows = []
    for model in models:
        log(f"{model}: batch {SETTINGS[model][0]}, {SETTINGS[model][1]}x{SETTINGS[model][1]}")
        rows += run_model(model, args.impls, rounds, steps, warmup, calls, log, budget)
    result = {
        "rows": rows,
        "versions": versions(),
        "machine": machine(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick" if args.quick else "full",
        "rounds": rounds,
        "steps_per_round": steps,
        "step_budget_s": budget,
        "wall_s": time.perf_counter() - start,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    log("")
    log(table(rows))
    log(f"\n{result['date']} · {result['machine']}\n{result['versions']}\nwall {result['wall_s']:.0f}s → {args.out}")
    return result


if __name__ == "__main__":
    main()
