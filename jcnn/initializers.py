"""Parameter initializers: ``init(key, shape, dtype=float32) -> Array``.

Fans follow the kernel layouts of docs/design.md §1: for a conv kernel ``(*spatial, in, out)``
``fan_in = in·prod(spatial)`` and ``fan_out = out·prod(spatial)``; a dense kernel ``(in, out)`` is the
case with no spatial dims. ``in_axis``/``out_axis`` choose other axes (a transposed-conv kernel is
``(*spatial, C_in, C_out/g)`` and torch takes its fan_in from axis ``-1``).

PyTorch's defaults are ``kaiming_uniform(a=sqrt(5))`` for kernels (bound ``1/sqrt(fan_in)``) and
``uniform(±1/sqrt(fan_in))`` for biases, where fan_in is the *kernel's* (see :func:`fan_in_uniform`).

Values are drawn on the host (NumPy's Philox keyed by the JAX key, see :mod:`jcnn._host_random`) so that an
eager ``init`` compiles nothing and ``jax.jit(init)`` gives the same values; each initializer prints as
the call that made it (``kaiming_normal(mode='fan_out', nonlinearity='relu')``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp

from jcnn import _host_random as H
from jcnn._types import Array, PRNGKey

Initializer = Callable[..., Array]
"""``(key, shape, dtype=float32) -> Array``: what every initializer here returns."""


class NamedInitializer:
    """An initializer ``(key, shape, dtype=float32) -> Array`` that prints as the call that built it."""

    __slots__ = ("_fn", "_text")

    def __init__(self, fn: Callable[[PRNGKey, tuple[int, ...], Any], Array], text: str) -> None:
        self._fn = fn
        self._text = text

    def __call__(self, key: PRNGKey, shape: Sequence[int], dtype: Any = jnp.float32) -> Array:
        return self._fn(key, tuple(int(d) for d in shape), dtype)

    def __repr__(self) -> str:
        return self._text


def _call_text(name: str, **kwargs: Any) -> str:
    shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return f"{name}({shown})"


def compute_fans(shape: Sequence[int], in_axis: int = -2, out_axis: int = -1) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a kernel: its in/out dims times the receptive field (all other dims)."""
    shape = tuple(shape)
    if len(shape) < 1:
        raise ValueError(f"compute_fans: a kernel needs rank >= 1, got shape {shape}")
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(d for i, d in enumerate(shape) if i not in (in_axis % len(shape), out_axis % len(shape)))
    return shape[in_axis] * receptive, shape[out_axis] * receptive


