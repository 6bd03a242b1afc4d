"""Init time of every zoo model, first call in a fresh process: jcnn eager, jcnn under ``jax.jit``, and
torch building the same architecture (``jcnn.interop.torch_twins``, torchvision's modules and init).

    python -m benchmarks.init_times [--models resnet18 vgg16] [--size 224] [--repeat 1]

Each figure is measured in its own subprocess (imports excluded, the call and ``block_until_ready``
included), so nothing is cached from an earlier call. Not a test: these machines are noisy, so run it
on a quiet machine and read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

_CHILD = r"""
import json, sys, time
mode, name, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "torch":
    import torch
    from jcnn.interop import torch_twins
    from jcnn.models import MODELS
    torch.set_num_threads(int(sys.argv[4]))
    info = MODELS[name]
    t = time.perf_counter()
    module = torch_twins.twin(name, num_classes=info.num_classes, in_channels=info.in_channels)
    elapsed = time.perf_counter() - t
    params = sum(p.numel() for p in module.parameters())
else:
    import jax
    import jcnn
    from jcnn.models import MODELS
    info = MODELS[name]
    model = jcnn.models.get_model(name)
    shape = (1, size, size, info.in_channels) if name != "lenet5" else info.input_shape
    key = jax.random.PRNGKey(0)
    t = time.perf_counter()
    if mode == "eager":
        _, p, s = model.init(key, shape)
    else:
        p, s = jax.jit(lambda k: model.init(k, shape)[1:])(key)
    jax.block_until_ready((p, s))
    elapsed = time.perf_counter() - t
    params = sum(a.size for a in jax.tree_util.tree_leaves(p))
print(json.dumps({"seconds": elapsed, "params": int(params)}))
"""


def _run(mode: str, name: str, size: int, threads: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, name, str(size), str(threads)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    from jcnn.models import MODELS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=sorted(MODELS), help="zoo names (default: all)")
    parser.add_argument("--size", type=int, default=224, help="image size (LeNet-5 always uses 32)")
    parser.add_argument("--repeat", type=int, default=1, help="fresh processes per figure (the median is shown)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    rows = []
    print(f"{'model':<14}{'params':>13}{'jcnn eager s':>14}{'jcnn jit s':>12}{'torch s':>10}{'eager/torch':>13}")
    for name in args.models:
        figures = {}
        for mode in ("eager", "jit", "torch"):
            runs = [_run(mode, name, args.size, args.threads) for _ in range(args.repeat)]
            figures[mode] = statistics.median(r["seconds"] for r in runs)
            figures["params"] = runs[0]["params"]
        rows.append({"model": name, **figures})
        print(
            f"{name:<14}{figures['params']:>13,}{figures['eager']:>14.3f}{figures['jit']:>12.3f}"
            f"{figures['torch']:>10.3f}{figures['eager'] / figures['torch']:>13.2f}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
