"""Ops of the modern-CNN blocks, with torchvision's semantics: stochastic depth (``torchvision.ops.
stochastic_depth``) and squeeze-and-excitation (``torchvision.ops.SqueezeExcitation``), channels-last."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jcnn._types import Array, PRNGKey
from jcnn.ops.activations import relu, sigmoid

STOCHASTIC_DEPTH_MODES = ("row", "batch")
"""torchvision's modes: one Bernoulli draw per example (``"row"``) or one for the whole batch."""


def check_stochastic_depth(who: str, p: float, mode: str) -> float:
    """Validate ``p`` (a number in ``[0, 1]``) and ``mode`` (``"row"`` or ``"batch"``); return ``float(p)``."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{who}: p (the probability of dropping) must be a number in [0, 1], got {p!r}")
    if mode not in STOCHASTIC_DEPTH_MODES:
        raise ValueError(f"{who}: mode must be 'row' or 'batch', got {mode!r}")
    return float(p)


def stochastic_depth_keep(key: PRNGKey, shape: tuple[int, ...], p: float, mode: str = "row") -> Array:
    """The keep mask of :func:`stochastic_depth` (bool): shape ``(N, 1, …, 1)`` for ``"row"`` (one coin per
    example), ``(1, …, 1)`` for ``"batch"`` (one coin for the whole batch); ``True`` with probability ``1 − p``."""
    p = check_stochastic_depth("stochastic_depth_keep", p, mode)
    size = (shape[0],) + (1,) * (len(shape) - 1) if mode == "row" else (1,) * len(shape)
    return jax.random.bernoulli(key, 1.0 - p, size)


def stochastic_depth(x: Array, p: float, mode: str = "row", *, key: PRNGKey | None = None, train: bool = True) -> Array:
    """Stochastic depth (Huang et al. 2016) as ``torchvision.ops.stochastic_depth``:
    ``y = x · m / (1 − p)`` with ``m ~ Bernoulli(1 − p)`` drawn per example (``mode="row"``: shape
    ``(N, 1, …)``) or once for the batch (``"batch"``); ``E[y] = x``. ``p = 1`` zeroes ``x`` (no division).
    Identity when ``train`` is False or ``p == 0``; otherwise ``key`` is required. Any shape ``(N, …)``.
    """
    p = check_stochastic_depth("stochastic_depth", p, mode)
    if not train or p == 0.0:
        return x
    if key is None:
        raise ValueError("stochastic_depth: train=True with p > 0 needs a PRNG key (key=jax.random.key(...))")
    if jnp.ndim(x) < 1:
        raise ValueError(f"stochastic_depth: expected an input with a batch axis (N, ...), got shape {jnp.shape(x)}")
    noise = stochastic_depth_keep(key, tuple(x.shape), p, mode).astype(x.dtype)
    if p < 1.0:
        noise = noise / (1.0 - p)  # torch: noise.div_(survival_rate), in the input's dtype
    return x * noise


def _as_matrix(who: str, name: str, kernel: Array) -> Array:
    if kernel.ndim < 2 or any(d != 1 for d in kernel.shape[:-2]):
        raise ValueError(
            f"{who}: {name} must be (in, out) or a 1x1 conv kernel (1, …, 1, in, out), got shape {tuple(kernel.shape)}"
        )
    return kernel.reshape(kernel.shape[-2:])


def squeeze_excitation(
    x: Array,
    fc1_kernel: Array,
    fc1_bias: Array,
    fc2_kernel: Array,
    fc2_bias: Array,
    *,
    activation: Callable[[Array], Array] = relu,
    scale_activation: Callable[[Array], Array] = sigmoid,
) -> Array:
    """Squeeze-and-excitation (Hu et al. 2018) as ``torchvision.ops.SqueezeExcitation``, channels-last:
    ``s = mean_spatial(x)`` ``(N, 1, …, 1, C)``, ``g = σ(W₂·δ(W₁·s + b₁) + b₂)``, ``y = g · x``.

    ``x (N, *spatial, C)``; ``fc1_kernel (C, S)`` (or the 1×1 conv kernel ``(1, 1, C, S)``), ``fc1_bias (S,)``,
    ``fc2_kernel (S, C)``, ``fc2_bias (C,)``; ``activation`` is δ (ReLU by default), ``scale_activation`` σ
    (sigmoid; MobileNet v3 uses hard-sigmoid). Output: ``x``'s shape and dtype.
    """
    who = "squeeze_excitation"
    if jnp.ndim(x) < 3:
        raise ValueError(f"{who}: expected an input (N, *spatial, C), got shape {jnp.shape(x)}")
    w1, w2 = _as_matrix(who, "fc1_kernel", fc1_kernel), _as_matrix(who, "fc2_kernel", fc2_kernel)
    c = x.shape[-1]
    if w1.shape[0] != c or w2.shape != (w1.shape[1], c) or fc1_bias.shape != (w1.shape[1],) or fc2_bias.shape != (c,):
        raise ValueError(
            f"{who}: for C={c} input channels expected fc1 (C, S), (S,) and fc2 (S, C), (C,); got "
            f"{tuple(w1.shape)}, {tuple(fc1_bias.shape)}, {tuple(w2.shape)}, {tuple(fc2_bias.shape)}"
        )
    dtype = x.dtype
    s = jnp.mean(x, axis=tuple(range(1, x.ndim - 1)), keepdims=True)
    h = activation(s @ w1.astype(dtype) + fc1_bias.astype(dtype))
    g = scale_activation(h @ w2.astype(dtype) + fc2_bias.astype(dtype))
    return g * x


__all__ = ["STOCHASTIC_DEPTH_MODES", "stochastic_depth", "stochastic_depth_keep", "squeeze_excitation"]
