"""The ``jcnn`` command: help documents every option, bad input gives one line and a non-zero status
(no traceback), a short ``jcnn train`` writes every file and resumes, ``summary`` and ``verify`` wiring."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from jcnn import cli


def _run(argv, capsys):
    """``(status, stdout, stderr)`` of ``jcnn argv`` run in-process (argparse exits become a status)."""
    try:
        status = cli.main(argv)
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.help is not argparse.SUPPRESS]


def test_help_documents_every_option(capsys):
    parser = cli.build_parser()
    status, out, _ = _run(["--help"], capsys)
    assert status == 0
    for command in ("train", "summary", "verify"):
        assert command in out
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("train", "summary"):
        status, out, _ = _run([name, "--help"], capsys)
        assert status == 0
        for action in _options(subparsers.choices[name]):
            assert action.help, f"{name} {action.option_strings} has no help"
            assert action.option_strings[-1] in out
    train_help = _run(["train", "--help"], capsys)[1]
    for option in ("--model", "--dataset", "--data-dir", "--epochs", "--batch-size", "--optimizer", "--lr",
                   "--schedule", "--seed", "--out", "--resume"):
        assert option in train_help


@pytest.mark.parametrize("argv, status, message", [
    (["train", "--batch-size", "0"], 2, "argument --batch-size: expected an integer >= 1, got 0"),
    (["train", "--lr", "-0.1"], 2, "argument --lr: expected a finite number > 0, got -0.1"),
    (["train", "--lr", "nan"], 2, "argument --lr: expected a finite number > 0, got nan"),
    (["train", "--lr", "fast"], 2, "argument --lr: expected a number, got 'fast'"),
    (["train", "--epochs", "0"], 2, "argument --epochs: expected an integer >= 1, got 0"),
    (["train", "--seed", "-3"], 2, "argument --seed: expected an integer >= 0, got -3"),
    (["train", "--weight-decay", "-1"], 2, "argument --weight-decay: expected a finite number >= 0, got -1"),
    (["train", "--optimizer", "lbfgs"], 2, "argument --optimizer: invalid choice: 'lbfgs'"),
    (["train", "--schedule", "zigzag"], 2, "argument --schedule: invalid choice: 'zigzag'"),
    (["train", "--bogus"], 2, "unrecognized arguments: --bogus"),
    ([], 2, "the following arguments are required: COMMAND"),
    (["train", "--model", "alexnet"], 1, "unknown model 'alexnet'; choose one of"),
    (["train", "--dataset", "imagenet"], 1, "unknown dataset 'imagenet'; choose one of"),
    (["train", "--dataset", "mnist", "--data-dir", "/nonexistent/jcnn-data"], 1,
     "--data-dir '/nonexistent/jcnn-data' is not a directory"),
    (["summary", "--model", "alexnet"], 1, "unknown model 'alexnet'"),
])
def test_bad_input_exits_with_one_line(argv, status, message, capsys, tmp_path):
    got, out, err = _run(argv + (["--out", str(tmp_path)] if argv[:1] == ["train"] and status == 1 else []),
                         capsys)
    assert got == status
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_missing_dataset_files_and_checkpoint_are_one_line_errors(capsys, tmp_path):
    status, _, err = _run(["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--out",
                           str(tmp_path / "run")], capsys)
    assert status == 1 and "jcnn train: error:" in err and "mnist" in err.lower()
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    status, _, err = _run(["train", "--out", str(tmp_path / "none"), "--resume"], capsys)
    assert status == 1
    assert f"--resume: no checkpoint at '{tmp_path / 'none' / 'checkpoint.safetensors'}'" in err


def test_console_script_error_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "jcnn", "train", "--batch-size", "0"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("jcnn train: error: argument --batch-size: expected an integer >= 1, got 0 "
                                   "(see jcnn train --help)")


def test_short_train_writes_every_file_and_resumes(capsys, tmp_path):
    out = tmp_path / "digits"
    argv = ["train", "--out", str(out), "--batch-size", "128", "--no-progress", "--lr", "0.005"]
    status, out_text, err = _run(argv + ["--epochs", "1"], capsys)
    assert status == 0, err
    expected = {"checkpoint.safetensors", "metrics.json", "metrics.csv", *cli.FIGURES}
    assert expected <= set(os.listdir(out))
    for name in cli.FIGURES:
        with open(out / name, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(out / "metrics.json") as f:
        first = json.load(f)
    for key in ("test_accuracy", "test_loss", "wall_time_s", "images_per_s"):
        assert np.isfinite(first[key]) and first[key] >= 0
    assert first["epochs"] == 1 and first["steps"] == 1438 // 128
    assert first["config"]["model"] == "lenet5" and first["config"]["dataset"] == "digits"
    assert first["config"]["input_shape"] == [32, 32, 1]
    # Results on stdout (the epoch line and the summary), the log line on stderr.
    assert out_text.splitlines()[0].startswith("epoch 1/1  train loss")
    assert "jcnn train: test accuracy" in out_text and "test accuracy" not in err
    assert err.startswith("jcnn train: lenet5 on digits")

    status, _, err = _run(argv + ["--epochs", "2", "--resume", "--no-plots"], capsys)
    assert status == 0, err
    with open(out / "metrics.json") as f:
        second = json.load(f)
    assert [r["epoch"] for r in second["history"]] == [1, 2]
    assert second["history"][0] == first["history"][0]
    assert second["steps"] == 2 * (1438 // 128)
    assert second["history"][1]["test_accuracy"] > 0.5

    status, _, err = _run(argv + ["--epochs", "3", "--resume", "--seed", "1", "--optimizer", "adam"], capsys)
    assert status == 1 and len(err.strip().splitlines()) == 1
    assert ("was trained with other options (--optimizer 'adamw' there, 'adam' here; --weight-decay 0.05 "
            "there, 0.0 here; --seed 0 there, 1 here)") in err


def test_summary_prints_the_layer_table(capsys):
    status, out, _ = _run(["summary", "--model", "lenet5"], capsys)
    assert status == 0
    assert "61,706" in out  # LeNet-5: 156 + 2,416 + 48,120 + 10,164 + 850 parameters
    status, out, _ = _run(["summary", "--list"], capsys)
    assert status == 0 and out.splitlines()[0].startswith("lenet5")


def test_verify_is_wired_to_jcnn_verify(monkeypatch, capsys):
    calls = []
    fake = types.ModuleType("jcnn.verify")

    def add_arguments(parser):
        parser.add_argument("--only", default="all")

    def run(args):
        calls.append(args.only)
        return 3

    fake.add_arguments, fake.run = add_arguments, run
    monkeypatch.setitem(sys.modules, "jcnn.verify", fake)
    import jcnn

    monkeypatch.setattr(jcnn, "verify", fake, raising=False)
    assert _run(["verify", "--only", "conv"], capsys)[0] == 3
    assert calls == ["conv"]
    status, out, _ = _run(["verify", "--help"], capsys)
    assert status == 0 and "--only" in out


def test_verify_without_torch_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "jcnn.verify", None)  # makes `from jcnn import verify` fail
    import jcnn

    monkeypatch.delattr(jcnn, "verify", raising=False)
    status, _, err = _run(["verify"], capsys)
    assert status == 1
    assert err.startswith("jcnn verify: error:") and "needs PyTorch" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", cli.SCHEDULES)
def test_schedules_peak_at_lr(name):
    schedule = cli.make_schedule(name, 0.1, total_steps=100, steps_per_epoch=10)
    values = [float(schedule(t)) if callable(schedule) else schedule for t in range(100)]
    assert max(values) == pytest.approx(0.1, rel=1e-3)
    assert all(v > 0 for v in values)
    if name != "constant":
        assert values[-1] < 0.1


def test_optimizers_and_unknown_names():
    import jax.numpy as jnp

    params = {"w": jnp.ones(3, jnp.float32)}
    grads = {"w": jnp.full(3, 0.5, jnp.float32)}
    for name in cli.OPTIMIZERS:
        opt = cli.make_optimizer(name, 0.1, weight_decay=0.01)
        updates, _ = opt.update(grads, opt.init(params), params)
        assert float(updates["w"][0]) < 0, name  # a descent step
    with pytest.raises(cli.CLIError, match="unknown optimizer 'lbfgs'"):
        cli.make_optimizer("lbfgs", 0.1)
    with pytest.raises(cli.CLIError, match="unknown schedule 'zigzag'"):
        cli.make_schedule("zigzag", 0.1, 10, 1)


def test_prepare_images_resizes_once_bilinearly():
    ramp = np.broadcast_to((0.1 * np.arange(8, dtype=np.float32))[:, None, None], (8, 8, 1))
    images = np.stack([ramp, np.full((8, 8, 1), 0.3, np.float32)])
    out = cli.prepare_images(images, (32, 32))
    assert out.shape == (2, 32, 32, 1) and out.dtype == np.float32
    # Bilinear with half-pixel centres: output row r samples input row (r + 0.5)/4 - 0.5, exact on a ramp
    # away from the clamped border rows.
    rows = np.arange(2, 30)
    np.testing.assert_allclose(out[0, 2:30, 5, 0], 0.1 * ((rows + 0.5) / 4 - 0.5), atol=1e-6)
    np.testing.assert_allclose(out[1], 0.3, atol=1e-6)
    assert cli.prepare_images(images, (8, 8)) is images


@pytest.mark.slow
def test_make_train_defaults_reach_98_percent(capsys, tmp_path):
    """What `make train` runs (`jcnn train --out DIR` with every default): ≥ 98% on the digits test split.
    About 30 s of CPU (import, compiles, 1,760 steps, figures)."""
    out = tmp_path / "digits"
    status, _, err = _run(["train", "--out", str(out), "--no-progress"], capsys)
    assert status == 0, err
    with open(out / "metrics.json") as f:
        metrics = json.load(f)
    assert metrics["epochs"] == cli.DEFAULTS["epochs"]
    assert metrics["test_accuracy"] >= 0.98, metrics["test_accuracy"]
    assert {"checkpoint.safetensors", "metrics.csv", *cli.FIGURES} <= set(os.listdir(out))


def test_augmentation_per_dataset():
    import jax

    images = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4, 1)
    assert cli._augment_fn("digits", 0) is None  # no crop and never a flip for digits
    # fashion-mnist flips: with no crop, every image is itself or its mirror image.
    flip_only = cli._augment_fn("fashion-mnist", 0)
    out = np.asarray(flip_only(jax.random.PRNGKey(0), images))
    for got, image in zip(out, images):
        assert np.array_equal(got, image) or np.array_equal(got, image[:, ::-1])
    # A crop with padding keeps the shape and only moves pixels (or brings in zero padding).
    crop = cli._augment_fn("digits", 1)
    out = np.asarray(crop(jax.random.PRNGKey(1), images))
    assert out.shape == images.shape and set(np.unique(out)) <= set(np.unique(images)) | {0.0}


def _write_idx(path, array: np.ndarray) -> None:
    """An IDX file: 0, 0, type 0x08 (u8), rank, big-endian u32 dims, then the bytes (gzip by name)."""
    import gzip
    import struct

    data = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.astype(np.uint8).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(data)


def test_train_on_local_fashion_mnist_files(capsys, tmp_path):
    """The non-embedded path: IDX files in --data-dir, 28x28 resized to LeNet's 32x32, class names."""
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    for split, n in (("train", 64), ("t10k", 20)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 60, (n, 28, 28))
        for i, c in enumerate(labels):  # a bright bar whose row says the class
            images[i, 2 + 2 * c:4 + 2 * c, 4:24] = 250
        _write_idx(data / f"{split}-images-idx3-ubyte.gz", images)
        _write_idx(data / f"{split}-labels-idx1-ubyte", labels)
    out = tmp_path / "run"
    status, _, err = _run(["train", "--dataset", "fashion-mnist", "--data-dir", str(data), "--out", str(out),
                           "--epochs", "2", "--batch-size", "16", "--no-progress"], capsys)
    assert status == 0, err
    assert "fashion-mnist (64 train / 20 test images, 28x28 -> 32x32x1)" in err
    with open(out / "metrics.json") as f:
        metrics = json.load(f)
    assert metrics["config"]["dataset"] == "fashion-mnist" and metrics["steps"] == 2 * (64 // 16)
    assert {"confusion_matrix.png", "feature_maps.png"} <= set(os.listdir(out))
