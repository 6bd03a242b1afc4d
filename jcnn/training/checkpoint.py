"""Checkpoints: a whole pytree (params, state, optimizer state, step, rng, config) in one safetensors file.

File layout (the safetensors format, so PyTorch's and Hugging Face's tools read it):
``[8-byte little-endian u64 N][N bytes of JSON header][raw little-endian tensor bytes]``. The header maps
each tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets into the byte buffer)
and holds a ``"__metadata__"`` dict of strings.

Tensor names are the pytree key paths joined by ``"/"``: dict keys as written, NamedTuple/dataclass
fields by name, sequence entries by index (``params/conv_0/kernel``, ``opt_state/mu/dense_0/bias``,
``rng``). Typed JAX PRNG keys are stored as their raw ``jax.random.key_data`` (uint32) and rewrapped on
restore. The user's metadata is one JSON string under ``__metadata__["jcnn_metadata"]``.

Integrity: ``__metadata__["jcnn_crc32"]`` holds, per tensor, the CRC-32 (zlib) of its dtype code and
shape (``"F32[3, 4]"``) followed by its bytes, and under ``"__metadata__"`` the CRC-32 of the user
metadata string. :func:`restore` verifies them all and :func:`load_metadata` the metadata's, so a
flipped bit or a truncated copy is a :class:`CheckpointError`, never silently different values.
Files without the entry (older jcnn, other tools) load unverified.

Writes are atomic: a temporary file ``.<name>.<pid>.<random>.tmp`` in the same directory, flushed and
fsync'ed, then ``os.replace`` onto the target and the directory fsync'ed, so a crash mid-save leaves the
previous checkpoint intact. The temporary files of writers that died (killed mid-save) are removed by
the next save to the same path (:func:`remove_stale_temp_files`).
"""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "CheckpointError",
    "CheckpointMismatchError",
    "save",
    "restore",
    "load_metadata",
    "tensor_names",
    "atomic_write",
    "remove_stale_temp_files",
]

FORMAT_VERSION = "1"
_MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors library's own limit
_META_KEY = "jcnn_metadata"
_PRNG_KEY = "jcnn_prng_keys"
_FORMAT_KEY = "jcnn_format"
_CRC_KEY = "jcnn_crc32"
_LISTED = 20  # names shown per kind of mismatch; the rest are counted

# safetensors dtype code <-> NumPy dtype (bfloat16 and float8 come from ml_dtypes, a jax dependency).
_CODES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8),
    "I8": np.dtype(np.int8),
    "U16": np.dtype(np.uint16),
    "I16": np.dtype(np.int16),
    "U32": np.dtype(np.uint32),
    "I32": np.dtype(np.int32),
    "U64": np.dtype(np.uint64),
    "I64": np.dtype(np.int64),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(jnp.bfloat16),
    "F32": np.dtype(np.float32),
    "F64": np.dtype(np.float64),
    "F8_E4M3": np.dtype(jnp.float8_e4m3fn),
    "F8_E5M2": np.dtype(jnp.float8_e5m2),
}
_DTYPE_TO_CODE = {dt: code for code, dt in _CODES.items()}


class CheckpointError(ValueError):
    """A file that is not a readable safetensors checkpoint (truncated, foreign, corrupt)."""


class CheckpointMismatchError(TypeError, ValueError):
    """A checkpoint whose tensors differ from the target pytree (keys, shapes or dtypes)."""


# ----------------------------------------------------------------------------------------------- names


def _key_name(entry: Any) -> str:
    if isinstance(entry, jax.tree_util.DictKey):
        name = str(entry.key)
    elif isinstance(entry, jax.tree_util.GetAttrKey):
        name = entry.name
    elif isinstance(entry, jax.tree_util.SequenceKey):
        name = str(entry.idx)
    elif isinstance(entry, jax.tree_util.FlattenedIndexKey):
        name = str(entry.key)
    else:  # a custom key type: its str() is the best readable name
        name = str(entry)
    if not name or "/" in name:
        raise ValueError(
            f"checkpoint: pytree key {name!r} cannot be a tensor name (it must be non-empty and contain no '/')"
        )
    return name


