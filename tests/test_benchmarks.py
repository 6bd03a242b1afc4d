"""The benchmark twins are the same networks: jcnn (the zoo, or the CIFAR ResNet-18 built in
``benchmarks/impls/jcnn_models.py``), the hand-written raw-``lax`` program and the PyTorch eager model
(``jcnn.interop.torch_twins``, channels-first and channels-last) give the same logits (eval and training
mode) and the same BatchNorm statistics from one set of weights, in float64; the harness builds every
implementation and writes its JSON. No timings are asserted here."""

from __future__ import annotations

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import compare
from benchmarks.impls import common as C
from benchmarks.impls import jcnn_models, raw_lax
from tests.helpers import assert_close

torch = pytest.importorskip("torch")
import jcnn  # noqa: E402
import jcnn.interop.torch  # noqa: E402
from benchmarks.impls import torch_models  # noqa: E402

# float64 end to end: the twins must agree to rounding, so any structural difference (a missing
# shortcut, a BatchNorm convention, a flatten order) shows up far above it.
F64_RTOL = 1e-10
SIZE = 32


@functools.cache
def _jcnn_init(model: str) -> tuple[dict, dict]:
    return jcnn_models.init(model, SIZE, seed=0)  # seconds per model: share it between the tests


def _weights(model: str, seed: int = 1) -> tuple[dict, dict]:
    """jcnn params and state in float64, with BatchNorm affine params and running statistics moved off
    their identity initial values so that eval-mode BatchNorm is exercised."""
    params, state = _jcnn_init(model)
    rng = np.random.default_rng(seed)

    def perturb(path, leaf):
        name = jax.tree_util.keystr(path)
        a = np.asarray(leaf, np.float64)
        if name.endswith("['var']"):
            return jnp.asarray(rng.uniform(0.5, 1.5, a.shape))
        if name.endswith("['mean']") or name.endswith("['scale']") or name.endswith("['bias']"):
            return jnp.asarray(a + 0.1 * rng.standard_normal(a.shape))
        return jnp.asarray(a)

    return (jax.tree_util.tree_map_with_path(perturb, params), jax.tree_util.tree_map_with_path(perturb, state))


def _state_dict(model: str, params: dict, state: dict) -> dict[str, np.ndarray]:
    """jcnn params/state → the torch twin's ``state_dict`` (NumPy)."""
    if model != "cifar_resnet18":
        return jcnn.interop.torch.export_state_dict(
            jcnn_models.make(model), params, state, input_shape=(1, SIZE, SIZE, C.in_channels(model))
        )
    out = {}
    for tree in (params, state):
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
            keys = tuple(str(k.key) for k in path)
            a = np.asarray(leaf)
            if keys[-1] == "kernel":
                a = a.transpose(3, 2, 0, 1) if a.ndim == 4 else a.T  # HWIO → OIHW, (in, out) → (out, in)
            out[jcnn_models.torch_key(keys)] = a
    return out


def _as_raw(model: str, params: dict, state: dict) -> tuple[dict, dict]:
    """jcnn's params/state in the raw program's nesting (the CIFAR ResNet-18's residual wrappers dropped)."""
    if model != "cifar_resnet18":
        return params, state
    flat = _state_dict(model, params, state)
    raw_p, raw_s = raw_lax.init(model, SIZE)

    def pick(path, leaf):
        keys = tuple(str(k.key) for k in path)
        a = flat[jcnn_models.torch_key(keys)]
        if keys[-1] == "kernel":
            a = a.transpose(2, 3, 1, 0) if a.ndim == 4 else a.T
        return jnp.asarray(a)

    return jax.tree_util.tree_map_with_path(pick, raw_p), jax.tree_util.tree_map_with_path(pick, raw_s)


def _torch_twin(model: str, params: dict, state: dict, channels_last: bool = False) -> torch.nn.Module:
    net = torch_models.make(model).double()
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in _state_dict(model, params, state).items()}
    net.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in sd.items()}, strict=True)
    return net.to(memory_format=torch.channels_last) if channels_last else net


# LeNet-5 in the fast run; the deeper twins compile for ~15-30 s each, so they run in the slow step
# (ResNet-50 shares ResNet-18's code paths but for the bottleneck, which the structure test covers).
# The benchmark harness's big networks: `make test-bench` (marker "bench"), not `make test` (the library's
# own numerics are the zoo and ledger tests'; LeNet-5's rows here stay in the fast suite).
BENCH = [pytest.mark.slow, pytest.mark.bench]
DEEP = [pytest.param(m, marks=BENCH) for m in ("resnet18", "mobilenet_v2", "cifar_resnet18", "vgg11_bn")]


