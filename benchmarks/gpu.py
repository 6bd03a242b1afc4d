"""GPU benchmark: ResNet-50 (224², bfloat16 compute, batch 128) and ResNet-18 train steps as jcnn, PyTorch
eager and ``torch.compile`` in one run, with model FLOP utilisation against the card's measured bfloat16
matmul rate. Run by ``benchmarks/gpu.sh``; ``GPU_BENCH_TINY=1`` shrinks everything so that the script
can be checked on a CPU.

MFU = (FLOPs of one train step, from XLA's cost analysis of jcnn's compiled step) / step time / (measured
dense bfloat16 matmul FLOP/s). The same FLOP count is used for every implementation (same network).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jcnn
from benchmarks.compare import versions

TINY = os.environ.get("GPU_BENCH_TINY", "") not in ("", "0")
OUT = Path(__file__).parent / "results" / "gpu.json"


def _median_s(fn, n: int) -> float:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def matmul_rate(size: int, steps: int) -> dict[str, float]:
    """Dense bfloat16 matmul FLOP/s (``size``³ · 2 per product), by JAX and by torch."""
    a = jnp.asarray(np.random.default_rng(0).standard_normal((size, size)), jnp.bfloat16)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    out = {"jax": 2 * size**3 / _median_s(lambda: f(a).block_until_ready(), steps)}
    import torch

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    t = torch.randn(size, size, device=dev, dtype=torch.bfloat16)

    def tm():
        r = t @ t
        if dev == "cuda":
            torch.cuda.synchronize()
        return r

    tm()
    out["torch"] = 2 * size**3 / _median_s(tm, steps)
    return out


def jcnn_step(model: str, batch: int, size: int, steps: int) -> dict:
    net = jcnn.scale.precision.with_policy(getattr(jcnn.models, model)(num_classes=1000), "mixed_bfloat16")
    _, params, state = net.init(jax.random.key(0), (1, size, size, 3))
    opt = jcnn.optim.sgd(0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((batch, size, size, 3)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 1000, batch), jnp.int32)

    def loss_fn(p, s):
        logits, s = net.apply(p, s, x, train=True)
        return jcnn.losses.softmax_cross_entropy(logits, y), s

    def step(carry):
        p, s, o = carry
        (loss, s), g = jax.value_and_grad(loss_fn, has_aux=True)(p, s)
        u, o = opt.update(g, o, p)
        return (jcnn.optim.apply_updates(p, u), s, o), loss

    carry = (params, state, opt.init(params))
    t0 = time.perf_counter()
    compiled = jax.jit(step, donate_argnums=0).lower(carry).compile()
    compile_s = time.perf_counter() - t0
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get("flops", 0.0)) if cost else 0.0
    box = {"c": carry}

    def run():
        box["c"], loss = compiled(box["c"])
        loss.block_until_ready()

    run()
    run()
    return {"step_s": _median_s(run, steps), "compile_s": compile_s, "flops": flops}


def torch_step(model: str, batch: int, size: int, steps: int, compiled: bool) -> dict:
    import torch

    from jcnn.interop.torch_twins import twin

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    net = twin(model, 1000, 3).to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(batch, 3, size, size, device=dev).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=dev)
    fwd = torch.compile(net) if compiled else net

    def run():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=dev, dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(fwd(x), y)
        loss.backward()
        opt.step()
        if dev == "cuda":
            torch.cuda.synchronize()

    t0 = time.perf_counter()
    run()
    first = time.perf_counter() - t0
    run()
    return {"step_s": _median_s(run, steps), "compile_s": first if compiled else None}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if TINY:
        configs, steps, mm = [("resnet50", 2, 32), ("resnet18", 2, 32)], 2, 256
    else:
        configs, steps, mm = [("resnet50", 128, 224), ("resnet18", 256, 224)], 20, 8192
    rate = matmul_rate(mm, steps)
    peak = max(rate.values())
    rows = []
    for model, batch, size in configs:
        j = jcnn_step(model, batch, size, steps)
        flops = j["flops"]
        row_j = {"impl": "jcnn", **j}
        results = [row_j]
        for name, comp in (("torch", False), ("torch.compile", True)):
            try:
                results.append({"impl": name, **torch_step(model, batch, size, steps, comp)})
            except Exception as err:  # torch.compile needs a working toolchain; report, don't fail the run
                results.append({"impl": name, "error": f"{type(err).__name__}: {str(err)[:200]}"})
        for r in results:
            r.update(model=model, batch=batch, image_size=size)
            if "step_s" in r:
                r["imgs_per_s"] = batch / r["step_s"]
                r["mfu"] = flops / r["step_s"] / peak if flops else None
            rows.append(r)
            print(json.dumps(r), flush=True)
    result = {
        "rows": rows,
        "matmul_bf16_flops": rate,
        "tiny": TINY,
        "device": str(jax.devices()[0]),
        "versions": versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print("| model | impl | imgs/s | MFU | compile s |\n|---|---|---:|---:|---:|")
    for r in rows:
        if "step_s" in r:
            mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") else "-"
            comp = f"{r['compile_s']:.1f}" if r.get("compile_s") else "-"
            print(
                f"| {r['model']} {r['batch']}×{r['image_size']}² | {r['impl']} | {r['imgs_per_s']:.0f} | {mfu} | {comp} |"
            )
        else:
            print(f"| {r['model']} | {r['impl']} | error: {r['error'][:60]} | | |")
    return result


if __name__ == "__main__":
    main()
