"""Normalization layers (docs/normalization.md): BatchNorm, LayerNorm, InstanceNorm, GroupNorm, LocalResponseNorm and
LocalContrastNorm, wrapping the pure ops of ``jcnn.ops.normalization``.

Params are ``{"scale", "bias"}`` (γ, β; ``{}`` without affine). BatchNorm's running statistics live in
the state ``{"mean", "var"}`` (+ ``"count"`` for the cumulative average): ``apply(..., train=True)``
returns them updated, ``train=False`` normalizes with them and returns the state unchanged. State is
float32 whatever the input dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp

from jcnn import _host_random as H
from jcnn import initializers as inits
from jcnn._types import Array, IntOrSeq, Params, PRNGKey, Shape, ShapeTree, State
from jcnn.layers.base import ApplyFn, InitFn, Layer, ShapeFn, check_shape, constructor, make_layer
from jcnn.ops import normalization as N


def _check_momentum(name: str, momentum: float | None, allow_none: bool) -> None:
    if momentum is None and allow_none:
        return
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0.0 <= momentum <= 1.0:
        extra = " or None (cumulative average)" if allow_none else ""
        raise ValueError(f"{name}: momentum must be a float in [0, 1]{extra}, got {momentum!r}")


def _check_eps(name: str, eps: float) -> None:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
        raise ValueError(f"{name}: eps must be a float >= 0, got {eps!r}")


def _affine_params(
    affine: bool, shape: tuple[int, ...], key: PRNGKey | None = None, scale_init: inits.Initializer | None = None
) -> Params:
    if not affine:
        return {}
    scale = H.full(shape, 1.0, jnp.float32) if scale_init is None else scale_init(key, shape, jnp.float32)
    return {"scale": scale, "bias": H.full(shape, 0.0, jnp.float32)}


def _norm_layer(name: str, init: InitFn, apply: ApplyFn, shape: ShapeFn) -> Layer:
    return make_layer(name, init, apply, shape=shape, host_init=True)


def _update(running: Array, batch: Array, factor: Array | float) -> Array:
    """``(1 − m)·running + m·batch`` in the running statistic's dtype (at least float32: a float64 state,
    e.g. for a float64 comparison with torch, keeps float64 batch statistics unrounded)."""
    dtype = jnp.promote_types(running.dtype, jnp.float32)
    return ((1 - factor) * running + factor * batch.astype(dtype)).astype(running.dtype)


def _check_channels(name: str, x: Array, channels: int) -> None:
    if x.ndim < 2 or x.shape[-1] != channels:
        raise ValueError(
            f"{name}: expected an input (N, *spatial, {channels}) like the one given to init, "
            f"got shape {tuple(x.shape)}"
        )


@constructor
def BatchNorm(
    momentum: float | None = 0.1,
    eps: float = 1e-5,
    affine: bool = True,
    track_running_stats: bool = True,
    axis_name: str | None = None,
    *,
    scale_init: inits.Initializer | None = None,
) -> Layer:
    """Batch normalization over ``(*, C, *)`` as ``torch.nn.BatchNorm{1,2,3}d``, channels last.

    ``x (N, *spatial, C)`` → same shape; params ``scale``/``bias`` ``(C,)`` (γ = 1, β = 0), state
    ``mean`` (0) / ``var`` (1) ``(C,)`` float32, plus ``count`` (int32 batches seen) when
    ``momentum=None``. Training normalizes with the biased batch variance and returns
    ``running = (1 − m)·running + m·batch`` with the unbiased variance ``σ²·n/(n − 1)``
    (``m = 1/count`` when ``momentum=None``: the cumulative average); eval uses the running statistics.
    Without ``track_running_stats`` the state is ``{}`` and batch statistics are used in both modes.
    ``axis_name`` synchronizes the batch statistics across a ``pmap``/``shard_map``/``vmap`` axis.
    ``scale_init`` replaces γ's ones (e.g. ``initializers.zeros`` for a residual branch that starts as 0).
    """
    _check_momentum("BatchNorm", momentum, allow_none=True)
    _check_eps("BatchNorm", eps)

    def shape_rule(input_shape: ShapeTree) -> Shape:
        return check_shape("BatchNorm", input_shape, min_ndim=2, what="(N, *spatial, C)")

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[Shape, Params, State]:
        shape = shape_rule(input_shape)
        c = shape[-1]
        state: State = {}
        if track_running_stats:
            state = {"mean": H.full((c,), 0.0, jnp.float32), "var": H.full((c,), 1.0, jnp.float32)}
            if momentum is None:
                state["count"] = H.full((), 0, jnp.int32)
        return shape, _affine_params(affine, (c,), key, scale_init), state

    def apply(
        params: Params, state: State, x: Array, *, train: bool, key: PRNGKey | None = None
    ) -> tuple[Array, State]:
        ref = params.get("scale", state.get("mean"))
        if ref is not None:
            _check_channels("BatchNorm", x, ref.shape[0])
        scale, bias = params.get("scale"), params.get("bias")
        if track_running_stats and not train:
            y, _ = N.batch_norm(x, scale, bias, mean=state["mean"], var=state["var"], eps=eps)
            return y, state
        y, stats = N.batch_norm(x, scale, bias, eps=eps, axis_name=axis_name)
        if not (track_running_stats and train):
            return y, state
        n = stats.count
        unbiased = stats.var * (n / jnp.maximum(n - 1, 1))
        new_state = dict(state)
        if momentum is None:
            count = state["count"] + 1
            factor = 1.0 / count.astype(jnp.promote_types(state["mean"].dtype, jnp.float32))
            new_state["count"] = count
        else:
            factor = momentum
        new_state["mean"] = _update(state["mean"], stats.mean, factor)
        new_state["var"] = _update(state["var"], unbiased, factor)
        return y, new_state

    return _norm_layer("BatchNorm", init, apply, shape_rule)


@constructor
def LayerNorm(axes: IntOrSeq | None = None, *, eps: float = 1e-5, affine: bool = True) -> Layer:
    """Layer normalization over ``(N, *, *)``: per sample, over ``axes`` (default every non-batch axis).

    Params ``scale``/``bias`` have the input's shape on ``axes`` (torch's ``elementwise_affine``).
    On ``(N, H, W, C)`` the default equals ``torch.nn.LayerNorm([C, H, W])`` on ``(N, C, H, W)``
    (params permuted by ``(2, 0, 1)``); ``axes=-1`` is ``torch.nn.LayerNorm(C)`` over channels. No state.
    """
    _check_eps("LayerNorm", eps)

    def shape_rule(input_shape: ShapeTree) -> Shape:
        shape = check_shape("LayerNorm", input_shape, min_ndim=2, what="(N, ...)")
        N._layer_axes(shape, axes, "LayerNorm")
        return shape

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[Shape, Params, State]:
        shape = shape_rule(input_shape)
        ax = N._layer_axes(shape, axes, "LayerNorm")
        return shape, _affine_params(affine, tuple(shape[a] for a in ax)), {}

    def apply(
        params: Params, state: State, x: Array, *, train: bool, key: PRNGKey | None = None
    ) -> tuple[Array, State]:
        y, _ = N.layer_norm(x, params.get("scale"), params.get("bias"), axes=axes, eps=eps)
        return y, state

    return _norm_layer("LayerNorm", init, apply, shape_rule)


@constructor
def InstanceNorm(
    affine: bool = False, track_running_stats: bool = False, eps: float = 1e-5, momentum: float = 0.1
) -> Layer:
    """Instance normalization over ``(N, C, *)`` as ``torch.nn.InstanceNorm{1,2,3}d``, channels last.

    ``x (N, *spatial, C)`` → same shape; params ``scale``/``bias`` ``(C,)`` with ``affine``. With
    ``track_running_stats`` the state ``mean``/``var`` ``(C,)`` follows torch: training updates it
    with the batch-average of the instance means and unbiased variances and still normalizes with the
    instance statistics; eval normalizes with the running statistics.
    """
    _check_momentum("InstanceNorm", momentum, allow_none=False)
    _check_eps("InstanceNorm", eps)

    def shape_rule(input_shape: ShapeTree) -> Shape:
        return check_shape("InstanceNorm", input_shape, min_ndim=3, what="(N, *spatial, C)")

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[Shape, Params, State]:
        shape = shape_rule(input_shape)
        c = shape[-1]
        state = (
            {"mean": H.full((c,), 0.0, jnp.float32), "var": H.full((c,), 1.0, jnp.float32)}
            if track_running_stats
            else {}
        )
        return shape, _affine_params(affine, (c,)), state

    def apply(
        params: Params, state: State, x: Array, *, train: bool, key: PRNGKey | None = None
    ) -> tuple[Array, State]:
        scale, bias = params.get("scale"), params.get("bias")
        ref = params.get("scale", state.get("mean"))
        if ref is not None:
            _check_channels("InstanceNorm", x, ref.shape[0])
        if track_running_stats and not train:
            y, _ = N.instance_norm(x, scale, bias, mean=state["mean"], var=state["var"], eps=eps)
            return y, state
        y, stats = N.instance_norm(x, scale, bias, eps=eps)
        if not (track_running_stats and train):
            return y, state
        n = stats.count
        unbiased = stats.var * (n / (n - 1))
        return y, {
            "mean": _update(state["mean"], jnp.mean(stats.mean, axis=0), momentum),
            "var": _update(state["var"], jnp.mean(unbiased, axis=0), momentum),
        }

    return _norm_layer("InstanceNorm", init, apply, shape_rule)


@constructor
def GroupNorm(num_groups: int, eps: float = 1e-5, affine: bool = True) -> Layer:
    """Group normalization as ``torch.nn.GroupNorm``: ``C`` split into ``num_groups`` groups, each
    normalized per sample. ``x (N, *spatial, C)``, ``C % num_groups == 0``; params ``(C,)``. No state."""
    if not isinstance(num_groups, int) or isinstance(num_groups, bool) or num_groups < 1:
        raise ValueError(f"GroupNorm: num_groups must be an int >= 1, got {num_groups!r}")
    _check_eps("GroupNorm", eps)

    def shape_rule(input_shape: ShapeTree) -> Shape:
        shape = check_shape("GroupNorm", input_shape, min_ndim=2, what="(N, *spatial, C)")
        if shape[-1] % num_groups:
            raise ValueError(
                f"GroupNorm: the {shape[-1]} channels of input shape {shape} must be divisible "
                f"by num_groups={num_groups}"
            )
        return shape

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[Shape, Params, State]:
        shape = shape_rule(input_shape)
        return shape, _affine_params(affine, (shape[-1],)), {}

    def apply(
        params: Params, state: State, x: Array, *, train: bool, key: PRNGKey | None = None
    ) -> tuple[Array, State]:
        y, _ = N.group_norm(x, num_groups, params.get("scale"), params.get("bias"), eps=eps)
        return y, state

    return _norm_layer("GroupNorm", init, apply, shape_rule)


@constructor
def LocalResponseNorm(size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Layer:
    """AlexNet's LRN as ``torch.nn.LocalResponseNorm``:
    ``y_c = x_c / (k + α/size · Σ_{window of size channels} x²)^β``. No params, no state."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"LocalResponseNorm: size must be an int >= 1, got {size!r}")

    def shape_rule(input_shape: ShapeTree) -> Shape:
        return check_shape("LocalResponseNorm", input_shape, min_ndim=2, what="(N, *spatial, C)")

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[Shape, Params, State]:
        return shape_rule(input_shape), {}, {}

    def apply(
        params: Params, state: State, x: Array, *, train: bool, key: PRNGKey | None = None
    ) -> tuple[Array, State]:
        return N.local_response_norm(x, size, alpha, beta, k), state

    return _norm_layer("LocalResponseNorm", init, apply, shape_rule)


