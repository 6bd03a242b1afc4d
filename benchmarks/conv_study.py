"""Convolution lowerings built from ``lax`` primitives, timed forward and backward on the zoo's shapes.

    python -m benchmarks.conv_study [--quick] [--out benchmarks/results/conv_study.json]

Lowerings (channels-last data unless named):
  ``xla``       ``lax.conv_general_dilated`` NHWC/HWIO (jcnn's ``algorithm="xla"``)
  ``xla_nchw``  the same op with NCHW/OIHW operands (a layout choice; transposes not counted)
  ``im2col``    jcnn's ``algorithm="im2col"``: strided patch slices and one ``dot_general``
  ``direct``    jcnn's ``algorithm="direct"``: Σ over kernel taps of a strided slice times the tap
                (elementwise for depthwise convs, one ``dot_general`` per tap otherwise)
  ``winograd``  F(2×2, 3×3): 4×4 input tiles at stride 2, ``BᵀdB`` by adds, 16 matmuls, ``AᵀMA``
  ``fft``       ``rfft2`` of the padded input and kernel, a per-frequency contraction over channels, ``irfft2``
  ``xla_dwdot`` ``xla`` forward and input gradient, kernel gradient as one matmul per kernel offset
For each: forward time, and forward+backward time (``jax.vjp`` with a fixed cotangent, gradients with
respect to input and kernel), median of repeats after warm-up, lowerings interleaved; and torch's
``conv2d`` forward+backward in channels-last memory format as the reference. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jcnn.ops import conv as jcnn_conv

# name, (N, H, W, C_in), kernel, C_out, stride, padding, groups
SHAPES = [
    ("issue: 3x3 32→32 @32²", (64, 32, 32, 32), 3, 32, 1, 1, 1),
    ("lenet conv1 5x5 1→6", (128, 32, 32, 1), 5, 6, 1, 0, 1),
    ("lenet conv2 5x5 6→16", (128, 14, 14, 6), 5, 16, 1, 0, 1),
    ("resnet stem 7x7/2 3→64", (64, 32, 32, 3), 7, 64, 2, 3, 1),
    ("resnet l1 3x3 64→64 @8²", (64, 8, 8, 64), 3, 64, 1, 1, 1),
    ("resnet l2 3x3/2 64→128", (64, 8, 8, 64), 3, 128, 2, 1, 1),
    ("resnet l2 3x3 128→128 @4²", (64, 4, 4, 128), 3, 128, 1, 1, 1),
    ("resnet l3 3x3 256→256 @2²", (64, 2, 2, 256), 3, 256, 1, 1, 1),
    ("mnv2 1x1 96→24 @8²", (64, 8, 8, 96), 1, 24, 1, 0, 1),
    ("mnv2 dw 3x3 144 @8²", (64, 8, 8, 144), 3, 144, 1, 1, 144),
    ("mnv2 dw 3x3/2 96 @16²", (64, 16, 16, 96), 3, 96, 2, 1, 96),
    ("resnet18@224 l1 3x3 64→64 @56²", (16, 56, 56, 64), 3, 64, 1, 1, 1),
    ("resnet l3 3x3/2 128→256 →2²", (64, 4, 4, 128), 3, 256, 2, 1, 1),
    ("resnet l4 3x3 512→512 @1²", (64, 1, 1, 512), 3, 512, 1, 1, 1),
    ("resnet downsample 1x1/2 64→128", (64, 8, 8, 64), 1, 128, 2, 0, 1),
    ("5x5 32→32 @16²", (64, 16, 16, 32), 5, 32, 1, 2, 1),
    ("5x5 3→16 @32²", (64, 32, 32, 3), 5, 16, 1, 2, 1),
]
QUICK = [0, 3, 4, 9, 11]
DN = ("NHWC", "HWIO", "NHWC")


def xla(x, w, stride, pad, groups):
    return lax.conv_general_dilated(
        x, w, (stride, stride), ((pad, pad), (pad, pad)), dimension_numbers=DN, feature_group_count=groups
    )


def im2col(x, w, stride, pad, groups):
    return jcnn_conv(x, w, stride=stride, padding=pad, groups=groups, algorithm="im2col")


_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])


def direct(x, w, stride, pad, groups):
    return jcnn_conv(x, w, stride=stride, padding=pad, groups=groups, algorithm="direct")


def winograd(x, w, stride, pad, groups):
    """F(2×2, 3×3) (Lavin & Gray 2016): ``Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`` per 4×4 tile, stride 2."""
    n, h, wd, c = x.shape
    k = w.shape[-1]
    ho, wo = h + 2 * pad - 2, wd + 2 * pad - 2
    th, tw = -(-ho // 2), -(-wo // 2)
    x = lax.pad(
        x,
        jnp.zeros((), x.dtype),
        ((0, 0, 0), (pad, 2 * th + 2 - h - pad, 0), (pad, 2 * tw + 2 - wd - pad, 0), (0, 0, 0)),
    )
    rows = [x[:, a : a + 2 * th : 2] for a in range(4)]
    tiles = []
    for r in (rows[0] - rows[2], rows[1] + rows[2], rows[2] - rows[1], rows[1] - rows[3]):
        cols = [r[:, :, b : b + 2 * tw : 2] for b in range(4)]
        tiles += [cols[0] - cols[2], cols[1] + cols[2], cols[2] - cols[1], cols[1] - cols[3]]
    g = jnp.asarray(_G, w.dtype)
    u = jnp.einsum("am,mnck,bn->abck", g, w, g).reshape(16, c, k)
    m = lax.dot_general(jnp.stack(tiles).reshape(16, -1, c), u, (((2,), (1,)), ((0,), (0,))))
    m = m.reshape(4, 4, n, th, tw, k)
    r = (m[0] + m[1] + m[2], m[1] - m[2] - m[3])
    y = [[ri[0] + ri[1] + ri[2], ri[1] - ri[2] - ri[3]] for ri in r]
    out = jnp.stack([jnp.stack(y[0], -2), jnp.stack(y[1], -2)], 2).reshape(n, 2 * th, 2 * tw, k)
    return out[:, :ho, :wo]


def fft(x, w, stride, pad, groups):
    """Cross-correlation as a product of spectra: ``irfft2(rfft2(x) · conj(rfft2(w)))`` over channels."""
    n, h, wd, c = x.shape
    kh = w.shape[0]
    x = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    hp, wp = x.shape[1], x.shape[2]
    fx = jnp.fft.rfft2(x, axes=(1, 2))
    fw = jnp.fft.rfft2(w, s=(hp, wp), axes=(0, 1))
    y = jnp.fft.irfft2(jnp.einsum("nhwc,hwck->nhwk", fx, jnp.conj(fw)), s=(hp, wp), axes=(1, 2))
    return y[:, : hp - kh + 1, : wp - kh + 1].astype(x.dtype)


_conv_dwdot = jax.custom_vjp(lambda x, w, stride, pad: xla(x, w, stride, pad, 1), nondiff_argnums=(2, 3))


def _dwdot_fwd(x, w, stride, pad):
    return xla(x, w, stride, pad, 1), (x, w)


def _dwdot_bwd(stride, pad, res, g):
    x, w = res
    kh, kw = w.shape[:2]
    _, vjp = jax.vjp(lambda xx: xla(xx, w, stride, pad, 1), x)
    (dx,) = vjp(g)
    xp = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    ho, wo = g.shape[1], g.shape[2]
    # dK[m, q] = Σ_{n,i,j} x[n, S·i + m, S·j + q, :]ᵀ g[n, i, j, :]: one (C_in × C_out) matmul per offset.
    dw = [
        lax.dot_general(
            xp[:, m : m + (ho - 1) * stride + 1 : stride, q : q + (wo - 1) * stride + 1 : stride],
            g,
            (((0, 1, 2), (0, 1, 2)), ((), ())),
        )
        for m, q in itertools.product(range(kh), range(kw))
    ]
    return dx, jnp.stack(dw).reshape(w.shape)


_conv_dwdot.defvjp(_dwdot_fwd, _dwdot_bwd)


def xla_dwdot(x, w, stride, pad, groups):
    return _conv_dwdot(x, w, stride, pad)


LOWERINGS: dict[str, Callable] = {
    "xla": xla,
    "im2col": im2col,
    "direct": direct,
    "winograd": winograd,
    "fft": fft,
    "xla_dwdot": xla_dwdot,
}


def applicable(name: str, k: int, stride: int, groups: int) -> bool:
    if name == "winograd":
        return k == 3 and stride == 1 and groups == 1
    if name in ("fft", "xla_dwdot"):
        return stride == 1 and groups == 1 if name == "fft" else groups == 1
    return True


def _median_ms(fn: Callable[[], Any], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        out.append(1e3 * (time.perf_counter() - t0))
    return out


def study_shape(shape: tuple, reps: int) -> dict:
    label, (n, h, wd, c), k, cout, stride, pad, groups = shape
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((n, h, wd, c)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((k, k, c // groups, cout)) / np.sqrt(k * k * c // groups), jnp.float32)
    ref = xla(x, w, stride, pad, groups)
    ct = jnp.asarray(rng.standard_normal(ref.shape), jnp.float32)
    runs: dict[str, tuple[Callable, Callable]] = {}
    errors = {}
    for name, f in LOWERINGS.items():
        if not applicable(name, k, stride, groups):
            continue
        fwd = jax.jit(lambda x, w, f=f: f(x, w, stride, pad, groups))
        both = jax.jit(lambda x, w, ct, f=f: jax.vjp(lambda a, b: f(a, b, stride, pad, groups), x, w)[1](ct))
        errors[name] = float(jnp.max(jnp.abs(fwd(x, w) - ref)) / jnp.max(jnp.abs(ref)))
        jax.block_until_ready(both(x, w, ct))
        runs[name] = (lambda fwd=fwd: fwd(x, w), lambda both=both: both(x, w, ct))
    xn, wn, ctn = jnp.transpose(x, (0, 3, 1, 2)), jnp.transpose(w, (3, 2, 0, 1)), jnp.transpose(ct, (0, 3, 1, 2))

    def nchw(a, b):
        return lax.conv_general_dilated(
            a,
            b,
            (stride, stride),
            ((pad, pad), (pad, pad)),
            dimension_numbers=("NCHW", "OIHW", "NCHW"),
            feature_group_count=groups,
        )

    fwd_n = jax.jit(nchw)
    both_n = jax.jit(lambda a, b, t: jax.vjp(nchw, a, b)[1](t))
    jax.block_until_ready(both_n(xn, wn, ctn))
    runs["xla_nchw"] = (lambda: fwd_n(xn, wn), lambda: both_n(xn, wn, ctn))
    times = {name: ([], []) for name in runs}
    torch_t = _torch_times(x, w, ct, stride, pad, groups, reps)
    for _ in range(reps):
        for name, (f, b) in runs.items():
            times[name][0].extend(_median_ms(f, 1))
            times[name][1].extend(_median_ms(b, 1))
    split = _xla_split(x, w, ct, stride, pad, groups, reps)
    return {
        "shape": label,
        "x": [n, h, wd, c],
        "k": k,
        "c_out": cout,
        "stride": stride,
        "groups": groups,
        "fwd_ms": {nm: statistics.median(t[0]) for nm, t in times.items()},
        "fwd_bwd_ms": {nm: statistics.median(t[1]) for nm, t in times.items()},
        "xla_split_ms": split,
        "max_rel_err": errors,
        "torch_cl_fwd_ms": torch_t[0],
        "torch_cl_fwd_bwd_ms": torch_t[1],
    }


def _xla_split(x, w, ct, stride, pad, groups, reps) -> dict[str, float]:
    """The default lowering's three convolutions timed apart: forward, input gradient, kernel gradient."""
    fns = {
        "fwd": jax.jit(lambda x, w, ct: xla(x, w, stride, pad, groups)),
        "d_input": jax.jit(lambda x, w, ct: jax.vjp(lambda a: xla(a, w, stride, pad, groups), x)[1](ct)),
        "d_kernel": jax.jit(lambda x, w, ct: jax.vjp(lambda b: xla(x, b, stride, pad, groups), w)[1](ct)),
    }
    out: dict[str, list[float]] = {k: [] for k in fns}
    for f in fns.values():
        jax.block_until_ready(f(x, w, ct))
    for _ in range(reps):
        for k, f in fns.items():
            out[k] += _median_ms(lambda f=f: f(x, w, ct), 1)
    return {k: statistics.median(v) for k, v in out.items()}


