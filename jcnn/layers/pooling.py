"""Pooling layers (seed §2) over ``jcnn.ops.pooling``: no params, no state, 1/2/3 spatial dims.

Shapes are channels-last, ``x (N, *spatial, C)``; the spatial rank is ``len(window)`` when ``window`` is a
sequence, else the input's rank − 2. ``GlobalAvgPool`` and ``GlobalMaxPool`` are ready values (calling
them, ``GlobalAvgPool()``, returns the same layer); the others are constructors.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence, Union

from jcnn._types import Array, IntOrSeq, PaddingLike, Params, PRNGKey, Shape, State
from jcnn.layers.base import Layer, ReadyLayer, check_shape, infer_output_shape, make_layer, ready_layer
from jcnn.layers._checks import check_int_or_seq, check_padding
from jcnn.ops import pooling as P

AdaptiveSize = Union[int, None, Sequence[Union[int, None]]]


def _rank_of(name: str, window: Any, what: str) -> int | None:
    if isinstance(window, int) or window is None:
        return None
    n = len(window)
    if n not in (1, 2, 3):
        raise ValueError(f"{name}: {what} needs 1, 2 or 3 entries (one per spatial dim), got {window!r}")
    return n


def _pool_layer(name: str, kind: str, n_fixed: int | None, fn: Callable[[Array], Array],
                ready: bool = False) -> Layer:
    """A layer applying ``fn``; ``init`` checks the rank and takes the output shape from ``fn`` itself."""

    def apply(params: Params, state: State, x: Array, *, train: bool,
              key: PRNGKey | None = None) -> tuple[Array, State]:
        if x.ndim not in ((n_fixed + 2,) if n_fixed else (3, 4, 5)):
            raise ValueError(f"{name}: expected an input (N, *spatial, C) of rank "
                             f"{n_fixed + 2 if n_fixed else '3, 4 or 5'}, got shape {tuple(x.shape)}")
        return fn(x), state

    def init(key: PRNGKey, input_shape: Shape) -> tuple[Shape, Params, State]:
        layout = "(N, *spatial, C)"
        if n_fixed is None:
            shape = check_shape(name, input_shape, ndim=(3, 4, 5), what=f"{layout} with 1, 2 or 3 spatial dims")
        else:
            shape = check_shape(name, input_shape, ndim=n_fixed + 2, what=f"{layout} with {n_fixed} spatial dim(s)")
        try:
            out = infer_output_shape(apply, {}, {}, shape)
        except ValueError as err:
            raise ValueError(f"{name}: input shape {shape}: {err}") from None
        return out, {}, {}

    return (ready_layer if ready else make_layer)(kind, init, apply)


def _check_window(name: str, window: IntOrSeq, stride: IntOrSeq | None) -> int | None:
    check_int_or_seq(name, "window", window, 1)
    if stride is not None:
        check_int_or_seq(name, "stride", stride, 1)
    return _rank_of(name, window, "window")


def MaxPool(window: IntOrSeq, stride: IntOrSeq | None = None, padding: PaddingLike = 0,
            dilation: IntOrSeq = 1, ceil_mode: bool = False) -> Layer:
    """Max over each (dilated) window: ``O[i] = max_{m} x[S·i + D·m − P_low]``, padding with −inf
    (``torch.nn.MaxPool{1,2,3}d``; ``stride`` defaults to ``window``; padding at most half the window).
    ``(N, *I, C)`` → ``(N, *O, C)`` with ``O = floor((I + P_low + P_high − D·(K − 1) − 1)/S) + 1``."""
    n = _check_window("MaxPool", window, stride)
    check_int_or_seq("MaxPool", "dilation", dilation, 1)
    check_padding("MaxPool", padding, strings=True)
    return _pool_layer("MaxPool", "max_pool", n,
                       lambda x: P.max_pool(x, window, stride, padding, dilation, ceil_mode))


def AvgPool(window: IntOrSeq, stride: IntOrSeq | None = None, padding: PaddingLike = 0,
            count_include_pad: bool = True, ceil_mode: bool = False) -> Layer:
    """Mean over each window (``torch.nn.AvgPool{1,2,3}d``): the divisor counts the zero padding when
    ``count_include_pad``, else only the input cells. ``stride`` defaults to ``window``."""
    n = _check_window("AvgPool", window, stride)
    check_padding("AvgPool", padding, strings=True)
    return _pool_layer("AvgPool", "avg_pool", n,
                       lambda x: P.avg_pool(x, window, stride, padding, ceil_mode, count_include_pad))


def LPPool(p: float, window: IntOrSeq, stride: IntOrSeq | None = None, ceil_mode: bool = False) -> Layer:
    """Power-average pool ``(Σ_window x^p)^(1/p)`` (``torch.nn.LPPool{1,2,3}d``): p = 1 sums, p = ∞ is
    max pooling. ``stride`` defaults to ``window``; no padding."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not p > 0:
        raise ValueError(f"LPPool: p must be a positive number (the norm's power), got {p!r}")
    n = _check_window("LPPool", window, stride)
    return _pool_layer("LPPool", "lp_pool", n, lambda x: P.lp_pool(x, p, window, stride, ceil_mode))


def _check_output_size(name: str, output_size: AdaptiveSize) -> int | None:
    items = [output_size] if output_size is None or isinstance(output_size, int) else output_size
    try:
        ok = all(v is None or (not isinstance(v, bool) and isinstance(v, int) and v >= 1) for v in items)
    except TypeError:
        ok = False
    if isinstance(output_size, (bool, str)) or not ok:
        raise ValueError(f"{name}: output_size must be an int >= 1 (or None to keep a dim), or one per "
                         f"spatial dim, got {output_size!r}")
    return _rank_of(name, output_size, "output_size")


def AdaptiveAvgPool(output_size: AdaptiveSize) -> Layer:
    """Average over torch's adaptive bins (``torch.nn.AdaptiveAvgPool{1,2,3}d``): bin ``i`` of an axis of
    length ``I`` is ``[floor(i·I/O), ceil((i+1)·I/O))``. ``(N, *I, C)`` → ``(N, *output_size, C)``;
    ``None`` keeps a dim's size."""
    n = _check_output_size("AdaptiveAvgPool", output_size)
    return _pool_layer("AdaptiveAvgPool", "adaptive_avg_pool", n,
                       lambda x: P.adaptive_avg_pool(x, output_size))


def AdaptiveMaxPool(output_size: AdaptiveSize) -> Layer:
    """Max over torch's adaptive bins (``torch.nn.AdaptiveMaxPool{1,2,3}d``); see :func:`AdaptiveAvgPool`."""
    n = _check_output_size("AdaptiveMaxPool", output_size)
    return _pool_layer("AdaptiveMaxPool", "adaptive_max_pool", n,
                       lambda x: P.adaptive_max_pool(x, output_size))


GlobalAvgPool: ReadyLayer = _pool_layer("GlobalAvgPool", "global_avg_pool", None, P.global_avg_pool, True)
"""Mean over all spatial positions: ``(N, *spatial, C)`` → ``(N, C)``. A ready value (``GlobalAvgPool()``
is the same layer)."""
GlobalMaxPool: ReadyLayer = _pool_layer("GlobalMaxPool", "global_max_pool", None, P.global_max_pool, True)
"""Max over all spatial positions: ``(N, *spatial, C)`` → ``(N, C)``. A ready value."""