@constructor
def LocalContrastNorm(
    size: IntOrSeq = 9,
    *,
    window: str = "gaussian",
    sigma: float | None = None,
    across_channels: bool = False,
    divisive: str | None = "std",
    eps: float = 1e-5,
    c: float | None = None,
) -> Layer:
    """Local contrast normalization (docs/normalization.md, Jarrett et al. 2009); see
    :func:`jcnn.ops.local_contrast_norm` for the formulas. ``x (N, *spatial, C)`` → same shape; no
    params, no state."""
    if window not in N.LCN_WINDOWS:
        raise ValueError(f"LocalContrastNorm: window must be one of {N.LCN_WINDOWS}, got {window!r}")
    if divisive not in N.LCN_DIVISIVE:
        raise ValueError(f"LocalContrastNorm: divisive must be one of {N.LCN_DIVISIVE}, got {divisive!r}")
    sizes: Sequence[int] = (size,) if isinstance(size, int) else tuple(size)
    if any(not isinstance(s, int) or s < 1 or s % 2 == 0 for s in sizes):
        raise ValueError(f"LocalContrastNorm: size must be odd ints >= 1, got {size!r}")

    def shape_rule(input_shape: ShapeTree) -> Shape:
        shape = check_shape("LocalContrastNorm", input_shape, min_ndim=3, what="(N, *spatial, C)")
        if not isinstance(size, int) and len(sizes) != len(shape) - 2:
            raise ValueError(f"LocalContrastNorm: size {size!r} needs one entry per spatial dim of input shape {shape}")
        return shape

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[Shape, Params, State]:
        return shape_rule(input_shape), {}, {}

    def apply(
        params: Params, state: State, x: Array, *, train: bool, key: PRNGKey | None = None
    ) -> tuple[Array, State]:
        y = N.local_contrast_norm(
            x, size, window=window, sigma=sigma, across_channels=across_channels, divisive=divisive, eps=eps, c=c
        )
        return y, state

    return _norm_layer("LocalContrastNorm", init, apply, shape_rule)


__all__ = ["BatchNorm", "LayerNorm", "InstanceNorm", "GroupNorm", "LocalResponseNorm", "LocalContrastNorm"]
