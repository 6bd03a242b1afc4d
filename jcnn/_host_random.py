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
- :func:`drawn_ahead` lets an eager ``init`` draw all its tensors at once, on every core: a planning pass
  (zeros for values) records each :func:`sample` request, the requests are drawn concurrently, and the
  real pass takes its values from them. A tensor's values depend only on its key and request, so
  they equal those drawn one at a time.

The values are a function of the key (and NumPy's Philox and ziggurat, stable since NumPy 1.17); they
are not the values ``jax.random.uniform(key, shape)`` would give.
"""

from __future__ import annotations

import contextlib
import functools
import math
import mmap
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
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


# one sample() request: (seed, shape, dist, a, b, loc, scale, dtype); its values are a function of it
_Draw = tuple[int, tuple[int, ...], str, float, float, float, float, np.dtype]


class _Mode(threading.local):
    abstract = False  # True while init runs under jax.eval_shape only to learn shapes
    plan: list[_Draw] | None = None  # while planning (see drawn_ahead): the requests so far
    ready: dict[_Draw, list[np.ndarray]] | None = None  # values drawn ahead, one per planned request
    host_keys = False  # within drawn_ahead: split raw keys into NumPy words (no device transfer)
    host_values = False  # within host_values(): values stay NumPy arrays (an init run inside a callback)
    placeholders: dict[int, tuple[np.ndarray, _Draw]] | None = None  # while planning: id → (zeros, request)


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


_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_M32 = 0xFFFFFFFF


def threefry2x32(k1: np.uint32, k2: np.uint32, x1: _U32, x2: _U32) -> tuple[_U32, _U32]:
    """The threefry-2x32 block cipher (20 rounds), as ``jax._src.prng.threefry2x32_p``, on uint32 arrays."""
    ks = (np.uint32(k1), np.uint32(k2), np.uint32(k1) ^ np.uint32(k2) ^ np.uint32(0x1BD11BDA))
    with np.errstate(over="ignore"):
        x = [x1.astype(np.uint32) + ks[0], x2.astype(np.uint32) + ks[1]]
        for i in range(5):
            for r in _ROTATIONS[i % 2]:
                x[0] = x[0] + x[1]
                x[1] = _rotl(x[1], r) ^ x[0]
            x[0] = x[0] + ks[(i + 1) % 3]
            x[1] = x[1] + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x[0], x[1]


def _threefry_words(k1: int, k2: int, x1: int, x2: int) -> tuple[int, int]:
    """:func:`threefry2x32` on one pair of words, with Python ints (~20x faster than NumPy for a few keys)."""
    ks = (k1, k2, k1 ^ k2 ^ 0x1BD11BDA)
    a, b = (x1 + k1) & _M32, (x2 + k2) & _M32
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            a = (a + b) & _M32
            b = (((b << r) | (b >> (32 - r))) & _M32) ^ a
        a = (a + ks[(i + 1) % 3]) & _M32
        b = (b + ks[(i + 2) % 3] + i + 1) & _M32
    return a, b


def _split_bits(bits: _U32, n: int) -> _U32:
    """``jax.random.split`` of one raw key ``uint32[2]`` into ``uint32[n, 2]``, on the host."""
    partitionable = jax.config.jax_threefry_partitionable  # type: ignore[attr-defined]  # jax's Config options are dynamic attributes, absent from its annotations
    if n <= 16:  # a layer's children: Python ints beat NumPy's per-call overhead
        k1, k2 = int(bits[0]), int(bits[1])
        if partitionable:  # block i hashes the counter pair (0, i)
            rows = [_threefry_words(k1, k2, 0, i) for i in range(n)]
            return np.array(rows, np.uint32).reshape(n, 2)
        pairs = [_threefry_words(k1, k2, i, n + i) for i in range(n)]  # counters (i, n + i)
        return np.array([w for w, _ in pairs] + [w for _, w in pairs], np.uint32).reshape(n, 2)
    u1, u2 = np.uint32(bits[0]), np.uint32(bits[1])
    if partitionable:
        y1, y2 = threefry2x32(u1, u2, np.zeros(n, np.uint32), np.arange(n, dtype=np.uint32))
        return np.stack([y1, y2], axis=1)
    counts = np.arange(2 * n, dtype=np.uint32)
    y1, y2 = threefry2x32(u1, u2, counts[:n], counts[n:])
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
    (a typed key stays typed, a raw ``uint32[2]`` key stays raw: a NumPy array within an init that draws
    ahead, else a JAX array). In abstract mode (shapes only) a traced key is returned ``n`` times.
    """
    bits = _host_bits(key)
    if bits is None:
        if MODE.abstract and is_traced(key):
            return [key] * n  # shapes only: no value is drawn from these keys, so skip tracing threefry
        return list(jax.random.split(key, n))
    out = _split_bits(bits, n)
    if MODE.plan is not None or (MODE.host_keys and not _is_typed_key(key)):
        return list(out)  # within drawn_ahead: the children's key words stay on the host
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
    """An uninitialised, page-aligned host buffer from an anonymous mapping of its own.

    Not ``np.empty``: NumPy asks the kernel for transparent huge pages on big arrays, and where the kernel
    compacts memory on such a fault (``defrag=madvise``, common) the first touch of a fresh process's
    hundreds of MB stalls (VGG-16's 550 MB drew in 1.5 s instead of 0.8 s on the 2-core test machine)."""
    nbytes = size * dtype.itemsize
    if nbytes < mmap.PAGESIZE:  # small: NumPy's allocator, aligned by hand
        raw = np.empty(nbytes + _ALIGN, np.uint8)
        offset = (-raw.ctypes.data) % _ALIGN
        return raw[offset : offset + nbytes].view(dtype)
    return np.frombuffer(mmap.mmap(-1, nbytes), dtype=dtype)


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


def _request(
    bits: np.ndarray, shape: Sequence[int], dist: str, a: float, b: float, dtype: Any, loc: float, scale: float
) -> _Draw:
    seed = (int(bits[0]) << 32) | int(bits[1])
    return (seed, tuple(int(d) for d in shape), dist, float(a), float(b), float(loc), float(scale), np.dtype(dtype))


def _prepare(draw: _Draw, into: np.ndarray | None = None) -> tuple[np.ndarray, list[functools.partial[None]]]:
    """The float32 buffer for ``draw`` (``into``, a C-contiguous float32 array of its shape, if given) and
    the jobs that fill it: one per chunk of ``2**22`` values, each from its own Philox stream (keyed by the
    seed and the chunk index), so any thread may fill any chunk."""
    seed, shape, dist, a, b, loc, scale, _ = draw
    size = math.prod(shape)
    out = _aligned_empty(size, np.dtype(np.float32)) if into is None else into.reshape(-1)
    jobs = [
        functools.partial(_fill, out[i * _CHUNK : (i + 1) * _CHUNK], seed, i, dist, a, b, loc, scale)
        for i in range(max(1, -(-size // _CHUNK)))
    ]
    return out, jobs


def _finish(out: np.ndarray, draw: _Draw) -> np.ndarray:
    out = out.reshape(draw[1])
    return out if draw[7] == np.float32 else out.astype(draw[7])


def _run(jobs: Sequence[Callable[[], None]]) -> None:
    if len(jobs) == 1:
        jobs[0]()
    else:
        for _ in _executor().map(lambda job: job(), jobs):
            pass


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
    draw = _request(bits, shape, dist, a, b, dtype, loc, scale)
    out, jobs = _prepare(draw)
    _run(jobs)
    return _finish(out, draw)


def sample_many(
    draws: Sequence[_Draw], into: Mapping[_Draw, np.ndarray] | None = None
) -> dict[_Draw, list[np.ndarray]]:
    """The values of every request in ``draws``, filled concurrently (largest chunks first); a request made
    ``k`` times gets ``k`` separate arrays, so no two parameters share memory. A float32 request in ``into``
    is drawn into that array (which is then its first value)."""
    into = into or {}
    counts: dict[_Draw, int] = {}
    for draw in draws:
        counts[draw] = counts.get(draw, 0) + 1
    prepared = {draw: _prepare(draw, into.get(draw)) for draw in counts}
    jobs = [job for _, draw_jobs in prepared.values() for job in draw_jobs]
    jobs.sort(key=lambda job: -job.args[0].size)  # the largest chunks first
    _run(jobs)
    values: dict[_Draw, list[np.ndarray]] = {}
    for draw, (out, _) in prepared.items():
        first = into[draw] if draw in into else _finish(out, draw)
        values[draw] = [first] + [first.copy() for _ in range(counts[draw] - 1)]
    return values


@contextlib.contextmanager
def planning() -> Iterator[list[_Draw]]:
    """Within the block, :func:`sample` records each request in the yielded list and answers it with
    lazily allocated zeros (nothing is drawn), :func:`full` gives NumPy values and raw keys split into NumPy
    words: an init run here learns its params' shapes and draws without computing anything."""
    plan: list[_Draw] = []
    saved = (MODE.plan, MODE.ready, MODE.host_keys, MODE.placeholders)
    MODE.plan, MODE.ready, MODE.host_keys, MODE.placeholders = plan, None, True, {}
    try:
        yield plan
    finally:
        MODE.plan, MODE.ready, MODE.host_keys, MODE.placeholders = saved


@contextlib.contextmanager
def drawn_ahead(init: Callable[[], Any]) -> Iterator[None]:
    """Within the block, :func:`sample` takes its values from a batch drawn ahead for ``init``.

    ``init()`` (an eager init with a concrete key) first runs as a plan (:func:`planning`). The requests
    are then drawn at once on all cores (one tensor at a time keeps one core busy, and most tensors are a
    single chunk), and the block, which should run the same init, takes them in turn. A request not planned
    (an init whose draws depend on drawn values) is drawn when made, as without this. If the plan fails (an
    init that chokes on zeros), nothing is drawn ahead and the block runs as usual, raising its own errors.
    Raw keys split within the block stay NumPy words (no device transfer per child).
    """
    with planning() as plan:
        try:
            init()
        except Exception:  # noqa: BLE001  # a pre-pass only: the real pass raises the init's own error
            plan.clear()
    saved = (MODE.plan, MODE.ready, MODE.host_keys)
    MODE.ready, MODE.host_keys = (sample_many(plan) if plan else None), True
    try:
        yield
    finally:
        MODE.plan, MODE.ready, MODE.host_keys = saved


def init_into(outs: Sequence[np.ndarray], init: Callable[[], Any]) -> None:
    """Run the eager host ``init()`` (a pytree of arrays) and write its leaves into ``outs`` (writable arrays
    of the leaves' shapes and dtypes, in tree order): ``jax.jit(init)``'s callback, filling XLA's own
    output buffers.

    As :func:`drawn_ahead`, but a planned float32 draw that the plan returns as a leaf is drawn straight
    into that leaf's output (no copy of the largest tensors, which a ``pure_callback`` copied on one
    core). The real pass still runs, and any leaf that is not the very array drawn into its output (an
    init that computes on or reorders its draws, a constant) is copied there, on every core, after every
    read of an output buffer.
    """
    into: dict[_Draw, np.ndarray] = {}
    with planning() as plan:
        try:
            leaves = jax.tree_util.tree_leaves(init())
            placeholders = MODE.placeholders if MODE.placeholders is not None else {}
            for leaf, out in zip(leaves, outs):
                hit = placeholders.get(id(leaf))
                if hit is not None and hit[0] is leaf and hit[1] not in into and _writable_f32(out, hit[1][1]):
                    into[hit[1]] = out
        except Exception:  # noqa: BLE001  # a pre-pass only: the real pass raises the init's own error
            plan.clear()
            into.clear()
    saved = (MODE.ready, MODE.host_keys, MODE.host_values)
    MODE.ready, MODE.host_keys, MODE.host_values = (sample_many(plan, into) if plan else None), True, True
    try:
        leaves = jax.tree_util.tree_leaves(init())
    finally:
        MODE.ready, MODE.host_keys, MODE.host_values = saved
    if len(leaves) != len(outs):
        raise RuntimeError(f"init: made {len(leaves)} arrays where its spec has {len(outs)}")
    drawn_into = {id(out) for out in into.values()}
    copies = []
    for i, (leaf, out) in enumerate(zip(leaves, outs)):
        if leaf is out:
            continue
        value = np.asarray(leaf)
        if value.shape != out.shape or value.dtype != out.dtype:
            raise RuntimeError(
                f"init: array {i} has shape {value.shape} and dtype {value.dtype}, its spec {out.shape} {out.dtype}"
            )
        if id(_root(value)) in drawn_into:  # a view of another output: read it before any output is written
            value = value.copy()
        if value.size > _CHUNK and value.flags.c_contiguous:  # big tensors: copied by every core
            flat_out, flat_value = out.reshape(-1), value.reshape(-1)
            for start in range(0, value.size, _CHUNK):
                part = slice(start, start + _CHUNK)
                copies.append(functools.partial(np.copyto, flat_out[part], flat_value[part]))
        else:
            copies.append(functools.partial(np.copyto, out, value))
    if copies:
        _run(copies)


def _writable_f32(out: np.ndarray, shape: tuple[int, ...]) -> bool:
    return out.dtype == np.float32 and out.shape == shape and out.flags.c_contiguous and out.flags.writeable


def _root(a: np.ndarray) -> np.ndarray:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def to_device(value: np.ndarray) -> jax.Array:
    """A JAX array over ``value``'s memory where JAX allows it (64-byte aligned host buffers on CPU)."""
    out: jax.Array  # device_put is annotated to return Any (it takes and returns pytrees)
    try:
        out = jax.device_put(value, may_alias=True)
    except TypeError:  # an older jax without may_alias
        out = jax.device_put(value)
    return out


def _handed_out(value: np.ndarray) -> jax.Array:
    if MODE.host_values:  # an init inside a callback: XLA copies it out anyway; the dtype JAX would give
        host: Any = value.astype(jax.dtypes.canonicalize_dtype(value.dtype), copy=False)
        return host  # type: ignore[no-any-return]  # a host value, by design
    return to_device(value)


@contextlib.contextmanager
def host_values() -> Iterator[None]:
    """Within the block, :func:`sample` and :func:`full` return NumPy arrays: for an eager init run inside a
    ``pure_callback``, whose results XLA copies into its own buffers (a device array would be one more
    transfer per tensor)."""
    saved, MODE.host_values = MODE.host_values, True
    try:
        yield
    finally:
        MODE.host_values = saved


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
        draw = _request(bits, shape, dist, a, b, dtype, loc, scale)
        if MODE.plan is not None:  # planning (see drawn_ahead): record the request; no value is computed
            MODE.plan.append(draw)
            placeholder = np.zeros(shape, np.dtype(dtype))  # calloc'd, never touched
            if MODE.placeholders is not None:
                MODE.placeholders[id(placeholder)] = (placeholder, draw)
            return placeholder  # type: ignore[return-value]  # the plan's placeholder
        planned = MODE.ready.get(draw) if MODE.ready is not None else None
        if planned:
            return _handed_out(planned.pop())
        buffer, jobs = _prepare(draw)
        _run(jobs)
        return _handed_out(_finish(buffer, draw))
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
    if MODE.plan is not None:  # planning (see drawn_ahead): the value, not on the device
        return np.full(shape, value, np.dtype(dtype))  # type: ignore[return-value]  # the plan's placeholder
    return _handed_out(np.full(shape, value, np.dtype(dtype)))
