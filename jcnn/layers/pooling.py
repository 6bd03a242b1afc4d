"""Pooling layers (docs/pooling.md) over ``jcnn.ops.pooling``: no params, no state, 1/2/3 spatial dims.

Shapes are channels-last, ``x (N, *spatial, C)``; the spatial rank is ``len(window)`` when ``window`` is a
sequence, else ``spatial_dims`` (default 2, as for ``Conv``). Output shapes come from the ops' own
geometry (:func:`jcnn.ops.pooling.pool_output_shape`). ``GlobalAvgPool`` and ``GlobalMaxPool`` are ready
values (calling them, ``GlobalAvgPool()``, returns the same layer) for any rank; the others are
constructors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Union

from jcnn._types import Array, IntOrSeq, PaddingLike, Params, PRNGKey, Shape, ShapeTree, State
from jcnn.layers._checks import check_int_or_seq, check_padding
from jcnn.layers.base import Layer, ReadyLayer, check_shape, constructor, make_layer, ready_layer
from jcnn.layers.conv import check_rank, spatial_rank
from jcnn.ops import pooling as P

AdaptiveSize = Union[int, None, Sequence[int | None]]
"""An adaptive pool's output size: one int, or one per spatial dim; ``None`` keeps that dim."""


def _pool_layer(
    name: str, n: int, size: object, what: str, fn: Callable[[Array], Array], rule: Callable[[Shape], Shape]
) -> Layer:
    """A layer applying ``fn`` to ``(N, *spatial, C)`` inputs with ``n`` spatial dims; ``rule`` maps a checked
    input shape to the output shape."""

    def shape(input_shape: ShapeTree) -> Shape:
        checked = check_rank(name, input_shape, n, what, size)
        try:
            return rule(checked)
        except ValueError as err:
            raise ValueError(f"{name}: input shape {checked}: {err}") from None

    def apply(
        params: Params, state: State, x: Array, *, train: bool, key: PRNGKey | None = None
    ) -> tuple[Array, State]:
        if x.ndim != n + 2:
            raise ValueError(f"{name}: expected an input (N, *spatial, C) of rank {n + 2}, got shape {tuple(x.shape)}")
        return fn(x), state

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[Shape, Params, State]:
        return shape(input_shape), {}, {}

    return make_layer(name, init, apply, shape=shape, host_init=True)


def _check_window(name: str, window: IntOrSeq, stride: IntOrSeq | None) -> None:
    check_int_or_seq(name, "window", window, 1)
    if stride is not None:
        check_int_or_seq(name, "stride", stride, 1)


@constructor
def MaxPool(
    window: IntOrSeq,
    stride: IntOrSeq | None = None,
    padding: PaddingLike = 0,
    dilation: IntOrSeq = 1,
    ceil_mode: bool = False,
    *,
    spatial_dims: int | None = None,
) -> Layer:
    """Max over each (dilated) window: ``O[i] = max_{m} x[S·i + D·m − P_low]``, padding with −inf
    (``torch.nn.MaxPool{1,2,3}d``; ``stride`` defaults to ``window``; padding at most half the window).
    ``(N, *I, C)`` → ``(N, *O, C)`` with ``O = floor((I + P_low + P_high − D·(K − 1) − 1)/S) + 1``."""
    _check_window("MaxPool", window, stride)
    check_int_or_seq("MaxPool", "dilation", dilation, 1)
    check_padding("MaxPool", padding, strings=True)
    n = spatial_rank("MaxPool", "window", window, spatial_dims)
    return _pool_layer(
        "MaxPool",
        n,
        window,
        "window",
        lambda x: P.max_pool(x, window, stride, padding, dilation, ceil_mode),
        lambda s: P.pool_output_shape(s, window, stride, padding, dilation, ceil_mode, "max_pool"),
    )


@constructor
def AvgPool(
    window: IntOrSeq,
    stride: IntOrSeq | None = None,
    padding: PaddingLike = 0,
    count_include_pad: bool = True,
    ceil_mode: bool = False,
    *,
    spatial_dims: int | None = None,
) -> Layer:
    """Mean over each window (``torch.nn.AvgPool{1,2,3}d``): the divisor counts the zero padding when
    ``count_include_pad``, else only the input cells. ``stride`` defaults to ``window``."""
    _check_window("AvgPool", window, stride)
    check_padding("AvgPool", padding, strings=True)
    n = spatial_rank("AvgPool", "window", window, spatial_dims)
    return _pool_layer(
        "AvgPool",
        n,
        window,
        "window",
        lambda x: P.avg_pool(x, window, stride, padding, ceil_mode, count_include_pad),
        lambda s: P.pool_output_shape(s, window, stride, padding, 1, ceil_mode, "avg_pool"),
    )