def _check_tensor_name(name: str) -> str:
    if name == "__metadata__":  # safetensors' reserved header key: the tensor would replace the metadata
        raise ValueError(
            "checkpoint: the pytree key '__metadata__' cannot be a tensor name (safetensors "
            "reserves it for the header's metadata); rename that key"
        )
    return name


def _path_name(path: tuple[Any, ...]) -> str:
    return _check_tensor_name("/".join(_key_name(e) for e in path)) if path else "value"


def _is_prng_key(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)


def _flatten(tree: Any) -> tuple[list[tuple[str, Any]], Any]:
    """``[(name, leaf)]`` in pytree order and the treedef; raises on two leaves with one name."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
    named = [(_path_name(path), leaf) for path, leaf in leaves]
    seen: set[str] = set()
    for name, _ in named:
        if name in seen:
            raise ValueError(f"checkpoint: two leaves of the pytree map to the tensor name {name!r}")
        seen.add(name)
    return named, treedef


def tensor_names(tree: Any) -> list[str]:
    """The tensor names ``save`` gives the leaves of ``tree`` (pytree order), e.g. ``params/dense_0/kernel``."""
    return [name for name, _ in _flatten(tree)[0]]


# ----------------------------------------------------------------------------------------------- save


def _to_numpy(name: str, leaf: Any) -> tuple[np.ndarray, str | None]:
    """A leaf as a little-endian NumPy array, plus the PRNG impl name when the leaf is a typed key."""
    impl = None
    if _is_prng_key(leaf):
        impl = str(jax.random.key_impl(leaf))
        leaf = jax.random.key_data(leaf)
    if isinstance(leaf, jax.ShapeDtypeStruct):
        raise TypeError(f"checkpoint.save: leaf {name!r} is an abstract ShapeDtypeStruct, not an array")
    try:
        arr = np.asarray(leaf)
    except Exception as exc:  # noqa: BLE001 - any conversion failure is the same user error
        raise TypeError(
            f"checkpoint.save: leaf {name!r} of type {type(leaf).__name__} is not an array or number"
        ) from exc
    if arr.dtype not in _DTYPE_TO_CODE:
        if arr.dtype.byteorder == ">" and arr.dtype.newbyteorder("<") in _DTYPE_TO_CODE:
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        else:
            supported = ", ".join(str(d) for d in _DTYPE_TO_CODE)
            raise ValueError(
                f"checkpoint.save: leaf {name!r} has dtype {arr.dtype}, which safetensors cannot store "
                f"(supported: {supported})"
            )
    # not np.ascontiguousarray: it turns 0-d arrays into 1-d ones
    return (arr if arr.flags.c_contiguous else arr.copy(order="C")), impl


def _encode_header(entries: list[tuple[str, np.ndarray]], meta: dict[str, str]) -> bytes:
    header: dict[str, Any] = {"__metadata__": meta}
    offset = 0
    for name, arr in entries:
        header[name] = {
            "dtype": _DTYPE_TO_CODE[arr.dtype],
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + arr.nbytes],
        }
        offset += arr.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # Pad with spaces so the tensor bytes start 8-byte aligned, as the safetensors writer does.
    return raw + b" " * (-(8 + len(raw)) % 8)


def _write_bytes(f: Any, data: Any) -> None:
    f.write(data)


def _tensor_crc(code: str, shape: Any, data: Any) -> str:
    """CRC-32 of ``"<dtype code>[<shape>]"`` then the bytes, as 8 hex digits."""
    head = f"{code}[{', '.join(str(int(d)) for d in shape)}]".encode()
    return f"{zlib.crc32(data, zlib.crc32(head)):08x}"


def _text_crc(text: str) -> str:
    return f"{zlib.crc32(text.encode('utf-8')):08x}"


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a killed writer whose parent has not reaped it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists (another user's), or we cannot tell: keep its file
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def remove_stale_temp_files(path: str | os.PathLike[str]) -> list[str]:
    """Remove the temporary files that writers of ``path`` which died mid-write left in its directory
    (``.<name>.<pid>.<random>.tmp`` whose process is gone, and the pid-less names of older jcnn); the
    files of live writers, this process's included, are kept. Returns the paths removed."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    prefix = f".{os.path.basename(path)}."
    removed: list[str] = []
    try:
        entries = os.listdir(directory)
    except OSError:
        return removed
    for name in entries:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid = name[len(prefix) : -len(".tmp")].split(".")[0]
        if pid.isdigit() and (int(pid) == os.getpid() or _alive(int(pid))):
            continue
        try:
            os.unlink(os.path.join(directory, name))
            removed.append(os.path.join(directory, name))
        except OSError:
            pass
    return removed


