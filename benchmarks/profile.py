"""Where a train step's time goes, per op category, for the JAX implementations and for torch.

    python -m benchmarks.profile --model resnet18 [--batch 16 --size 224] [--impls jcnn raw torch_cl]

JAX (``jcnn``, ``jcnn_xla``, ``raw``, ...): XLA's profiler, one event per thunk of the compiled step,
classified from the optimized HLO by :mod:`benchmarks.xla_profile`. torch: ``torch.profiler`` self CPU
time per aten op, classified by name (oneDNN's ``convolution_backward`` computes the input and kernel
gradients in one op, so torch has one backward-conv row). Times are milliseconds per step; the JAX rows
add up the threads' busy time, so with two cores they can exceed the step's wall time. Writes
``benchmarks/results/profile_<model>.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
from pathlib import Path

from benchmarks.compare import SETTINGS, build, timed
from benchmarks.xla_profile import categorize, parse_hlo, profile_compiled

OUT = Path(__file__).parent / "results"

TORCH_CATEGORIES = [
    # first match wins: backward names contain the forward ones
    ("conv bwd (d_input + d_kernel)", ("convolution_backward",)),
    ("conv fwd", ("mkldnn_convolution", "_convolution", "thnn_conv", "slow_conv")),
    ("max-pool bwd", ("max_pool2d_with_indices_backward",)),
    ("pool fwd", ("max_pool2d", "avg_pool", "adaptive_avg")),
    ("batch norm bwd", ("native_batch_norm_backward", "batch_norm_backward")),
    ("batch norm fwd", ("native_batch_norm", "_batch_norm_impl")),
    ("dot (linear)", ("addmm", "::mm", "matmul", "linear")),
    ("optimizer", ("_foreach", "sgd")),
    ("copy/transpose", ("copy_", "contiguous", "clone", "::to", "permute", "transpose")),
]


def torch_category(name: str) -> str:
    for cat, keys in TORCH_CATEGORIES:
        if any(k in name for k in keys):
            return cat
    return "elementwise/other"


def profile_torch(impl, steps: int) -> tuple[dict[str, float], dict[str, float], float]:
    import torch

    impl.step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            impl.step()
    per_op: collections.Counter = collections.Counter()
    for ev in prof.key_averages():
        per_op[ev.key] += ev.self_cpu_time_total / 1e3 / steps
    cats: collections.Counter = collections.Counter()
    for name, ms in per_op.items():
        cats[torch_category(name)] += ms
    wall = statistics.median(timed(impl.step, steps))
    return dict(cats), dict(per_op), wall * 1e3


def profile_jax(impl, steps: int) -> tuple[dict[str, float], dict[str, float], float]:
    import jax

    compiled = impl.extra["compiled"]
    per_op = profile_compiled(impl.step, steps)
    params = impl.extra["carry"]["carry"]
    kernels = {tuple(a.shape) for a in jax.tree_util.tree_leaves(params) if getattr(a, "ndim", 0) >= 3}
    text = compiled.as_text()
    cats = categorize(text, per_op, kernels)
    _, entry = parse_hlo(text)
    top = {f"{k} {entry.get(k, {}).get('shape', '')}": v for k, v in per_op.items()}
    wall = statistics.median(timed(impl.step, steps))
    return cats, top, wall * 1e3


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet18", choices=list(SETTINGS))
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--impls", nargs="+", default=["jcnn", "raw", "torch_cl"])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    batch, size = SETTINGS[args.model]
    batch, size = args.batch or batch, args.size or size
    result: dict = {"model": args.model, "batch": batch, "size": size, "impls": {}}
    for name in args.impls:
        impl = build(name, args.model, batch, size)
        impl.step()
        fn = profile_torch if name.startswith("torch") else profile_jax
        cats, per_op, wall = fn(impl, args.steps)
        top = dict(sorted(per_op.items(), key=lambda kv: -kv[1])[:25])
        result["impls"][name] = {"categories": cats, "wall_ms": wall, "busy_ms": sum(cats.values()), "top_ops": top}
        print(f"built and profiled {name}: step {wall:.0f} ms", flush=True)
    out = args.out or OUT / f"profile_{args.model}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    cats = sorted({c for r in result["impls"].values() for c in r["categories"]})
    names = list(result["impls"])
    print(f"\n{args.model} b{batch} {size}², ms per step (busy thread time; wall in the last row)\n")
    print("| category | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for c in sorted(cats, key=lambda c: -max(r["categories"].get(c, 0) for r in result["impls"].values())):
        print(f"| {c} | " + " | ".join(f"{result['impls'][n]['categories'].get(c, 0):.0f}" for n in names) + " |")
    print("| **sum (busy)** | " + " | ".join(f"{result['impls'][n]['busy_ms']:.0f}" for n in names) + " |")
    print("| **step (wall)** | " + " | ".join(f"{result['impls'][n]['wall_ms']:.0f}" for n in names) + " |")
    return result


if __name__ == "__main__":
    main()
