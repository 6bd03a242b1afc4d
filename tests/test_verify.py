"""jcnn verify: a bounded run passes and writes its JSON table; a perturbed op fails loudly; selection."""

import json

import jax.numpy as jnp
import pytest

import jcnn
from jcnn.interop import checks, verify

# One component of each kind: the tool end to end. Every other check's op, layer, loss and optimizer is
# compared with torch by the suite's own tests; `jcnn verify` runs them all (docs/ledger.md, README).
SAMPLE = [
    "ops.conv",
    "ops.conv_transpose",
    "layers.BatchNorm",
    "losses.softmax_cross_entropy",
    "optim.adam",
    "optim.schedules.cosine_decay",
    "models.lenet5",
]


def _passes_and_writes_json(argv, tmp_path, capsys, expected):
    path = tmp_path / "verify.json"
    assert verify.main(argv + ["--json", str(path)]) == 0
    out = capsys.readouterr().out
    for column in ("component", "configuration", "max abs err", "max rel err", "tolerance", "result"):
        assert column in out
    report = json.loads(path.read_text())
    assert report["passed"] is True
    assert set(expected) <= {r["component"] for r in report["results"]}
    assert all(r["passed"] and r["max_rel_err"] <= r["tolerance"] for r in report["results"])


def test_a_sample_of_each_kind_passes_and_writes_json(tmp_path, capsys):
    _passes_and_writes_json(["--only", *SAMPLE], tmp_path, capsys, SAMPLE)


def test_a_perturbed_op_fails_loudly(monkeypatch, capsys, tmp_path):
    original = jcnn.ops.conv
    monkeypatch.setattr(jcnn.ops, "conv", lambda *a, **k: original(*a, **k) * (1 + 1e-3))
    path = tmp_path / "v.json"
    assert verify.main(["--only", "ops.conv", "ops.relu", "--json", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "failed" in out
    rows = json.loads(path.read_text())["results"]
    assert all(not r["passed"] for r in rows if r["component"] == "ops.conv")
    assert all(r["passed"] for r in rows if r["component"] == "ops.relu")


def test_a_crashing_check_is_a_failure(monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(jcnn.losses, "mse", broken)
    assert verify.main(["--only", "losses.mse"]) == 1
    assert "FAIL (RuntimeError: boom)" in capsys.readouterr().out


@pytest.mark.parametrize("where", [0, 1])
def test_nan_fails(where):
    pairs = [(jnp.ones(3), jnp.ones(3))]
    pairs.insert(where, (jnp.full(3, jnp.nan), jnp.ones(3)))
    result = verify.run_check(verify.Check("ops.x", "nan", lambda rng: pairs))
    assert not result.passed and result.max_rel != result.max_rel


def test_selection(capsys):
    checks = verify.all_checks()
    names = {c.component for c in checks}
    assert {"models." + m for m in jcnn.models.MODELS} <= names
    ops = verify.select(checks, ["ops"])
    assert ops and all(c.component.startswith("ops.") for c in ops)
    assert {c.component for c in verify.select(checks, ["optim.ada*"])} == {
        "optim.adagrad",
        "optim.adadelta",
        "optim.adam",
        "optim.adamw",
        "optim.adamax",
    }
    default = verify.select(checks)
    assert "models.resnet50" not in {c.component for c in default}
    assert "models.resnet50" in {c.component for c in verify.select(checks, full=True)}
    assert [c.component for c in verify.select(checks, ["models.resnet50"])] == ["models.resnet50"]
    assert not any(c.component.startswith("losses") for c in verify.select(checks, skip=["losses"]))
    assert verify.main(["--only", "models", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "models.lenet5" in listed and "models.resnet50" not in listed


def test_the_catalog_names_each_check_once_in_its_group():
    catalog = checks.all_checks()
    assert verify.all_checks is checks.all_checks and verify.Check is checks.Check
    keys = [(c.component, c.config) for c in catalog]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    assert all(c.component.split(".")[0] in checks.GROUPS for c in catalog)
    assert all(0 < c.tolerance <= checks.MODEL_TOL for c in catalog)
    assert {c.component.split(".")[0] for c in catalog if c.slow} == {"models"}  # only zoo models are slow


def test_no_match_is_an_error(capsys):
    assert verify.main(["--only", "nothing.here"]) == 1
    assert "no check matches --only nothing.here" in capsys.readouterr().err
