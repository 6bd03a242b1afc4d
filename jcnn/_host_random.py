"""Host-side randomness for ``init``: key splitting and parameter sampling without per-shape compiles.

Eager JAX compiles one XLA program per new shape of every random op (about 0.2–0.5 s each on a CPU), so a
model whose ~20 distinct kernel shapes were drawn with ``jax.random`` took seconds to initialise. Here:

- :func:`split` is ``jax.random.split`` computed with NumPy for a concrete key (threefry-2x32, both the
  partitionable and the original counter layouts), bit-identical to JAX; a traced key is split by JAX.
- :func:`sample` draws ``uniform``/``normal``/``truncated_normal`` values from NumPy's counter-based Philox
  generator keyed by the 64 key bits (chunks of 2**22 values keyed by their index, so the result does not
  depend on how many threads fill it), in an aligned buffer handed to JAX without a copy. A traced key
  (``jax.jit(init)``) calls the same host function through ``jax.pure_callback``, so a jitted init gives
  exactly the eager values. In abstract mode (shapes only) it returns zeros that are never computed.

The values are a function of the key (and NumPy's Philox and ziggurat, stable since NumPy 1.17); they
are not the values ``jax.random.uniform(key, shape)`` would give.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

_CHUNK = 1 << 22
_ALIGN = 64  # XLA's CPU buffers need 64-byte alignment for device_put to alias host memory
_pool: ThreadPoolExecutor | None = None
_U32 = npt.NDArray[np.uint32]
_pool_lock = threading.Lock()


class _Mode(threading.local):
    abstract = False  # True while init runs under jax.eval_shape only to learn shapes


MODE = _Mode()


# ---------------------------------------------------------------------------------------------- keys


def is_traced(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def _is_typed_key(key: Any) -> bool:
    return hasattr(key, "dtype") and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)


def check_key(key: Any, who: str) -> None:
    """A PRNG key: a typed key array or a raw ``uint32[..., 2]`` array (``jax.random.PRNGKey``)."""
    if _is_typed_key(key):
        return
    shape = getattr(key, "shape", None)
    dtype = getattr(key, "dtype", None)
    if shape is not None and dtype is not None and np.dtype(dtype) == np.uint32 and tuple(shape)[-1:] == (2,):
        return
    if key is None:
        got = "None"
    elif isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        got = f"the int {key!r}"
    elif shape is not None:
        got = f"an array of shape {tuple(shape)} and dtype {dtype}"
    else:
        got = f"{type(key).__name__} {key!r}"
    raise TypeError(f"{who}: key must be a PRNG key such as jax.random.key(0) or jax.random.PRNGKey(0), got {got}")


def _rotl(x: _U32, d: int) -> _U32:
    out: _U32 = (x << np.uint32(d)) | (x >> np.uint32(32 - d))  # NumPy's stubs: a shift by np.uint32 is Any
    return out


def threefry2x32(k1: np.uint32, k2: np.uint32, x1: _U32, x2: _U32) -> tuple[_U32, _U32]:
    """The threefry-2x32 block cipher (20 rounds), as ``jax._src.prng.threefry2x32_p``, on uint32 arrays."""
    rotations = ((13, 15, 26, 6), (17, 29, 16, 24))
    ks = (np.uint32(k1), np.uint32(k2), np.uint32(k1) ^ np.uint32(k2) ^ np.uint32(0x1BD11BDA))
    with np.errstate(over="ignore"):
        x = [x1.astype(np.uint32) + ks[0], x2.astype(np.uint32) + ks[1]]
        for i in range(5):
            for r in rotations[i % 2]:
                x[0] = x[0] + x[1]
                x[1] = _rotl(x[1], r) ^ x[0]
            x[0] = x[0] + ks[(i + 1) % 3]
            x[1] = x[1] + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x[0], x[1]


def _split_bits(bits: _U32, n: int) -> _U32:
    """``jax.random.split`` of one raw key ``uint32[2]`` into ``uint32[n, 2]``, with NumPy."""
    k1, k2 = np.uint32(bits[0]), np.uint32(bits[1])
    if jax.config.jax_threefry_partitionable:  # type: ignore[attr-defined]  # jax's Config options are dynamic attributes, absent from its annotations
        y1, y2 = threefry2x32(k1, k2, np.zeros(n, np.uint32), np.arange(n, dtype=np.uint32))
        return np.stack([y1, y2], axis=1)
    counts = np.arange(2 * n, dtype=np.uint32)
    y1, y2 = threefry2x32(k1, k2, counts[:n], counts[n:])
    return np.concatenate([y1, y2]).reshape(n, 2)


def _host_bits(key: Any) -> _U32 | None:
    """The two uint32 words of a concrete threefry key, or None (traced, batched or another impl)."""
    if is_traced(key):
        return None
    if _is_typed_key(key):
        if "threefry" not in str(jax.random.key_impl(key)):
            return None
        data = np.asarray(jax.random.key_data(key))
    else:
        data = np.asarray(key)
    if data.shape != (2,) or data.dtype != np.uint32:
        return None
    return data


def split(key: Any, n: int) -> list[Any]:
    """``n`` keys from ``key``, equal to ``list(jax.random.split(key, n))``.

    A concrete threefry key is split on the host (no compile); the keys come back in the key's own kind
    (a typed key stays typed, a raw ``uint32[2]`` key stays raw). In abstract mode (shapes only) a traced
    key is returned ``n`` times.
    """
    bits = _host_bits(key)
    if bits is None:
        if MODE.abstract and is_traced(key):
            return [key] * n  # shapes only: no value is drawn from these keys, so skip tracing threefry
        return list(jax.random.split(key, n))
    out = _split_bits(bits, n)
    if _is_typed_key(key):
        # one key at a time: wrapping is compiled once per process for a single key's shape, where
        # wrapping the (n, 2) block and indexing it compiled once per n (0.8 s of VGG-16's init)
        impl = jax.random.key_impl(key)
        return [jax.random.wrap_key_data(jax.device_put(row), impl=impl) for row in out]
    out_keys: list[Any] = jax.device_put(list(out))  # one batched transfer: 2-3x cheaper than one per row
    return out_keys


# ---------------------------------------------------------------------------------------------- values


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="jcnn-init")
        return _pool


def _aligned_empty(size: int, dtype: np.dtype) -> np.ndarray:
    raw = np.empty(size * dtype.itemsize + _ALIGN, np.uint8)
    offset = (-raw.ctypes.data) % _ALIGN
    return raw[offset : offset + size * dtype.itemsize].view(dtype)


def _fill(out: np.ndarray, seed: int, chunk: int, dist: str, a: float, b: float, loc: float, scale: float) -> None:
    """Fill ``out`` (one chunk) from ``Philox(key=[seed, chunk])``: standard draws, scaled in place."""
    g = np.random.Generator(np.random.Philox(key=np.array([seed, chunk], np.uint64)))
    if dist == "uniform":  # U(a, b)
        g.random(out=out, dtype=np.float32)
        out *= np.float32(b - a)
        out += np.float32(a)
    elif dist == "normal":  # N(a, b²)
        g.standard_normal(out=out, dtype=np.float32)
        out *= np.float32(b)
        out += np.float32(a)
    else:  # truncated standard normal on [a, b], by rejection
        g.standard_normal(out=out, dtype=np.float32)
        bad = (out < a) | (out > b)
        while bad.any():
            out[bad] = g.standard_normal(int(bad.sum()), dtype=np.float32)
            bad = (out < a) | (out > b)
        if (loc, scale) != (0.0, 1.0):
            out *= np.float32(scale)
            out += np.float32(loc)


def sample_host(
    bits: np.ndarray,
    shape: Sequence[int],
    dist: str,
    a: float,
    b: float,
    dtype: Any,
    loc: float = 0.0,
    scale: float = 1.0,
) -> np.ndarray:
    """NumPy values for the key words ``bits``; ``dist`` ``uniform`` (U(a, b)), ``normal`` (N(a, b²)) or
    ``truncated`` (``loc + scale·z`` with z the standard normal truncated to [a, b])."""
    size = math.prod(shape)
    seed = (int(bits[0]) << 32) | int(bits[1])
    out = _aligned_empty(size, np.dtype(np.float32))
    chunks = [(i, out[i * _CHUNK : (i + 1) * _CHUNK]) for i in range(max(1, -(-size // _CHUNK)))]
    if len(chunks) == 1:
        _fill(chunks[0][1], seed, 0, dist, a, b, loc, scale)
    else:
        list(_executor().map(lambda c: _fill(c[1], seed, c[0], dist, a, b, loc, scale), chunks))
    out = out.reshape(tuple(shape))
    dtype = np.dtype(dtype)
    return out if dtype == np.float32 else out.astype(dtype)


def to_device(value: np.ndarray) -> jax.Array:
    """A JAX array over ``value``'s memory where JAX allows it (64-byte aligned host buffers on CPU)."""
    out: jax.Array  # device_put is annotated to return Any (it takes and returns pytrees)
    try:
        out = jax.device_put(value, may_alias=True)
    except TypeError:  # an older jax without may_alias
        out = jax.device_put(value)
    return out