def _torch_times(x, w, ct, stride, pad, groups, reps) -> tuple[float, float]:
    import torch

    cl = torch.channels_last
    xt = torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy()).contiguous(memory_format=cl).requires_grad_()
    wt = torch.from_numpy(np.asarray(w).transpose(3, 2, 0, 1).copy()).contiguous(memory_format=cl).requires_grad_()
    ctt = torch.from_numpy(np.asarray(ct).transpose(0, 3, 1, 2).copy()).contiguous(memory_format=cl)

    def fwd():
        with torch.no_grad():
            return torch.nn.functional.conv2d(xt, wt, stride=stride, padding=pad, groups=groups)

    def both():
        y = torch.nn.functional.conv2d(xt, wt, stride=stride, padding=pad, groups=groups)
        return torch.autograd.grad(y, (xt, wt), ctt)

    both()
    f = [_median_ms(fwd, 1)[0] for _ in range(reps)]
    b = [_median_ms(both, 1)[0] for _ in range(reps)]
    return statistics.median(f), statistics.median(b)


def table(results: list[dict]) -> str:
    """Markdown: forward+backward ms (forward ms) per lowering, the default's split, torch, best/torch."""
    names = ["xla", "xla_nchw", "im2col", "direct", "winograd", "fft", "xla_dwdot"]
    head = (
        "| shape (N,H,W,C) k→C_out | "
        + " | ".join(names)
        + " | xla fwd · d_input · d_kernel | torch_cl | best lax / torch_cl |"
    )
    lines = [head, "|---" + "|---:" * (len(names) + 3) + "|"]
    for r in results:
        fb = r["fwd_bwd_ms"]
        best = min(fb, key=fb.get)
        cells = []
        for n in names:
            cell = f"{fb[n]:.2f} ({r['fwd_ms'][n]:.2f})" if n in fb else "n/a"
            cells.append(f"**{cell}**" if n == best else cell)
        sp = r["xla_split_ms"]
        lines.append(
            f"| {r['shape']} {tuple(r['x'])} | "
            + " | ".join(cells)
            + f" | {sp['fwd']:.2f} · {sp['d_input']:.2f} · {sp['d_kernel']:.2f}"
            f" | {r['torch_cl_fwd_bwd_ms']:.2f} ({r['torch_cl_fwd_ms']:.2f})"
            f" | {fb[best] / r['torch_cl_fwd_bwd_ms']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--only", type=int, nargs="*", help="indices into SHAPES")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "conv_study.json")
    args = parser.parse_args(argv)
    reps = args.reps or (5 if args.quick else 11)
    idx = args.only if args.only else (QUICK if args.quick else range(len(SHAPES)))
    results = []
    for i in idx:
        results.append(study_shape(SHAPES[i], reps))
        print(
            f"{SHAPES[i][0]}: fwd+bwd ms "
            + ", ".join(f"{k} {v:.2f}" for k, v in results[-1]["fwd_bwd_ms"].items())
            + f", torch_cl {results[-1]['torch_cl_fwd_bwd_ms']:.2f}",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))
    return results


if __name__ == "__main__":
    main()