@constructor
def LPPool(
    p: float,
    window: IntOrSeq,
    stride: IntOrSeq | None = None,
    ceil_mode: bool = False,
    *,
    spatial_dims: int | None = None,
) -> Layer:
    """Power-average pool ``(Σ_window x^p)^(1/p)`` (``torch.nn.LPPool{1,2,3}d``): p = 1 sums, p = ∞ is
    max pooling. ``stride`` defaults to ``window``; no padding."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not p > 0:
        raise ValueError(f"LPPool: p must be a positive number (the norm's power), got {p!r}")
    _check_window("LPPool", window, stride)
    n = spatial_rank("LPPool", "window", window, spatial_dims)
    return _pool_layer(
        "LPPool",
        n,
        window,
        "window",
        lambda x: P.lp_pool(x, p, window, stride, ceil_mode),
        lambda s: P.pool_output_shape(s, window, stride, 0, 1, ceil_mode, "lp_pool"),
    )


def _check_output_size(name: str, output_size: AdaptiveSize) -> None:
    items = [output_size] if output_size is None or isinstance(output_size, int) else output_size
    try:
        ok = all(v is None or (not isinstance(v, bool) and isinstance(v, int) and v >= 1) for v in items)
    except TypeError:
        ok = False
    if isinstance(output_size, (bool, str)) or not ok:
        raise ValueError(
            f"{name}: output_size must be an int >= 1 (or None to keep a dim), or one per "
            f"spatial dim, got {output_size!r}"
        )


@constructor
def AdaptiveAvgPool(output_size: AdaptiveSize, *, spatial_dims: int | None = None) -> Layer:
    """Average over torch's adaptive bins (``torch.nn.AdaptiveAvgPool{1,2,3}d``): bin ``i`` of an axis of
    length ``I`` is ``[floor(i·I/O), ceil((i+1)·I/O))``. ``(N, *I, C)`` → ``(N, *output_size, C)``;
    ``None`` keeps a dim's size."""
    _check_output_size("AdaptiveAvgPool", output_size)
    n = spatial_rank("AdaptiveAvgPool", "output_size", output_size, spatial_dims)
    return _pool_layer(
        "AdaptiveAvgPool",
        n,
        output_size if output_size is not None else 1,
        "output_size",
        lambda x: P.adaptive_avg_pool(x, output_size),
        lambda s: P.adaptive_output_shape(s, output_size, "adaptive_avg_pool"),
    )


@constructor
def AdaptiveMaxPool(output_size: AdaptiveSize, *, spatial_dims: int | None = None) -> Layer:
    """Max over torch's adaptive bins (``torch.nn.AdaptiveMaxPool{1,2,3}d``); see :func:`AdaptiveAvgPool`."""
    _check_output_size("AdaptiveMaxPool", output_size)
    n = spatial_rank("AdaptiveMaxPool", "output_size", output_size, spatial_dims)
    return _pool_layer(
        "AdaptiveMaxPool",
        n,
        output_size if output_size is not None else 1,
        "output_size",
        lambda x: P.adaptive_max_pool(x, output_size),
        lambda s: P.adaptive_output_shape(s, output_size, "adaptive_max_pool"),
    )


def _global(name: str, fn: Callable[[Array], Array]) -> ReadyLayer:
    def shape(input_shape: ShapeTree) -> Shape:
        s = check_shape(name, input_shape, ndim=(3, 4, 5), what="(N, *spatial, C) with 1, 2 or 3 spatial dims")
        return (s[0], s[-1])

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[Shape, Params, State]:
        return shape(input_shape), {}, {}

    def apply(
        params: Params, state: State, x: Array, *, train: bool, key: PRNGKey | None = None
    ) -> tuple[Array, State]:
        if x.ndim not in (3, 4, 5):
            raise ValueError(
                f"{name}: expected an input (N, *spatial, C) of rank 3, 4 or 5, got shape {tuple(x.shape)}"
            )
        return fn(x), state

    return ready_layer(name, init, apply, shape=shape)


GlobalAvgPool: ReadyLayer = _global("GlobalAvgPool", P.global_avg_pool)
"""Mean over all spatial positions: ``(N, *spatial, C)`` → ``(N, C)``. A ready value (``GlobalAvgPool()``
is the same layer)."""
GlobalMaxPool: ReadyLayer = _global("GlobalMaxPool", P.global_max_pool)
"""Max over all spatial positions: ``(N, *spatial, C)`` → ``(N, C)``. A ready value."""