def _key_words(key: Any) -> Any:
    return jax.random.key_data(key) if _is_typed_key(key) else key


def sample(
    key: Any, shape: Sequence[int], dtype: Any, dist: str, a: float, b: float, loc: float = 0.0, scale: float = 1.0
) -> jax.Array:
    """Random values of ``shape`` and floating ``dtype`` for ``key`` (see :func:`sample_host`)."""
    shape = tuple(int(d) for d in shape)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"initializers: random values need a floating dtype, got {np.dtype(dtype)}")
    bits = _host_bits(key)
    if bits is not None:
        return to_device(sample_host(bits, shape, dist, a, b, dtype, loc, scale))
    if MODE.abstract:
        return jnp.zeros(shape, dtype)
    words = _key_words(key)
    if tuple(words.shape) != (2,):
        # a batch of keys (e.g. under vmap, the batch is hidden; here it is explicit): draw one by one
        flat = words.reshape(-1, 2)
        parts = [sample(flat[i], shape, dtype, dist, a, b, loc, scale) for i in range(flat.shape[0])]
        return jnp.stack(parts).reshape(tuple(words.shape[:-1]) + shape)
    spec = jax.ShapeDtypeStruct(shape, np.dtype(dtype))
    out: jax.Array = jax.pure_callback(
        lambda w: sample_host(np.asarray(w), shape, dist, a, b, dtype, loc, scale),
        spec,
        words,
        vmap_method="sequential",
    )
    return out


def full(shape: Sequence[int], value: float, dtype: Any) -> jax.Array:
    """``jnp.full`` without an eager per-shape compile: a host array handed to JAX (inside a trace it is
    a constant of the traced program, as ``jnp.full`` would be)."""
    shape = tuple(int(d) for d in shape)
    if MODE.abstract:
        return jnp.full(shape, value, dtype)
    return to_device(np.full(shape, value, np.dtype(dtype)))
