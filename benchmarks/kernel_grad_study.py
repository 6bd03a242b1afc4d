"""Ways to compute a convolution's kernel gradient on XLA's CPU backend, timed against XLA's own.

    python -m benchmarks.kernel_grad_study [program ...]

Programs (``x`` channels-last, ``g = ∂L/∂y``): ``xla`` (XLA's kernel-gradient convolution), ``gT`` (one
``gᵀ·x_m`` matmul per kernel tap ``m``, ``g`` transposed once), ``gT_scan`` (the same over 4 batch chunks in a
``lax.scan``: jcnn's ``matmul_grad``), ``im2colT`` (``xᵀ`` once, the taps stacked, one matmul), ``tapsT``
(``xᵀ`` once, one matmul per tap), ``taps`` (``x_mᵀ·g`` per tap, XLA's choice of layout), ``im2col_gT``
(im2col along channels, ``gᵀ·P``), ``stack`` (taps stacked on a leading axis), ``split2`` (XLA's convolution
over two batch halves). Each program's result is checked against ``xla``; medians of 5 interleaved calls.
"""

import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

dn = ("NHWC", "HWIO", "NHWC")
r = np.random.default_rng(0)


def conv(x, w, s, p):
    return lax.conv_general_dilated(x, w, (s, s), ((p, p), (p, p)), dimension_numbers=dn)


def dw_xla(x, g, k, s, p):
    w0 = jnp.zeros((k, k, x.shape[-1], g.shape[-1]), x.dtype)
    return jax.vjp(lambda w: conv(x, w, s, p), w0)[1](g)[0]


def _tapslices(xp, k, s, oh, ow, axes=(1, 2)):
    for i in range(k):
        for j in range(k):
            yield lax.slice_in_dim(
                lax.slice_in_dim(xp, i, i + s * (oh - 1) + 1, s, axes[0]), j, j + s * (ow - 1) + 1, s, axes[1]
            )


def dw_tapsT(x, g, k, s, p):
    n, h, w, c = x.shape
    _, oh, ow, co = g.shape
    xt = jnp.transpose(x, (3, 0, 1, 2))
    xt = jnp.pad(xt, ((0, 0), (0, 0), (p, p), (p, p)))
    g2 = g.reshape(-1, co)
    outs = [(t.reshape(c, -1) @ g2) for t in _tapslices(xt, k, s, oh, ow, (2, 3))]
    return jnp.stack(outs).reshape(k, k, c, co)


def dw_im2colT(x, g, k, s, p):
    n, h, w, c = x.shape
    _, oh, ow, co = g.shape
    xt = jnp.pad(jnp.transpose(x, (3, 0, 1, 2)), ((0, 0), (0, 0), (p, p), (p, p)))
    P = jnp.stack(list(_tapslices(xt, k, s, oh, ow, (2, 3))))  # (9, c, n, oh, ow)
    return (P.reshape(k * k * c, -1) @ g.reshape(-1, co)).reshape(k, k, c, co)


def dw_taps(x, g, k, s, p):
    co = g.shape[-1]
    c = x.shape[-1]
    xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    outs = [
        lax.dot_general(t, g, (((0, 1, 2), (0, 1, 2)), ((), ()))) for t in _tapslices(xp, k, s, g.shape[1], g.shape[2])
    ]
    return jnp.stack(outs).reshape(k, k, c, co)


def dw_gT(x, g, k, s, p):
    # dW^T[tap] (co, c) = g^T (co, M) @ x_tap (M, c)
    co = g.shape[-1]
    c = x.shape[-1]
    xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    gt = g.reshape(-1, co).T
    outs = [gt @ t.reshape(-1, c) for t in _tapslices(xp, k, s, g.shape[1], g.shape[2])]
    return jnp.transpose(jnp.stack(outs).reshape(k, k, co, c), (0, 1, 3, 2))


