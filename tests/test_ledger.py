"""The training parity ledger (`jcnn verify --train`): parity on LeNet-5 through the CLI, planted divergences
found at their layer and step on a tiny conv-BN-ReLU net, the numerics manifest, and bad input.

Cost: one LeNet-5 compile (float64) shared by the CLI tests, two compiles of the tiny net (SGD, Adam);
ResNet-18 and MobileNet v2 are in the slow tests at the end."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jcnn
from jcnn import cli
from jcnn.interop import ledger as L
from jcnn.interop.manifest import format_manifest, numerics_manifest, numerics_warnings
from jcnn.optim.alias import AdamState
from jcnn.optim.base import make_optimizer

# conv (0) -> BatchNorm (1) -> ReLU (2) -> Flatten (3) -> Dense (4): the flatten is compared through the
# (C, H, W) -> (H, W, C) reordering, the Dense kernel through import_state_dict's.
NET = jcnn.serial(
    ("0", jcnn.Conv(3, 3, padding=1)),
    ("1", jcnn.BatchNorm()),
    ("2", jcnn.Relu),
    ("3", jcnn.Flatten),
    ("4", jcnn.Dense(4)),
)
SHAPE = (3, 4, 4, 2)


def torch_net(**replace) -> torch.nn.Sequential:
    torch.manual_seed(0)
    layers = [
        torch.nn.Conv2d(2, 3, 3, padding=1),
        torch.nn.BatchNorm2d(3),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(48, 4),
    ]
    for index, module in replace.items():
        layers[int(index)] = module
    return torch.nn.Sequential(*layers)


def tiny(module=None, **kw) -> L.LedgerResult:
    return L.ledger(NET, torch_net() if module is None else module, SHAPE, dtype="float64", **kw)


def where(result: L.LedgerResult) -> tuple:
    v = result.verdict
    return None if v is None else (v.step, v.path, v.quantity)


def test_tiny_net_parity_every_quantity():
    result = tiny(steps=3)
    assert result.passed, result.table()
    got = {(e.path, e.quantity) for e in result.entries if e.step == 3}
    for path in ("0", "1", "2", "3", "4", ""):
        assert (path, "activation") in got
    assert {("0", "gradient"), ("4", "param"), ("1", "running_stat"), ("0", "optimizer_state"), ("", "loss")} <= got
    assert result.unmatched == {"jcnn_only": [], "torch_only": []}
    # the errors are real comparisons: rounding-level, not zero everywhere and not skipped
    assert max(e.max_rel for e in result.entries) > 0
    assert len(result.losses) == 3 and result.losses[0][0] != result.losses[2][0]


def test_planted_batchnorm_momentum_is_found_in_its_layer():
    bn = torch.nn.BatchNorm2d(3, momentum=0.01)
    assert where(tiny(torch_net(**{"1": bn}), steps=2)) == (1, "1", "running_stat")


def test_control_run_measures_torch_against_itself_and_still_finds_the_bug():
    result = tiny(torch_net(**{"1": torch.nn.BatchNorm2d(3, momentum=0.01)}), steps=2, control=True)
    assert where(result) == (1, "1", "running_stat")  # 0.1 vs 0.01 is far beyond 100x one ulp's effect
    controls = [e.control for e in result.entries]
    assert all(c == c for c in controls) and max(controls) > 0  # measured everywhere, not all zero
    assert result.config["control"] is True and "control_rel_err" in result.to_json()["entries"][0]


def test_planted_relu_negative_slope_is_found_in_its_layer():
    result = tiny(torch_net(**{"2": torch.nn.LeakyReLU(0.1)}), steps=2)
    assert where(result) == (1, "2", "activation")
    v = result.verdict
    assert v.jcnn == 0 and v.torch < 0  # ReLU's 0 against 0.1·x at the worst element
    assert "DIVERGENCE at step 1, layer '2', activation" in result.table()


def test_planted_sgd_dampening_first_shows_at_step_2(monkeypatch):
    # torch's first momentum step ignores dampening, so the two agree at step 1 and part at step 2
    monkeypatch.setattr(torch.optim, "SGD", functools.partial(torch.optim.SGD, dampening=0.5))
    assert where(tiny(steps=3)) == (2, "0", "optimizer_state")


def _adam_eps_inside(learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
    """Adam with eps inside the square root: ``m̂ / √(v̂ + eps)`` (a classic porting slip)."""

    def init(params):
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return AdamState(jnp.zeros((), jnp.int32), zeros, zeros, None)

    def update(grads, state, params=None):
        count = state.count + 1
        t = count.astype(jnp.float64)
        mu = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, grads)
        nu = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu, grads)
        upd = jax.tree_util.tree_map(
            lambda m, v: -learning_rate * (m / (1 - b1**t)) / jnp.sqrt(v / (1 - b2**t) + eps), mu, nu
        )
        return upd, AdamState(count, mu, nu, None)

    return make_optimizer("adam", init, update)


def test_planted_adam_eps_placement_is_found_in_the_first_update(monkeypatch):
    monkeypatch.setattr(jcnn.optim, "adam", _adam_eps_inside)
    result = tiny(steps=2, optimizer="adam", optimizer_kwargs={"eps": 1e-6})
    # moments agree (eps is not in them); the first params after the first update part
    assert where(result) == (1, "0", "param")
    assert all(e.passed for e in result.entries if e.step == 1 and e.quantity == "optimizer_state")


# ------------------------------------------------------------------------------------------------ CLI


def _cli(args, capsys):
    status = cli.main(["verify", "--train", "lenet5", "--batch", "2", "--dtype", "float64", *args])
    return status, capsys.readouterr().out


def test_cli_lenet5_parity_writes_table_json_and_figure(tmp_path, capsys):
    path = tmp_path / "ledger.json"
    status, out = _cli(["--steps", "5", "--json", str(path)], capsys)
    assert status == 0, out
    assert out.startswith("numerics manifest") and "jax_default_matmul_precision" in out
    assert "torch_cudnn_allow_tf32" in out and "XLA_FLAGS" in out
    for column in ("layer path", "activation", "gradient", "optimizer state", "param", "first over tolerance"):
        assert column in out
    assert "features.0" in out and "classifier.4" in out and "PARITY" in out
    report = json.loads(path.read_text())
    assert report["passed"] and report["verdict"] is None and report["tolerance"] == 1e-10
    assert {e["step"] for e in report["entries"]} == {1, 2, 3, 4, 5}
    assert report["config"]["optimizer"] == {"name": "sgd", "lr": 0.0001, "momentum": 0.9}
    assert all(e["max_rel_err"] <= 1e-10 for e in report["entries"])
    assert report["manifest"]["jax_enable_x64"] is True
    figure = tmp_path / "ledger.png"
    assert report["figure"] == str(figure) and figure.read_bytes()[:4] == b"\x89PNG"


def test_cli_divergence_exits_1_and_names_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.optim, "SGD", functools.partial(torch.optim.SGD, dampening=0.5))
    path = tmp_path / "d.json"
    status, out = _cli(["--steps", "2", "--json", str(path)], capsys)
    assert status == 1
    assert "DIVERGENCE at step 2, layer 'features.0', optimizer_state" in out
    verdict = json.loads(path.read_text())["verdict"]
    assert (verdict["step"], verdict["path"], verdict["quantity"]) == (2, "features.0", "optimizer_state")
    assert verdict["jcnn"] != verdict["torch"] and verdict["max_rel_err"] > 1e-10


def test_cli_bad_arguments_are_one_line_errors(capsys):
    assert cli.main(["verify", "--train", "lenet5", "--only", "ops"]) == 1
    assert "--train runs the training ledger" in capsys.readouterr().err
    assert cli.main(["verify", "--train", "nope"]) == 1
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert cli.main(["verify", "--train", "lenet5", "--steps", "0"]) == 1
    assert "--steps must be >= 1" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ manifest


def test_manifest_reads_this_process():
    m = numerics_manifest()
    assert m["jax"] == jax.__version__ and m["torch"] == torch.__version__
    assert m["jax_enable_x64"] is True and m["torch_num_threads"] == torch.get_num_threads()
    assert m["jax_devices"] and m["torch_devices"][0] == "cpu"
    assert numerics_warnings(m, "float32") == []  # CPU: nothing to flag
    text = format_manifest(m, ["something"])
    assert text.splitlines()[0] == "numerics manifest" and "WARNING: something" in text


def test_manifest_flags_tf32_on_gpu_in_float32_only():
    gpu = {
        "jax_backend": "gpu",
        "jax_default_matmul_precision": "default",
        "torch_cudnn_allow_tf32": True,
        "torch_cuda_matmul_allow_tf32": False,
        "torch_deterministic_algorithms": True,
        "torch_cudnn_benchmark": False,
    }
    assert numerics_warnings(gpu, "float32", torch_device="cpu") == []  # JAX at highest, torch on CPU
    jax_tf32 = numerics_warnings(gpu, "float32", jax_precision=None)
    assert len(jax_tf32) == 1 and "JAX runs float32" in jax_tf32[0]
    torch_tf32 = numerics_warnings(gpu, "float32", torch_device="cuda:0")
    assert len(torch_tf32) == 1 and "TF32 on" in torch_tf32[0]
    assert numerics_warnings(gpu, "float64", torch_device="cuda:0", jax_precision=None) == []
    nondeterministic = numerics_warnings(
        {**gpu, "torch_deterministic_algorithms": False}, "float64", torch_device="cuda:0"
    )
    assert len(nondeterministic) == 1 and "non-deterministic" in nondeterministic[0]


# ------------------------------------------------------------------------------------------------ bad input


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        L.ledger("nope")
    with pytest.raises(ValueError, match="a Layer needs its torch counterpart"):
        L.ledger(NET)
    with pytest.raises(ValueError, match=r"needs input_shape=\(N, \*spatial, C\)"):
        L.ledger(NET, torch_net())
    with pytest.raises(TypeError, match="torch_module must be a torch.nn.Module"):
        L.ledger(NET, object(), SHAPE)
    with pytest.raises(TypeError, match="zoo name or a jcnn Layer"):
        L.ledger(42)
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        L.ledger(NET, torch_net(), SHAPE, steps=0)
    with pytest.raises(ValueError, match="dtype must be one of"):
        L.ledger(NET, torch_net(), SHAPE, dtype="float16")
    with pytest.raises(ValueError, match="unknown optimizer 'lion'"):
        L.ledger(NET, torch_net(), SHAPE, optimizer="lion")
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        L.ledger(NET, torch_net(), SHAPE, lr=-1.0)
    with pytest.raises(ValueError, match="loss must be one of"):
        L.ledger(NET, torch_net(), SHAPE, loss="hinge")
    with pytest.raises(ValueError, match="torch module '4.0' is a Dropout with p=0.5"):
        L.ledger(NET, torch_net(**{"4": torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(48, 4))}), SHAPE)
    dropout_net = jcnn.serial(("0", jcnn.Flatten), ("1", jcnn.Dropout(0.3)), ("2", jcnn.Dense(2)))
    with pytest.raises(ValueError, match="layer '1' is a Dropout with rate 0.3"):
        L.ledger(
            dropout_net,
            torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Identity(), torch.nn.Linear(8, 2)),
            (2, 2, 2, 2),
        )
    with pytest.raises(ValueError, match="does not match the model"):  # the state_dict names what differs
        L.ledger(NET, torch_net(**{"4": torch.nn.Linear(48, 5)}), SHAPE)


def test_float64_needs_x64(monkeypatch):
    monkeypatch.setattr(L, "_x64_enabled", lambda: False)
    with pytest.raises(ValueError, match="needs 64-bit JAX"):
        L.ledger(NET, torch_net(), SHAPE, dtype="float64")


def test_compare_marks_nan_and_shapes():
    assert np.isnan(L.compare([1.0, np.nan], [1.0, 2.0])[1])
    assert L.compare([0.0, 1.5], [0.0, 1.0], floor=5.0)[1] == 0.1
    with pytest.raises(ValueError, match="differs from torch's"):
        L.compare(np.zeros(3), np.zeros(4))


# ------------------------------------------------------------------------------------------------ slow


@pytest.mark.slow
@pytest.mark.parametrize("name, size", [("resnet18", 32), ("mobilenet_v2", 64)])
def test_zoo_parity_float64(name, size):
    """The issue's check, shortened to 2 steps at batch 4 (the compile is most of the cost; torch's
    float64 depthwise convolutions are slow). MobileNet v2 at 64x64: at 32x32 its last stages are 1x1 and
    train-mode BatchNorm over 4 values amplifies float64 rounding to 3e-8 by step 2 (both sides alike).
    The 20-step runs at the issue's sizes are in docs/ledger.md: ResNet-18 within 3e-13, MobileNet v2 at
    64x64 within 2e-12."""
    result = L.ledger(name, steps=2, size=size, batch=4, dtype="float64")
    assert result.passed, result.table()
    assert not result.unmatched["torch_only"]
    assert {e.quantity for e in result.entries} == set(L.QUANTITIES)