def atomic_write(path: str | os.PathLike[str], write: Callable[[Any], None], *, who: str = "checkpoint.save") -> None:
    """Write a file atomically: ``write(f)`` fills a temporary file (binary) next to ``path``, which is
    flushed, fsync'ed and renamed onto ``path``; the directory is fsync'ed after. On any error or crash
    ``path`` keeps its previous content. Stale temporary files of dead writers are removed first.
    ``OSError`` messages name ``path`` (not the temporary file)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(
            errno.EISDIR,
            f"{who}: {path!r} is a directory; give a file path such as "
            f"{os.path.join(path, 'checkpoint.safetensors')!r}",
        )
    if not os.path.isdir(directory):
        raise ValueError(f"{who}: directory {directory!r} does not exist (create it first)")
    remove_stale_temp_files(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.{os.getpid()}.", suffix=".tmp", dir=directory)
        if hasattr(os, "fchmod"):  # mkstemp creates 0600; give the file the mode a plain open() would
            os.fchmod(fd, _file_mode(path))
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        if isinstance(exc, OSError):  # name the target, not the temporary file
            if exc.errno is not None and exc.strerror:
                raise type(exc)(exc.errno, f"{who}: cannot write {path!r}: {exc.strerror}") from exc
            raise OSError(f"{who}: cannot write {path!r}: {exc}") from exc
        raise
    _fsync_directory(directory)


def save(path: str | os.PathLike[str], tree: Any, *, metadata: Mapping[str, Any] | None = None) -> None:
    """Write every leaf of ``tree`` to ``path`` as one safetensors file, atomically.

    ``tree``: any pytree of arrays, NumPy arrays, Python numbers and typed PRNG keys (``TrainState``,
    nested dicts, NamedTuples, lists). ``metadata``: a JSON-serialisable dict (e.g. the run's config),
    stored in the header and read back by :func:`load_metadata`. Tuples in it come back as lists.

    A crash or error mid-write leaves any previous file at ``path`` untouched.
    """
    path = os.fspath(path)
    named, _ = _flatten(tree)
    entries: list[tuple[str, np.ndarray]] = []
    prng_impls: dict[str, str] = {}
    for name, leaf in named:
        arr, impl = _to_numpy(name, leaf)
        entries.append((name, arr))
        if impl is not None:
            prng_impls[name] = impl
    try:
        meta_json = json.dumps(dict(metadata or {}), sort_keys=True, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"checkpoint.save: metadata must be a JSON-serialisable dict: {exc}") from exc
    crcs = {name: _tensor_crc(_DTYPE_TO_CODE[arr.dtype], arr.shape, _raw_bytes(arr)) for name, arr in entries}
    crcs["__metadata__"] = _text_crc(meta_json)
    meta = {
        _FORMAT_KEY: FORMAT_VERSION,
        _META_KEY: meta_json,
        _PRNG_KEY: json.dumps(prng_impls, sort_keys=True),
        _CRC_KEY: json.dumps(crcs, sort_keys=True),
    }
    header = _encode_header(entries, meta)

    def write(f: Any) -> None:
        _write_bytes(f, len(header).to_bytes(8, "little"))
        _write_bytes(f, header)
        for _, arr in entries:
            if arr.nbytes:
                _write_bytes(f, _raw_bytes(arr))

    atomic_write(path, write, who="checkpoint.save")


def _raw_bytes(arr: np.ndarray) -> memoryview:
    return arr.reshape(-1).view(np.uint8).data  # the memoryview of its bytes


def _file_mode(path: str) -> int:
    """The permission bits for the new file: the old file's when overwriting, else ``0o666 & ~umask``."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_directory(directory: str) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# ----------------------------------------------------------------------------------------------- read


def _read_header(path: str, f: Any, size: int) -> tuple[dict[str, Any], int]:
    """Parse and validate the header; returns it and the byte offset where tensor data starts."""
    if size < 8:
        raise CheckpointError(f"checkpoint {path!r}: not a safetensors file ({size} bytes, truncated or foreign)")
    n = int.from_bytes(f.read(8), "little")
    if n > _MAX_HEADER_BYTES:
        raise CheckpointError(f"checkpoint {path!r}: not a safetensors file (header length {n} is implausible)")
    if 8 + n > size:
        raise CheckpointError(
            f"checkpoint {path!r}: header length {n} runs past the end of the file ({size} bytes): "
            "the file is truncated or not safetensors"
        )
    raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"checkpoint {path!r}: the header is not valid JSON ({exc}); not a safetensors file"
        ) from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"checkpoint {path!r}: the header is JSON but not an object; not a safetensors file")
    data_len = size - 8 - n
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise CheckpointError(f"checkpoint {path!r}: '__metadata__' must be a dict of strings")
    for name, info in header.items():
        if name == "__metadata__":
            continue
        _check_entry(path, name, info, data_len)
    return header, 8 + n


