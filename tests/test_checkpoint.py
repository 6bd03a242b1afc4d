"""Checkpoints: bit-exact round trips, safetensors/torch interop, atomic writes, and every error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from jcnn.training import checkpoint
from jcnn.training.checkpoint import CheckpointError, CheckpointMismatchError

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Moments(NamedTuple):
    mu: dict
    count: jax.Array


class State(NamedTuple):
    params: dict
    state: dict
    opt_state: tuple
    step: jax.Array
    rng: jax.Array


def _bits(x) -> bytes:
    if jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    return np.asarray(x).tobytes()


def _assert_same(a, b):
    """Same structure, same leaf kinds, same dtypes and shapes, same bytes."""
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        assert type(x) is type(y) or (isinstance(x, jax.Array) and isinstance(y, jax.Array)), (type(x), type(y))
        assert getattr(x, "dtype", None) == getattr(y, "dtype", None)
        assert np.shape(x) == np.shape(y)
        assert getattr(x, "weak_type", False) == getattr(y, "weak_type", False)
        assert _bits(x) == _bits(y)


def _tree():
    r = np.random.default_rng(0)
    bf = jnp.asarray(r.standard_normal((3, 3, 2, 4)), dtype=jnp.bfloat16)
    bf = bf.at[0, 0, 0].set(jnp.array([jnp.nan, -0.0, jnp.inf, -jnp.inf], jnp.bfloat16))
    params = {
        "conv_0": {"kernel": bf, "bias": jnp.asarray(r.standard_normal(4), jnp.float32)},
        "dense_1": {"kernel": jnp.asarray(r.standard_normal((4, 3)), jnp.float16), "bias": jnp.zeros(3, jnp.float64)},
    }
    state = {"bn_0": {"mean": np.arange(4, dtype=np.float32), "count": np.int64(7)}, "empty": {}}
    opt = (
        Moments(mu=jax.tree_util.tree_map(jnp.zeros_like, params), count=jnp.asarray(3, jnp.int32)),
        [jnp.asarray([True, False]), np.zeros((0, 5), np.uint8)],
        None,
    )
    return State(params, state, opt, jnp.asarray(5), jax.random.key(42))


def test_round_trip_is_bit_exact_and_keeps_leaf_kinds(tmp_path):
    tree = _tree()
    checkpoint.save(tmp_path / "c.safetensors", tree, metadata={"config": {"lr": 0.1, "layers": (1, 2)}})
    restored, meta = checkpoint.restore(tmp_path / "c.safetensors", target=tree)
    _assert_same(restored, tree)
    assert meta == {"config": {"lr": 0.1, "layers": [1, 2]}}
    assert checkpoint.load_metadata(tmp_path / "c.safetensors") == meta
    assert isinstance(restored.state["bn_0"]["mean"], np.ndarray)
    assert restored.step.weak_type and not restored.opt_state[0].count.weak_type


def test_every_dtype_and_python_scalars(tmp_path):
    tree = {
        np.dtype(d).name: np.arange(6).reshape(2, 3).astype(d)
        for d in (
            np.bool_,
            np.uint8,
            np.int8,
            np.uint16,
            np.int16,
            np.uint32,
            np.int32,
            np.uint64,
            np.int64,
            np.float16,
            np.float32,
            np.float64,
            ml_dtypes.bfloat16,
            ml_dtypes.float8_e4m3fn,
            ml_dtypes.float8_e5m2,
        )
    }
    tree["scalars"] = [1, 2.5, True, np.float32(0.25)]
    tree["big_endian"] = np.arange(3, dtype=">i4")
    checkpoint.save(tmp_path / "d.safetensors", tree)
    restored, _ = checkpoint.restore(
        tmp_path / "d.safetensors",
        target=jax.tree_util.tree_map(
            lambda x: x.astype("<i4") if getattr(x, "dtype", None) == np.dtype(">i4") else x, tree
        ),
    )
    for name in tree:
        if name not in ("scalars", "big_endian"):
            _assert_same(restored[name], tree[name])
    assert restored["scalars"] == [1, 2.5, True, np.float32(0.25)]
    assert [type(v) for v in restored["scalars"]] == [int, float, bool, np.float32]
    np.testing.assert_array_equal(restored["big_endian"], [0, 1, 2])


def test_tensor_names_follow_key_paths(tmp_path):
    tree = _tree()
    names = checkpoint.tensor_names(tree)
    assert "params/conv_0/kernel" in names and "state/bn_0/mean" in names
    assert "opt_state/0/mu/dense_1/bias" in names and "opt_state/0/count" in names
    assert "opt_state/1/0" in names and "step" in names and "rng" in names
    assert checkpoint.tensor_names(jnp.ones(2)) == ["value"]
    checkpoint.save(tmp_path / "c", tree)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "c"), framework="numpy") as f:
        assert sorted(f.keys()) == sorted(names)
        meta = f.metadata()
    assert json.loads(meta["jcnn_prng_keys"]) == {"rng": "threefry2x32"}


def test_restore_without_target_gives_nested_dicts(tmp_path):
    tree = _tree()
    checkpoint.save(tmp_path / "c", tree)
    raw, _ = checkpoint.restore(tmp_path / "c")
    assert set(raw) == {"params", "state", "opt_state", "step", "rng"}
    assert isinstance(raw["params"]["conv_0"]["kernel"], np.ndarray)
    assert raw["params"]["conv_0"]["kernel"].dtype == jnp.bfloat16
    assert _bits(raw["params"]["conv_0"]["kernel"]) == _bits(tree.params["conv_0"]["kernel"])
    assert raw["opt_state"]["0"]["count"].shape == ()
    assert jax.dtypes.issubdtype(raw["rng"].dtype, jax.dtypes.prng_key)
    assert _bits(raw["rng"]) == _bits(tree.rng)


def test_restore_into_abstract_target_and_other_key_impls(tmp_path):
    tree = {"w": jnp.ones((2, 3), jnp.float32), "rng": jax.random.key(1, impl="rbg"), "raw": jax.random.PRNGKey(3)}
    checkpoint.save(tmp_path / "c", tree)
    restored, _ = checkpoint.restore(tmp_path / "c", jax.eval_shape(lambda: tree))
    assert str(jax.random.key_impl(restored["rng"])) == "rbg"
    assert _bits(restored["rng"]) == _bits(tree["rng"])
    assert restored["raw"].dtype == jnp.uint32
    np.testing.assert_array_equal(restored["w"], tree["w"])


def test_interop_with_safetensors_and_torch(tmp_path):
    import torch
    from safetensors.numpy import load_file as np_load
    from safetensors.numpy import save_file as np_save
    from safetensors.torch import load_file as torch_load

    tree = _tree()
    checkpoint.save(tmp_path / "c.safetensors", tree)
    flat = dict(zip(checkpoint.tensor_names(tree), jax.tree_util.tree_leaves(tree)))
    loaded = torch_load(str(tmp_path / "c.safetensors"))
    assert set(loaded) == set(flat)
    kernel = loaded["params/conv_0/kernel"]
    assert kernel.dtype == torch.bfloat16 and tuple(kernel.shape) == (3, 3, 2, 4)
    assert kernel.view(torch.int16).numpy().tobytes() == _bits(flat["params/conv_0/kernel"])
    assert loaded["params/dense_1/kernel"].dtype == torch.float16
    assert loaded["opt_state/1/0"].dtype == torch.bool
    np.testing.assert_array_equal(loaded["rng"].numpy(), jax.random.key_data(tree.rng))

    no_bf16 = {"a": {"b": np.arange(6, dtype=np.float32).reshape(2, 3)}, "c": np.int64(4)}
    checkpoint.save(tmp_path / "n.safetensors", no_bf16)
    arrays = np_load(str(tmp_path / "n.safetensors"))
    np.testing.assert_array_equal(arrays["a/b"], no_bf16["a"]["b"])
    assert arrays["c"].shape == () and arrays["c"] == 4

    # The other direction: a file written by the safetensors package restores, flat names and metadata.
    np_save({"layer.weight": np.ones((2, 2), np.float32)}, str(tmp_path / "f.safetensors"), metadata={"format": "np"})
    raw, meta = checkpoint.restore(tmp_path / "f.safetensors")
    np.testing.assert_array_equal(raw["layer.weight"], np.ones((2, 2)))
    assert meta == {"format": "np"} == checkpoint.load_metadata(tmp_path / "f.safetensors")


def test_failed_save_leaves_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    old = _tree()
    checkpoint.save(path, old, metadata={"epoch": 1})
    new = old._replace(step=jnp.asarray(6))
    calls = []

    def failing_write(f, data):
        calls.append(len(data))
        if len(calls) == 4:
            raise OSError("disk full (simulated)")
        f.write(data)

    monkeypatch.setattr(checkpoint, "_write_bytes", failing_write)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, new, metadata={"epoch": 2})
    monkeypatch.undo()
    restored, meta = checkpoint.restore(path, old)
    _assert_same(restored, old)
    assert meta == {"epoch": 1}
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]  # the temp file was removed

    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("rename failed")))
    with pytest.raises(OSError, match="rename failed"):
        checkpoint.save(path, new)
    monkeypatch.undo()
    _assert_same(checkpoint.restore(path, old)[0], old)
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]


def test_process_killed_mid_write_leaves_previous_checkpoint(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    checkpoint.save(path, {"w": np.arange(4.0)}, metadata={"epoch": 1})
    # A child process that dies (no cleanup, no exception handling) after writing part of the new file.
    script = f"""