def _gain(nonlinearity: str, a: float) -> float:
    """torch.nn.init.calculate_gain for the nonlinearities a CNN uses."""
    if nonlinearity in ("linear", "conv", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        return math.sqrt(2.0 / (1 + a * a))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(
        f"initializers: unknown nonlinearity {nonlinearity!r}; expected linear, sigmoid, tanh, relu, leaky_relu or selu"
    )


def _fan(mode: str, fan_in: int, fan_out: int) -> float:
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    if mode == "fan_avg":
        return (fan_in + fan_out) / 2
    raise ValueError(f"initializers: mode must be 'fan_in', 'fan_out' or 'fan_avg', got {mode!r}")


def variance_scaling(
    scale: float, mode: str, distribution: str, *, in_axis: int = -2, out_axis: int = -1
) -> Initializer:
    """Samples with variance ``scale / fan`` (``fan`` per ``mode``), from a ``"uniform"``
    (bound ``sqrt(3·scale/fan)``) or an untruncated ``"normal"`` distribution, as torch's init does."""
    _fan(mode, 1, 1)
    if distribution not in ("uniform", "normal"):
        raise ValueError(f"variance_scaling: distribution must be 'uniform' or 'normal', got {distribution!r}")

    def init(key: PRNGKey, shape: tuple[int, ...], dtype: Any) -> Array:
        fan_in, fan_out = compute_fans(shape, in_axis, out_axis)
        var = scale / max(1.0, _fan(mode, fan_in, fan_out))
        if distribution == "uniform":
            bound = math.sqrt(3.0 * var)
            return H.sample(key, shape, dtype, "uniform", -bound, bound)
        return H.sample(key, shape, dtype, "normal", 0.0, math.sqrt(var))

    return NamedInitializer(
        init,
        _call_text(
            "variance_scaling", scale=scale, mode=mode, distribution=distribution, in_axis=in_axis, out_axis=out_axis
        ),
    )


def _renamed(init: Initializer, text: str) -> Initializer:
    return NamedInitializer(init._fn, text) if isinstance(init, NamedInitializer) else init


def _axes(in_axis: int, out_axis: int) -> dict[str, int]:
    return {} if (in_axis, out_axis) == (-2, -1) else {"in_axis": in_axis, "out_axis": out_axis}


def kaiming_uniform(
    a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", *, in_axis: int = -2, out_axis: int = -1
) -> Initializer:
    """torch.nn.init.kaiming_uniform_: ``U(±gain·sqrt(3/fan))``. ``a=sqrt(5)`` is torch's layer default."""
    init = variance_scaling(_gain(nonlinearity, a) ** 2, mode, "uniform", in_axis=in_axis, out_axis=out_axis)
    return _renamed(
        init, _call_text("kaiming_uniform", a=a, mode=mode, nonlinearity=nonlinearity, **_axes(in_axis, out_axis))
    )


def kaiming_normal(
    a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", *, in_axis: int = -2, out_axis: int = -1
) -> Initializer:
    """torch.nn.init.kaiming_normal_: ``N(0, gain²/fan)``."""
    init = variance_scaling(_gain(nonlinearity, a) ** 2, mode, "normal", in_axis=in_axis, out_axis=out_axis)
    return _renamed(
        init,
        _call_text(
            "kaiming_normal",
            mode=mode,
            nonlinearity=nonlinearity,
            **({"a": a} if a else {}),
            **_axes(in_axis, out_axis),
        ),
    )


def he_uniform(*, in_axis: int = -2, out_axis: int = -1) -> Initializer:
    """He et al. 2015 for ReLU: ``U(±sqrt(6/fan_in))``."""
    init = variance_scaling(2.0, "fan_in", "uniform", in_axis=in_axis, out_axis=out_axis)
    return _renamed(init, _call_text("he_uniform", **_axes(in_axis, out_axis)))


def he_normal(*, in_axis: int = -2, out_axis: int = -1) -> Initializer:
    """He et al. 2015 for ReLU: ``N(0, 2/fan_in)``."""
    init = variance_scaling(2.0, "fan_in", "normal", in_axis=in_axis, out_axis=out_axis)
    return _renamed(init, _call_text("he_normal", **_axes(in_axis, out_axis)))


def glorot_uniform(gain: float = 1.0, *, in_axis: int = -2, out_axis: int = -1) -> Initializer:
    """Glorot & Bengio 2010 (xavier_uniform_): ``U(±gain·sqrt(6/(fan_in + fan_out)))``."""
    init = variance_scaling(gain * gain, "fan_avg", "uniform", in_axis=in_axis, out_axis=out_axis)
    return _renamed(init, _call_text("glorot_uniform", gain=gain, **_axes(in_axis, out_axis)))


def glorot_normal(gain: float = 1.0, *, in_axis: int = -2, out_axis: int = -1) -> Initializer:
    """Glorot & Bengio 2010 (xavier_normal_): ``N(0, gain²·2/(fan_in + fan_out))``."""
    init = variance_scaling(gain * gain, "fan_avg", "normal", in_axis=in_axis, out_axis=out_axis)
    return _renamed(init, _call_text("glorot_normal", gain=gain, **_axes(in_axis, out_axis)))


def lecun_uniform(*, in_axis: int = -2, out_axis: int = -1) -> Initializer:
    """LeCun 1998: ``U(±sqrt(3/fan_in))``."""
    init = variance_scaling(1.0, "fan_in", "uniform", in_axis=in_axis, out_axis=out_axis)
    return _renamed(init, _call_text("lecun_uniform", **_axes(in_axis, out_axis)))


def lecun_normal(*, in_axis: int = -2, out_axis: int = -1) -> Initializer:
    """LeCun 1998: ``N(0, 1/fan_in)``."""
    init = variance_scaling(1.0, "fan_in", "normal", in_axis=in_axis, out_axis=out_axis)
    return _renamed(init, _call_text("lecun_normal", **_axes(in_axis, out_axis)))


def torch_default_kernel(*, in_axis: int = -2, out_axis: int = -1) -> Initializer:
    """PyTorch's Conv/Linear weight default, ``kaiming_uniform(a=sqrt(5))`` = ``U(±1/sqrt(fan_in))``."""
    init = kaiming_uniform(math.sqrt(5.0), in_axis=in_axis, out_axis=out_axis)
    return _renamed(init, _call_text("torch_default_kernel", **_axes(in_axis, out_axis)))


def fan_in_uniform(fan_in: int) -> Initializer:
    """PyTorch's bias default: ``U(±1/sqrt(fan_in))`` with the kernel's ``fan_in`` (0 → zeros)."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0

    def init(key: PRNGKey, shape: tuple[int, ...], dtype: Any) -> Array:
        return H.sample(key, shape, dtype, "uniform", -bound, bound)

    return NamedInitializer(init, f"fan_in_uniform({fan_in})")


def constant(value: float) -> Initializer:
    """Every entry equal to ``value``."""

    def init(key: PRNGKey, shape: tuple[int, ...], dtype: Any) -> Array:
        return H.full(shape, value, dtype)

    return NamedInitializer(init, f"constant({value!r})")


zeros: Initializer = _renamed(constant(0.0), "zeros")
"""Every entry 0."""
ones: Initializer = _renamed(constant(1.0), "ones")
"""Every entry 1."""


def normal(stddev: float = 1.0, mean: float = 0.0) -> Initializer:
    """``N(mean, stddev²)``."""

    def init(key: PRNGKey, shape: tuple[int, ...], dtype: Any) -> Array:
        return H.sample(key, shape, dtype, "normal", mean, stddev)

    return NamedInitializer(init, _call_text("normal", stddev=stddev, **({"mean": mean} if mean else {})))


def truncated_normal(stddev: float = 1.0, mean: float = 0.0, a: float = -2.0, b: float = 2.0) -> Initializer:
    """``N(mean, stddev²)`` truncated to ``[a, b]`` (absolute bounds, as ``torch.nn.init.trunc_normal_``)."""
    if not stddev > 0 or not a < b:
        raise ValueError(f"truncated_normal: needs stddev > 0 and a < b, got stddev={stddev!r}, a={a!r}, b={b!r}")
    lo, hi = (a - mean) / stddev, (b - mean) / stddev
    if lo > 6 or hi < -6:
        raise ValueError(f"truncated_normal: [a, b] = [{a}, {b}] holds almost none of N({mean}, {stddev}²)")

    def init(key: PRNGKey, shape: tuple[int, ...], dtype: Any) -> Array:
        return H.sample(key, shape, dtype, "truncated", lo, hi, loc=mean, scale=stddev)

    return NamedInitializer(init, _call_text("truncated_normal", stddev=stddev, mean=mean, a=a, b=b))


def uniform(low: float = 0.0, high: float = 1.0) -> Initializer:
    """``U(low, high)``."""

    def init(key: PRNGKey, shape: tuple[int, ...], dtype: Any) -> Array:
        return H.sample(key, shape, dtype, "uniform", low, high)

    return NamedInitializer(init, _call_text("uniform", low=low, high=high))