def _check_entry(path: str, name: str, info: Any, data_len: int) -> None:
    where = f"checkpoint {path!r}: tensor {name!r}"
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
        raise CheckpointError(f"{where}: entry must have 'dtype', 'shape' and 'data_offsets', got {info!r}")
    if info["dtype"] not in _CODES:
        raise CheckpointError(f"{where}: unsupported dtype {info['dtype']!r} (known: {', '.join(_CODES)})")
    shape, offsets = info["shape"], info["data_offsets"]
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise CheckpointError(f"{where}: shape must be a list of ints >= 0, got {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) for o in offsets)
        or not 0 <= offsets[0] <= offsets[1] <= data_len
    ):
        raise CheckpointError(
            f"{where}: data_offsets {offsets!r} out of range for {data_len} data bytes (file truncated?)"
        )
    expected = math.prod(shape) * _CODES[info["dtype"]].itemsize
    if offsets[1] - offsets[0] != expected:
        raise CheckpointError(
            f"{where}: data_offsets {offsets!r} span {offsets[1] - offsets[0]} bytes, but dtype "
            f"{info['dtype']} and shape {shape} need {expected}"
        )


def _open(path: str | os.PathLike[str]) -> tuple[str, Any, int]:
    path = os.fspath(path)
    if os.path.isdir(path):
        inside = os.path.join(path, "checkpoint.safetensors")
        hint = f"; did you mean {inside!r}?" if os.path.isfile(inside) else ""
        raise IsADirectoryError(errno.EISDIR, f"checkpoint {path!r} is a directory, not a checkpoint file{hint}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r}: no such file")
    return path, open(path, "rb"), os.path.getsize(path)