import os, numpy as np
from jcnn.training import checkpoint
calls = []
def write(f, data):
    calls.append(1)
    f.write(data)
    if len(calls) == 3:
        f.flush()
        os._exit(9)
checkpoint._write_bytes = write
checkpoint.save({str(path)!r}, {{"w": np.arange(400.0)}}, metadata={{"epoch": 2}})
"""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", script], cwd=_REPO, env=env, timeout=120)
    assert proc.returncode == 9
    leftovers = [n for n in os.listdir(tmp_path) if n != "ckpt.safetensors"]
    assert len(leftovers) == 1 and leftovers[0].endswith(".tmp")  # the half-written temp file
    restored, meta = checkpoint.restore(path, {"w": np.zeros(4)})
    np.testing.assert_array_equal(restored["w"], np.arange(4.0))
    assert meta == {"epoch": 1}
    # The dead writer's temporary file goes at the next save.
    checkpoint.save(path, {"w": np.arange(4.0)}, metadata={"epoch": 3})
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]


def test_save_fsyncs_file_and_directory(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_ino), real(fd)))
    checkpoint.save(tmp_path / "c", {"a": np.ones(2)})
    # The data file (its inode survives the rename), then the directory holding the new name.
    assert synced == [os.stat(tmp_path / "c").st_ino, os.stat(tmp_path).st_ino]


def test_file_mode_follows_umask_and_the_old_file(tmp_path):
    path = tmp_path / "c"
    checkpoint.save(path, {"a": np.ones(1)})
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
    os.chmod(path, 0o640)
    checkpoint.save(path, {"a": np.zeros(1)})
    assert os.stat(path).st_mode & 0o777 == 0o640


def _resume_problem():
    """A tiny model, data and a jitted SGD-with-momentum step that also consumes the rng."""
    from jcnn.layers import Dense

    layer = Dense(3)
    _, params, _ = layer.init(jax.random.key(0), (-1, 4))
    data_rng = np.random.default_rng(1)
    xs = jnp.asarray(data_rng.standard_normal((6, 8, 4)), jnp.float32)
    ys = jnp.asarray(data_rng.standard_normal((6, 8, 3)), jnp.float32)

    @jax.jit
    def step(s: State, x, y) -> State:
        rng, noise_key = jax.random.split(s.rng)
        noise = jax.random.normal(noise_key, x.shape, x.dtype) * 0.1

        def loss(p):
            out, _ = layer.apply(p, {}, x + noise, train=True)
            return jnp.mean((out - y) ** 2)

        grads = jax.grad(loss)(s.params)
        mu = jax.tree_util.tree_map(lambda m, g: 0.9 * m + g, s.opt_state[0].mu, grads)
        params = jax.tree_util.tree_map(lambda p, m: p - 0.05 * m, s.params, mu)
        return State(params, s.state, (Moments(mu, s.opt_state[0].count + 1),), s.step + 1, rng)

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    init = State(params, {}, (Moments(zeros, jnp.zeros((), jnp.int32)),), jnp.zeros((), jnp.int32), jax.random.key(7))
    return init, step, xs, ys


def test_resume_equals_uninterrupted_bit_for_bit(tmp_path):
    init, step, xs, ys = _resume_problem()
    straight = init
    for i in range(6):
        straight = step(straight, xs[i], ys[i])
    first = init
    for i in range(3):
        first = step(first, xs[i], ys[i])
    checkpoint.save(tmp_path / "mid", first, metadata={"step": 3})
    resumed, meta = checkpoint.restore(tmp_path / "mid", target=init)
    assert meta == {"step": 3}
    for i in range(3, 6):
        resumed = step(resumed, xs[i], ys[i])
    _assert_same(resumed, straight)


def test_mismatch_lists_every_difference(tmp_path):
    tree = {
        "a": jnp.ones((2, 3), jnp.float32),
        "b": jnp.ones(4, jnp.int32),
        "c": jnp.ones(2),
        "k": jax.random.key(0),
        "plain": jnp.zeros(2, jnp.uint32),
        "gone": np.ones(1),
    }
    checkpoint.save(tmp_path / "c", tree)
    target = {
        "a": jnp.ones((3, 2), jnp.float32),
        "b": jnp.ones(4, jnp.float32),
        "c": jnp.ones(2),
        "k": jnp.zeros(2, jnp.uint32),
        "plain": jax.random.key(0),
        "new": np.ones(1),
    }
    with pytest.raises(CheckpointMismatchError) as info:
        checkpoint.restore(tmp_path / "c", target)
    msg = str(info.value)
    assert "(6 difference(s))" in msg
    assert "missing in the file: new" in msg
    assert "unexpected in the file (not in the target): gone" in msg
    assert "a: shape (2, 3) in the file, (3, 2) in the target" in msg
    assert "b: dtype int32 in the file, float32 in the target" in msg
    assert "k: the file holds a typed PRNG key (threefry2x32), the target a plain array" in msg
    assert "plain: the target holds a typed PRNG key, the file a plain uint32 array" in msg
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)

    checkpoint.save(tmp_path / "k", {"k": jax.random.key(0, impl="unsafe_rbg")})
    with pytest.raises(CheckpointMismatchError, match="k: PRNG impl unsafe_rbg in the file, rbg in the target"):
        checkpoint.restore(tmp_path / "k", {"k": jax.random.key(0, impl="rbg")})


def _write_raw(path, header, data=b"", *, raw_header: bytes | None = None):
    body = raw_header if raw_header is not None else json.dumps(header).encode()
    path.write_bytes(len(body).to_bytes(8, "little") + body + data)
    return path


_GOOD = {"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}


@pytest.mark.parametrize(
    "header, raw, data, match",
    [
        (None, b"", b"", None),  # replaced below: a file shorter than 8 bytes
        (None, b"{not json", b"", "the header is not valid JSON"),
        (None, b"\xff\xfe", b"", "the header is not valid JSON"),
        ([1, 2], None, b"", "the header is JSON but not an object"),
        ({"__metadata__": {"a": 1}}, None, b"", "'__metadata__' must be a dict of strings"),
        ({"t": {"dtype": "F32", "shape": [2]}}, None, bytes(8), "tensor 't': entry must have 'dtype', 'shape'"),
        ({"t": {"dtype": "C64", "shape": [2], "data_offsets": [0, 8]}}, None, bytes(8), "unsupported dtype 'C64'"),
        (
            {"t": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}},
            None,
            bytes(8),
            "shape must be a list of ints",
        ),
        (_GOOD, None, bytes(5), r"data_offsets \[0, 8\] out of range for 5 data bytes"),
        ({"t": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, None, bytes(8), "out of range"),
        ({"t": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, None, bytes(8), "span 8 bytes, but dtype F32"),
        ({"__metadata__": {"jcnn_metadata": "{oops"}}, None, b"", "metadata entry 'jcnn_metadata' is not valid JSON"),
    ],
)
def test_malformed_files_give_clear_errors(tmp_path, header, raw, data, match):
    path = tmp_path / "bad.safetensors"
    if match is None:
        path.write_bytes(b"\x01\x02\x03")
        match = r"not a safetensors file \(3 bytes, truncated or foreign\)"
    else:
        _write_raw(path, header, data, raw_header=raw)
    with pytest.raises(CheckpointError, match=f"checkpoint '.*bad.safetensors': .*{match}"):
        checkpoint.restore(path)
    assert issubclass(CheckpointError, ValueError)


def test_truncated_and_foreign_files(tmp_path):
    path = tmp_path / "c"
    checkpoint.save(path, _tree())
    blob = path.read_bytes()
    path.write_bytes(blob[:-10])
    with pytest.raises(CheckpointError, match="out of range .* data bytes .file truncated"):
        checkpoint.restore(path)
    path.write_bytes(blob[:100])
    with pytest.raises(CheckpointError, match="header length .* runs past the end of the file .100 bytes"):
        checkpoint.load_metadata(path)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(CheckpointError, match="header length .* is implausible"):
        checkpoint.restore(path)
    with pytest.raises(FileNotFoundError, match="checkpoint .*absent.*: no such file"):
        checkpoint.restore(tmp_path / "absent")
    _write_raw(
        path,
        {
            "a": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]},
            "a/b": {"dtype": "F32", "shape": [], "data_offsets": [4, 8]},
        },
        bytes(8),
    )
    with pytest.raises(CheckpointError, match="tensor 'a/b' nests under the tensor 'a'"):
        checkpoint.restore(path)


class _Key:
    def __init__(self, order):
        self.order = order

    def __lt__(self, other):
        return self.order < other.order

    def __str__(self):
        return "k"


class _NoArray:
    def __array__(self, *args, **kwargs):
        raise RuntimeError("cannot convert")


@pytest.mark.parametrize(
    "tree, metadata, error, match",
    [
        (
            {"w": np.ones(2, np.complex64)},
            None,
            ValueError,
            "leaf 'w' has dtype complex64, which safetensors cannot store",
        ),
        ({"w": np.array(["a"])}, None, ValueError, "leaf 'w' has dtype <U1"),
        ({"a/b": np.ones(1)}, None, ValueError, "pytree key 'a/b' cannot be a tensor name"),
        ({"": np.ones(1)}, None, ValueError, "pytree key '' cannot be a tensor name"),
        (
            {_Key(1): np.ones(1), _Key(2): np.ones(1)},
            None,
            ValueError,
            "two leaves of the pytree map to the tensor name 'k'",
        ),
        ({"w": jax.ShapeDtypeStruct((2,), jnp.float32)}, None, TypeError, "leaf 'w' is an abstract ShapeDtypeStruct"),
        ({"w": _NoArray()}, None, TypeError, "leaf 'w' of type _NoArray is not an array or number"),
        ({"w": np.ones(1)}, {"f": object()}, TypeError, "metadata must be a JSON-serialisable dict"),
    ],
)
def test_save_errors(tmp_path, tree, metadata, error, match):
    with pytest.raises(error, match=match):
        checkpoint.save(tmp_path / "c", tree, metadata=metadata)
    assert os.listdir(tmp_path) == []


def test_save_into_missing_directory(tmp_path):
    with pytest.raises(ValueError, match="checkpoint.save: directory .*nowhere.* does not exist"):
        checkpoint.save(tmp_path / "nowhere" / "c", {"a": np.ones(1)})


def _flip(path, offset_from_end: int) -> None:
    blob = bytearray(path.read_bytes())
    blob[-offset_from_end] ^= 0x10
    path.write_bytes(bytes(blob))


def test_a_flipped_data_byte_is_caught(tmp_path):
    path = tmp_path / "c"
    tree = {"a": np.arange(6, dtype=np.float32), "b": np.ones(3, np.int64)}
    checkpoint.save(path, tree, metadata={"epoch": 1})
    _flip(path, 3)  # inside the last tensor, "b"
    for call in (lambda: checkpoint.restore(path), lambda: checkpoint.restore(path, tree)):
        with pytest.raises(CheckpointError, match=r"checkpoint '.*c' is corrupt: b fail\(s\) the CRC-32 check"):
            call()
    assert checkpoint.load_metadata(path) == {"epoch": 1}  # the header is intact


def test_a_changed_header_is_caught(tmp_path):
    path = tmp_path / "c"
    checkpoint.save(path, {"a": np.arange(4, dtype=np.float32)}, metadata={"lr": 0.125})
    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    for old, new, match in (
        (b"0.125", b"0.625", "its metadata fails its CRC-32 check"),
        (b'"F32"', b'"I32"', r"a fail\(s\) the CRC-32 check"),  # same size, other values
        (b'"a"', b'"z"', r"z, a fail\(s\)"),
    ):
        head = blob[8 : 8 + n]
        assert old in head
        path.write_bytes(blob[:8] + head.replace(old, new, 1) + blob[8 + n :])
        with pytest.raises(CheckpointError, match=match):
            checkpoint.restore(path)
    path.write_bytes(blob[:8] + blob[8 : 8 + n].replace(b"0.125", b"0.625", 1) + blob[8 + n :])
    with pytest.raises(CheckpointError, match="metadata fails its CRC-32 check"):
        checkpoint.load_metadata(path)


def test_checkpoints_without_checksums_still_load(tmp_path):
    """Files of older jcnn (no jcnn_crc32 entry) restore unverified."""
    path = tmp_path / "c"
    checkpoint.save(path, {"a": np.arange(4, dtype=np.float32)}, metadata={"epoch": 2})
    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    del header["__metadata__"]["jcnn_crc32"]
    raw = json.dumps(header).encode()
    raw += b" " * (-(8 + len(raw)) % 8)
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + blob[8 + n :])
    restored, meta = checkpoint.restore(path, {"a": np.zeros(4, np.float32)})
    np.testing.assert_array_equal(restored["a"], np.arange(4))
    assert meta == {"epoch": 2}


def test_stale_temp_files_are_removed_by_the_next_save(tmp_path):
    path = tmp_path / "c.safetensors"
    dead = tmp_path / ".c.safetensors.999999999.abc.tmp"  # beyond any pid_max: that process is gone
    old_style = tmp_path / ".c.safetensors.k2j3h4.tmp"  # jcnn before the pid in the name
    live = tmp_path / f".c.safetensors.{os.getppid()}.xyz.tmp"  # a writer that is still running
    mine = tmp_path / f".c.safetensors.{os.getpid()}.own.tmp"
    other = tmp_path / ".other.safetensors.999999999.abc.tmp"  # another target's: not ours to touch
    for p in (dead, old_style, live, mine, other):
        p.write_bytes(b"partial")
    checkpoint.save(path, {"a": np.ones(1)})
    assert sorted(os.listdir(tmp_path)) == sorted(["c.safetensors", live.name, mine.name, other.name])
    assert checkpoint.remove_stale_temp_files(tmp_path / "other.safetensors") == [str(other)]


def test_save_errors_name_the_target(tmp_path, monkeypatch):
    with pytest.raises(IsADirectoryError, match=r"checkpoint.save: '.*' is a directory; give a file path such as"):
        checkpoint.save(tmp_path, {"a": np.ones(1)})

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".c.123.tmp"))

    monkeypatch.setattr(checkpoint.tempfile, "mkstemp", denied)
    with pytest.raises(PermissionError, match=r"checkpoint.save: cannot write '.*/c': Permission denied") as info:
        checkpoint.save(tmp_path / "c", {"a": np.ones(1)})
    assert ".tmp" not in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_save_into_a_read_only_directory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match=r"checkpoint.save: cannot write '.*ro/c'"):
            checkpoint.save(ro / "c", {"a": np.ones(1)})
    finally:
        ro.chmod(0o700)


def test_restore_of_a_directory_says_so(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"checkpoint '.*' is a directory, not a checkpoint file$"):
        checkpoint.restore(tmp_path)
    checkpoint.save(tmp_path / "checkpoint.safetensors", {"a": np.ones(1)})
    with pytest.raises(
        IsADirectoryError,
        match=r"is a directory, not a checkpoint file; did you mean "
        r"'.*checkpoint.safetensors'\?",
    ):
        checkpoint.load_metadata(tmp_path)


def test_reserved_name_and_long_mismatch_lists(tmp_path):
    with pytest.raises(ValueError, match="the pytree key '__metadata__' cannot be a tensor name"):
        checkpoint.save(tmp_path / "c", {"__metadata__": np.ones(1)})
    checkpoint.save(tmp_path / "c", {f"w{i:02d}": np.ones(1) for i in range(30)})
    with pytest.raises(CheckpointMismatchError) as info:
        checkpoint.restore(tmp_path / "c", {f"v{i:02d}": np.ones(1) for i in range(30)})
    msg = str(info.value)
    assert "missing in the file: v00, v01" in msg and "v19 and 10 more" in msg and "v20" not in msg
