"""NumPy float64 oracles for the normalization ops, written from the formulas of docs/normalization.md.

Arrays are channels-last ``(N, *spatial, C)``. Each returns the normalized array (and no statistics).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from jcnn._types import FloatArray


def _normalize(x: FloatArray, axes: tuple[int, ...], eps: float) -> FloatArray:
    """``(x − μ)/sqrt(σ² + ε)``, ``μ = mean(x)`` and the biased ``σ² = mean((x − μ)²)`` over ``axes``."""
    mu: FloatArray = x.mean(axis=axes, keepdims=True)
    var: FloatArray = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(var + eps)


def batch_norm(
    x: ArrayLike,
    scale: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    *,
    mean: ArrayLike | None = None,
    var: ArrayLike | None = None,
    eps: float = 1e-5,
) -> FloatArray:
    """``γ_C (u − μ_C)/sqrt(σ²_C + ε) + β_C``, statistics over ``(*, C, *)`` (batch and spatial), or the
    given running ``mean``/``var``."""
    x = np.asarray(x, np.float64)
    c = x.shape[-1]
    if mean is None:
        y = _normalize(x, tuple(range(x.ndim - 1)), eps)
    else:
        y = (x - np.asarray(mean, np.float64)) / np.sqrt(np.asarray(var, np.float64) + eps)
    return y * (1.0 if scale is None else np.asarray(scale, np.float64).reshape(c)) + (
        0.0 if bias is None else np.asarray(bias, np.float64).reshape(c)
    )


def layer_norm(
    x: ArrayLike,
    scale: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    *,
    axes: Sequence[int] | None = None,
    eps: float = 1e-5,
) -> FloatArray:
    """Statistics over ``(N, *, *)``: per sample over ``axes`` (default all non-batch axes)."""
    x = np.asarray(x, np.float64)
    ax = tuple(range(1, x.ndim)) if axes is None else tuple(sorted(a % x.ndim for a in np.atleast_1d(axes)))
    y = _normalize(x, ax, eps)
    shape = tuple(d if i in ax else 1 for i, d in enumerate(x.shape))
    if scale is not None:
        y = y * np.asarray(scale, np.float64).reshape(shape)
    if bias is not None:
        y = y + np.asarray(bias, np.float64).reshape(shape)
    return y


def instance_norm(
    x: ArrayLike, scale: ArrayLike | None = None, bias: ArrayLike | None = None, *, eps: float = 1e-5
) -> FloatArray:
    """Statistics over ``(N, C, *)``: per sample and channel over the spatial positions."""
    x = np.asarray(x, np.float64)
    y = _normalize(x, tuple(range(1, x.ndim - 1)), eps)
    return y * (1.0 if scale is None else np.asarray(scale, np.float64)) + (
        0.0 if bias is None else np.asarray(bias, np.float64)
    )


def group_norm(
    x: ArrayLike,
    num_groups: int,
    scale: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    *,
    eps: float = 1e-5,
) -> FloatArray:
    """Per sample and group of ``C/num_groups`` consecutive channels, over those channels and all positions."""
    x = np.asarray(x, np.float64)
    y = np.empty_like(x)
    g = x.shape[-1] // num_groups
    for n in range(x.shape[0]):
        for k in range(num_groups):
            block = x[n, ..., k * g : (k + 1) * g]
            y[n, ..., k * g : (k + 1) * g] = (block - block.mean()) / np.sqrt(block.var() + eps)
    return y * (1.0 if scale is None else np.asarray(scale, np.float64)) + (
        0.0 if bias is None else np.asarray(bias, np.float64)
    )


def local_response_norm(x: ArrayLike, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> FloatArray:
    """``b_c = a_c / (k + α/size · Σ_{c'=c−⌊size/2⌋}^{c+⌊(size−1)/2⌋} a_{c'}²)^β``, missing channels 0."""
    x = np.asarray(x, np.float64)
    c_total = x.shape[-1]
    y = np.empty_like(x)
    for c in range(c_total):
        lo, hi = max(0, c - size // 2), min(c_total, c + (size - 1) // 2 + 1)
        s = (x[..., lo:hi] ** 2).sum(axis=-1)
        y[..., c] = x[..., c] / (k + alpha / size * s) ** beta
    return y


def window_weights(size: Sequence[int], window: str = "gaussian", sigma: float | None = None) -> FloatArray:
    """The weighting window: ones, or ``exp(−d²/(2σ²))`` per dim (``σ`` default ``(size − 1)/4``), sum 1."""
    grids = np.meshgrid(*[np.arange(s) - (s - 1) / 2 for s in size], indexing="ij")
    if window == "uniform":
        w = np.ones(tuple(size))
    else:
        w = np.ones(tuple(size))
        for g, s in zip(grids, size):
            if s > 1:
                sd = sigma if sigma is not None else (s - 1) / 4
                w = w * np.exp(-(g**2) / (2 * sd**2))
    total: float = w.sum()
    return w / total


def local_contrast_norm(
    x: ArrayLike,
    size: Sequence[int] | int = 9,
    *,
    window: str = "gaussian",
    sigma: float | None = None,
    across_channels: bool = False,
    divisive: str | None = "std",
    eps: float = 1e-5,
    c: float | None = None,
) -> FloatArray:
    """Loop implementation of the textbook's ``û_ij = (u_ij − μ_ij)/sqrt(σ²_ij + ε)`` (``divisive="std"``)
    and of Jarrett et al.'s ``v/max(c, σ)`` (``divisive="max"``).

    At each position the neighbourhood is the window's pixels inside the image, weighted by ``w``
    renormalized over them: ``μ_ij = Σ w u / Σ w``, ``σ²_ij = Σ w (u − μ_ij)² / Σ w`` (seed) or
    ``Σ w v² / Σ w`` over the subtracted neighbours (Jarrett). ``across_channels`` pools every channel
    of the neighbourhood with equal weight.
    """
    x = np.asarray(x, np.float64)
    spatial = x.shape[1:-1]
    size = (size,) * len(spatial) if isinstance(size, int) else tuple(size)
    w = window_weights(size, window, sigma)
    half = [s // 2 for s in size]
    chans = x.shape[-1]
    groups = [list(range(chans))] if across_channels else [[ch] for ch in range(chans)]

    def neighbourhood(pos: tuple[int, ...]) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """(offset-in-window index, image position) of every window pixel inside the image."""
        out = []
        for off in itertools.product(*[range(s) for s in size]):
            q = tuple(p + o - h for p, o, h in zip(pos, off, half))
            if all(0 <= qi < si for qi, si in zip(q, spatial)):
                out.append((off, q))
        return out

    def stats(
        img: FloatArray, chs: list[int], pos: tuple[int, ...], centre_at: float | None = None
    ) -> tuple[float, float]:
        """Weighted mean of ``img`` over the neighbourhood and channels ``chs``, and the weighted mean of
        squared deviations from ``centre_at`` (default: that mean)."""
        ws_l: list[float] = []
        vals_l: list[float] = []
        for off, q in neighbourhood(pos):
            for ch in chs:
                ws_l.append(w[off] / len(chs))
                vals_l.append(img[q + (ch,)])
        ws, vals = np.array(ws_l), np.array(vals_l)
        mu: float = (ws * vals).sum() / ws.sum()
        centre = mu if centre_at is None else centre_at
        var: float = (ws * (vals - centre) ** 2).sum() / ws.sum()
        return mu, var

    y = np.empty_like(x)
    for n in range(x.shape[0]):
        img = x[n]
        for chs in groups:
            v = np.empty(spatial + (len(chs),))
            sq = np.empty(spatial + (len(chs),))
            for pos in np.ndindex(*spatial):
                mu, var = stats(img, chs, pos)
                for i, ch in enumerate(chs):
                    v[pos + (i,)] = img[pos + (ch,)] - mu
                    sq[pos + (i,)] = var
            if divisive is None:
                out = v
            elif divisive == "std":
                out = v / np.sqrt(sq + eps)
            else:
                sigma_map = np.empty(spatial)
                for pos in np.ndindex(*spatial):
                    _, s2 = stats(v, list(range(len(chs))), pos, centre_at=0.0)
                    sigma_map[pos] = max(np.sqrt(s2), eps)
                cc = sigma_map.mean() if c is None else c
                out = v / np.maximum(cc, sigma_map)[..., None]
            for i, ch in enumerate(chs):
                y[n, ..., ch] = out[..., i]
    return y


__all__ = [
    "batch_norm",
    "layer_norm",
    "instance_norm",
    "group_norm",
    "local_response_norm",
    "local_contrast_norm",
    "window_weights",
]