def _read(path: str | os.PathLike[str]) -> tuple[str, dict[str, np.ndarray], dict[str, str]]:
    path, f, size = _open(path)
    with f:
        header, start = _read_header(path, f, size)
        f.seek(start)
        data = f.read()
    if len(data) != size - start:
        raise CheckpointError(f"checkpoint {path!r}: the file changed size while being read")
    meta = header.get("__metadata__", {})
    crcs = _stored_crcs(path, meta)
    arrays, corrupt = {}, []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _CODES[info["dtype"]]
        begin, end = info["data_offsets"]
        if crcs is not None and crcs.get(name) != _tensor_crc(
            info["dtype"], info["shape"], memoryview(data)[begin:end]
        ):
            corrupt.append(name)
        count = math.prod(info["shape"])
        arrays[name] = np.frombuffer(data, dtype=dtype, count=count, offset=begin).reshape(info["shape"]).copy()
    if crcs is not None:
        corrupt += sorted(set(crcs) - set(arrays) - {"__metadata__"})  # a name changed in the header
    if corrupt:
        raise CheckpointError(
            f"checkpoint {path!r} is corrupt: {_listing(corrupt)} fail(s) the CRC-32 check of the tensor data "
            "(a flipped bit, a truncated or altered copy); restore an intact copy"
        )
    return path, arrays, meta


def _stored_crcs(path: str, meta: dict[str, str]) -> dict[str, str] | None:
    """The stored checksums (``None`` for files without them), after checking the metadata string's."""
    if _CRC_KEY not in meta:
        return None
    crcs = _decode_json(path, meta, _CRC_KEY)
    if not isinstance(crcs, dict):
        raise CheckpointError(f"checkpoint {path!r}: metadata entry {_CRC_KEY!r} is not a dict; the file is corrupt")
    if _META_KEY in meta and crcs.get("__metadata__") != _text_crc(meta[_META_KEY]):
        raise CheckpointError(
            f"checkpoint {path!r} is corrupt: its metadata fails its CRC-32 check; restore an intact copy"
        )
    return crcs


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def _decode_json(path: str, meta: dict[str, str], key: str) -> Any:
    try:
        return json.loads(meta[key])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"checkpoint {path!r}: metadata entry {key!r} is not valid JSON ({exc})") from exc


def load_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata dict given to :func:`save` (decoded from JSON), reading only the header.

    For a safetensors file written by another tool, its raw ``__metadata__`` dict of strings.
    """
    path, f, size = _open(path)
    with f:
        header, _ = _read_header(path, f, size)
    meta = header.get("__metadata__", {})
    _stored_crcs(path, meta)
    if _META_KEY in meta:
        metadata: dict[str, Any] = _decode_json(path, meta, _META_KEY)  # save wrote a dict
        return metadata
    return dict(meta)


# ----------------------------------------------------------------------------------------------- restore


def _leaf_spec(leaf: Any) -> tuple[tuple[int, ...], np.dtype, str | None]:
    """What the target leaf expects on disk: (shape, dtype, PRNG impl or None for plain arrays).

    An abstract key (``ShapeDtypeStruct`` of a key dtype) reports impl ``"?"``: any impl whose key data
    has the right shape is accepted.
    """
    if _is_prng_key(leaf):
        if isinstance(leaf, jax.ShapeDtypeStruct):
            data = jax.eval_shape(jax.random.key_data, leaf)
            return tuple(data.shape), np.dtype(data.dtype), "?"
        data = jax.random.key_data(leaf)
        return tuple(data.shape), np.dtype(data.dtype), str(jax.random.key_impl(leaf))
    if hasattr(leaf, "dtype") and hasattr(leaf, "shape"):
        return tuple(leaf.shape), np.dtype(leaf.dtype), None
    arr = np.asarray(leaf)
    return arr.shape, arr.dtype, None


def _rebuild(arr: np.ndarray, leaf: Any, impl: str | None) -> Any:
    """The restored array in the target leaf's kind: NumPy stays NumPy, Python scalars stay scalars."""
    if _is_prng_key(leaf):
        return jax.random.wrap_key_data(_on_device(arr), impl=impl)
    if isinstance(leaf, np.ndarray):
        return arr
    if isinstance(leaf, (bool, int, float, complex, np.generic)):
        return type(leaf)(arr.item())
    if getattr(leaf, "weak_type", False) and arr.ndim == 0:
        weak = jnp.asarray(arr.item())  # a Python scalar gives a weakly typed array, as the target was
        if weak.dtype == arr.dtype:
            return weak
    return _on_device(arr)