@pytest.mark.parametrize("model", ["lenet5", *DEEP])
def test_twins_compute_the_same_logits(model: str) -> None:
    params, state = _weights(model)
    x, _ = C.example_batch(model, 4, SIZE, seed=2)
    x = jnp.asarray(x.astype(np.float64))
    net = jcnn_models.make(model)
    raw_params, raw_state0 = _as_raw(model, params, state)
    twins = {"torch": _torch_twin(model, params, state), "torch_cl": _torch_twin(model, params, state, True)}
    for train in (False, True):
        # jit: one compile per model instead of one per op and shape.
        want, new_state = jax.jit(lambda p, s, xb: net.apply(p, s, xb, train=train))(params, state, x)
        raw, raw_state = jax.jit(lambda p, s, xb: raw_lax.apply(model, p, s, xb, train=train))(
            raw_params, raw_state0, x
        )
        assert want.dtype == jnp.float64
        assert_close(raw, want, F64_RTOL, f"{model} raw lax vs jcnn (train={train})")
        for name, tnet in twins.items():
            tnet.train(train)
            with torch.no_grad():
                tor = tnet(torch_models.to_input(np.asarray(x), channels_last=name == "torch_cl")).numpy()
            assert_close(tor, want, F64_RTOL, f"{model} {name} vs jcnn (train={train})")
        if train and state:
            # Running statistics after one step agree too (torch updated its buffers in place).
            tsd = twins["torch"].state_dict()
            jsd = _state_dict(model, params, new_state)
            for key, value in jsd.items():
                if key.endswith("running_mean") or key.endswith("running_var"):
                    # jcnn's BatchNorm layer blends running statistics through float32.
                    assert_close(tsd[key].numpy(), value, 1e-7, f"{model} {key}")
            flat_raw = jax.tree_util.tree_leaves(raw_state)
            flat_jcnn = [
                leaf
                for path, leaf in jax.tree_util.tree_leaves_with_path(new_state)
                if jax.tree_util.keystr(path).endswith(("['mean']", "['var']"))
            ]
            assert len(flat_raw) == len(flat_jcnn)


@pytest.mark.parametrize("model", ["lenet5", *DEEP, pytest.param("resnet50", marks=BENCH)])
def test_raw_lax_init_has_the_zoo_structure(model: str) -> None:
    def paths(tree):
        return sorted((jax.tree_util.keystr(p), tuple(a.shape)) for p, a in jax.tree_util.tree_leaves_with_path(tree))

    raw_p, raw_s = raw_lax.init(model, SIZE)
    jc_p, jc_s = _as_raw(model, *_jcnn_init(model))
    assert paths(raw_p) == paths(jc_p), model
    assert paths(raw_s) == paths(jc_s), model


@pytest.mark.slow
@pytest.mark.bench  # the benchmark harness, not the library: `make test-bench`
def test_one_train_step_agrees_jcnn_raw_torch() -> None:
    """LeNet-5: the same SGD-with-momentum step in all three gives the same loss and weights."""
    model = "lenet5"
    params, state = _weights(model)
    x, y = C.example_batch(model, 8, SIZE, seed=3)
    x = x.astype(np.float64)
    jc, jc_opt = jcnn_models.make_train_step(model)
    jc = jax.jit(jc)  # eagerly each primitive compiles on its own (26 s of this test on 2 cores)
    raw = jax.jit(raw_lax.make_train_step(model))
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    (p_raw, _, _), loss_raw = raw((params, state, zeros), jnp.asarray(x), jnp.asarray(y))
    (p_jc, _, _), loss_jc = jc((params, state, jc_opt.init(params)), jnp.asarray(x), jnp.asarray(y))
    assert_close(loss_raw, loss_jc, F64_RTOL, "loss raw vs jcnn")
    for a, b in zip(jax.tree_util.tree_leaves(p_raw), jax.tree_util.tree_leaves(p_jc)):
        assert_close(a, b, F64_RTOL, "params raw vs jcnn")
    sd = _state_dict(model, p_jc, state)
    for channels_last in (False, True):
        tnet = _torch_twin(model, params, state, channels_last)
        opt = torch.optim.SGD(tnet.parameters(), lr=C.LR, momentum=C.MOMENTUM)
        loss = torch.nn.functional.cross_entropy(
            tnet(torch_models.to_input(x, channels_last)), torch.from_numpy(y.astype(np.int64))
        )
        loss.backward()
        opt.step()
        assert_close(loss.item(), loss_jc, F64_RTOL, f"loss torch (channels_last={channels_last}) vs jcnn")
        for key, value in tnet.state_dict().items():
            assert_close(
                value.numpy(), sd[key], F64_RTOL, f"params torch (channels_last={channels_last}) vs jcnn {key}"
            )


@pytest.mark.slow
@pytest.mark.bench  # the benchmark harness, not the library: `make test-bench`
def test_compare_builds_every_impl_and_writes_the_schema(tmp_path, capsys) -> None:
    impls = ["jcnn", "raw", "torch", "torch_cl"]
    for peer, module in (("flax", "flax"), ("equinox", "equinox")):
        try:
            __import__(module)
            __import__("optax")
            impls.append(peer)
        except ImportError:  # the peers are the bench extra, not a test dependency
            pass
    out = tmp_path / "latest.json"
    compare.main(["--quick", "--models", "lenet5", "--impls", *impls, "--rounds", "1", "--out", str(out)])
    result = json.loads(out.read_text())
    assert {"rows", "versions", "machine"} <= set(result)
    assert [r["impl"] for r in result["rows"]] == impls
    for row in result["rows"]:
        assert row["model"] == "lenet5" and row["imgs_per_s"] > 0 and row["latency_ms"] > 0
        assert (row["batch"], row["size"]) == compare.SETTINGS["lenet5"]
        assert row["gflops_per_s"] > 0 and 0 < row["matmul_fraction"] and row["matmul_gflops"] > 0
        assert {"compile_s", "temp_bytes"} <= set(row)
        if row["impl"].startswith("torch"):
            assert row["compile_s"] is None and row["temp_bytes"] is None
        else:
            assert row["compile_s"] > 0 and row["temp_bytes"] >= 0
    assert "| lenet5 | 128×32² | jcnn |" in capsys.readouterr().out