def dw_im2col_gT(x, g, k, s, p):
    co = g.shape[-1]
    c = x.shape[-1]
    xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    P = jnp.concatenate(list(_tapslices(xp, k, s, g.shape[1], g.shape[2])), axis=-1)  # n,oh,ow,9c
    out = g.reshape(-1, co).T @ P.reshape(-1, k * k * c)  # co, 9c
    return jnp.transpose(out.reshape(co, k, k, c), (1, 2, 3, 0))


C = dict(xla=dw_xla, tapsT=dw_tapsT, im2colT=dw_im2colT, taps=dw_taps, gT=dw_gT, im2col_gT=dw_im2col_gT)
SH = [
    ("l1 56² 64→64 b16", (16, 56, 56, 64), 3, 64, 1, 1),
    ("l2 28² 128 b16", (16, 28, 28, 128), 3, 128, 1, 1),
    ("l3 14² 256 b16", (16, 14, 14, 256), 3, 256, 1, 1),
    ("l4 7² 512 b16", (16, 7, 7, 512), 3, 512, 1, 1),
    ("l2 s2 56→28 64→128", (16, 56, 56, 64), 3, 128, 2, 1),
    ("stem 7x7/2 224 3→64", (16, 224, 224, 3), 7, 64, 2, 3),
    ("cifar 32² 64 b128", (128, 32, 32, 64), 3, 64, 1, 1),
    ("1x1/2 56 64→128", (16, 56, 56, 64), 1, 128, 2, 0),
]


def dw_split2(x, g, k, s, p):
    h = x.shape[0] // 2
    return dw_xla(x[:h], g[:h], k, s, p) + dw_xla(x[h:], g[h:], k, s, p)


def dw_stack(x, g, k, s, p):
    co = g.shape[-1]
    c = x.shape[-1]
    xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    P = jnp.stack(list(_tapslices(xp, k, s, g.shape[1], g.shape[2])))  # 9,n,oh,ow,c
    P = P.reshape(k * k, -1, c)
    return lax.dot_general(P, g.reshape(-1, co), (((1,), (0,)), ((), ()))).reshape(k, k, c, co)


def dw_gT_scan(x, g, k, s, p, chunks=4):
    n = x.shape[0]
    co = g.shape[-1]
    c = x.shape[-1]
    xs = x.reshape(chunks, n // chunks, *x.shape[1:])
    gs = g.reshape(chunks, n // chunks, *g.shape[1:])

    def body(acc, xg):
        return acc + dw_gT(xg[0], xg[1], k, s, p), None

    out, _ = lax.scan(body, jnp.zeros((k, k, c, co), x.dtype), (xs, gs))
    return out


C.update(split2=dw_split2, stack=dw_stack, gT_scan=dw_gT_scan)

if __name__ == "__main__":
    which = sys.argv[1:] or list(C)
    for name, xs, k, co, s, p in SH:
        x = jnp.asarray(r.standard_normal(xs, np.float32))
        oh = (xs[1] + 2 * p - k) // s + 1
        g = jnp.asarray(r.standard_normal((xs[0], oh, oh, co), np.float32))
        flops = 2 * xs[0] * oh * oh * co * k * k * xs[3]
        fs = {m: jax.jit(lambda x, g, m=m: C[m](x, g, k, s, p)) for m in which}
        ref = fs["xla"](x, g) if "xla" in fs else None
        ts = {m: [] for m in which}
        for m in which:
            fs[m](x, g).block_until_ready()
        for _ in range(5):
            for m in which:
                t = time.perf_counter()
                out = fs[m](x, g).block_until_ready()
                ts[m].append(time.perf_counter() - t)
        if ref is not None:
            for m in which:
                e = float(jnp.max(jnp.abs(fs[m](x, g) - ref)) / jnp.max(jnp.abs(ref)))
                assert e < 1e-4, (m, e)
        print(
            f"{name:24s} "
            + " ".join(
                f"{m}={statistics.median(v) * 1e3:7.1f}ms({flops / statistics.median(v) / 1e9:5.0f})"
                for m, v in ts.items()
            ),
            flush=True,
        )