def _on_device(arr: np.ndarray) -> jax.Array:
    # A fresh copy handed to the device (the file's buffer is not kept alive by the array), without
    # jnp.asarray: it runs a staging program, compiled once per tensor shape (dozens for a ResNet).
    out: jax.Array = jax.device_put(np.array(arr))
    return out


def restore(path: str | os.PathLike[str], target: Any = None) -> tuple[Any, dict[str, Any]]:
    """Read a checkpoint; returns ``(tree, metadata)``.

    With ``target`` (a pytree of the same structure: arrays, NumPy arrays, numbers, typed keys or
    ``jax.ShapeDtypeStruct``), every tensor is checked against the target leaf of the same name and the
    tree comes back with the target's structure; any missing or unexpected tensor, shape or dtype
    difference raises :class:`CheckpointMismatchError` listing all of them. Without ``target``, a nested
    dict split on ``"/"`` with NumPy arrays as leaves (typed PRNG keys rewrapped as JAX keys).

    Raises :class:`CheckpointError` (a ``ValueError``) for truncated, corrupt or foreign files.
    """
    path, arrays, meta = _read(path)
    metadata = _decode_json(path, meta, _META_KEY) if _META_KEY in meta else dict(meta)
    impls: dict[str, str] = _decode_json(path, meta, _PRNG_KEY) if _PRNG_KEY in meta else {}
    if target is None:
        return _as_nested_dict(path, arrays, impls), metadata

    named, treedef = _flatten(target)
    problems: list[str] = []
    names = {name for name, _ in named}
    missing = [name for name, _ in named if name not in arrays]
    unexpected = sorted(set(arrays) - names)
    if missing:
        problems.append(f"missing in the file: {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected in the file (not in the target): {_listing(unexpected)}")
    for name, leaf in named:
        if name not in arrays:
            continue
        shape, dtype, impl = _leaf_spec(leaf)
        arr = arrays[name]
        if arr.shape != shape:
            problems.append(f"{name}: shape {arr.shape} in the file, {shape} in the target")
        if arr.dtype != dtype:
            problems.append(f"{name}: dtype {arr.dtype} in the file, {dtype} in the target")
        file_impl = impls.get(name)
        if impl is not None and file_impl is None:
            problems.append(f"{name}: the target holds a typed PRNG key, the file a plain {arr.dtype} array")
        elif impl is None and file_impl is not None:
            problems.append(f"{name}: the file holds a typed PRNG key ({file_impl}), the target a plain array")
        elif impl not in (None, "?") and impl != file_impl:
            problems.append(f"{name}: PRNG impl {file_impl} in the file, {impl} in the target")
    if problems:
        shown = problems[:_LISTED] + ([f"... and {len(problems) - _LISTED} more"] if len(problems) > _LISTED else [])
        raise CheckpointMismatchError(
            f"checkpoint {path!r} does not match the target pytree ({len(problems)} difference(s)):\n  "
            + "\n  ".join(shown)
        )
    leaves = [_rebuild(arrays[name], leaf, impls.get(name)) for name, leaf in named]
    return jax.tree_util.tree_unflatten(treedef, leaves), metadata


def _as_nested_dict(path: str, arrays: dict[str, np.ndarray], impls: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in sorted(arrays):  # sorted: a tensor "a" comes before any "a/..." it would have to hold
        value: Any = arrays[name]
        if name in impls:
            value = jax.random.wrap_key_data(_on_device(value), impl=impls[name])
        parts = name.split("/")
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise CheckpointError(f"checkpoint {path!r}: tensor {name!r} nests under the tensor {part!r}")
            node = child
        node[parts[-1]] = value
    return out
