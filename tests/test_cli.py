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
from jcnn.cli import common, train_options
from jcnn.cli import train as cli_train


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
    for option in (
        "--model",
        "--dataset",
        "--data-dir",
        "--epochs",
        "--batch-size",
        "--optimizer",
        "--lr",
        "--schedule",
        "--seed",
        "--out",
        "--resume",
    ):
        assert option in train_help


@pytest.mark.parametrize(
    "argv, status, message",
    [
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
        (
            ["train", "--dataset", "mnist", "--data-dir", "/nonexistent/jcnn-data"],
            1,
            "--data-dir '/nonexistent/jcnn-data' is not a directory",
        ),
        (["summary", "--model", "alexnet"], 1, "unknown model 'alexnet'"),
    ],
)
def test_bad_input_exits_with_one_line(argv, status, message, capsys, tmp_path):
    got, out, err = _run(argv + (["--out", str(tmp_path)] if argv[:1] == ["train"] and status == 1 else []), capsys)
    assert got == status
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_missing_dataset_files_and_checkpoint_are_one_line_errors(capsys, tmp_path):
    status, _, err = _run(
        ["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path / "run")], capsys
    )
    assert status == 1 and "jcnn train: error:" in err and "mnist" in err.lower()
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    status, _, err = _run(["train", "--out", str(tmp_path / "none"), "--resume"], capsys)
    assert status == 1
    assert f"--resume: no checkpoint at '{tmp_path / 'none' / 'checkpoint.safetensors'}'" in err


def test_console_script_error_has_no_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "jcnn", "train", "--batch-size", "0"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "jcnn train: error: argument --batch-size: expected an integer >= 1, got 0 (see jcnn train --help)"
    )


def _write_idx(path, array: np.ndarray) -> None:
    """An IDX file: 0, 0, type 0x08 (u8), rank, big-endian u32 dims, then the bytes (gzip by name)."""
    import gzip
    import struct

    data = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.astype(np.uint8).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(data)


def _tiny_idx_dataset(data, n_train: int = 64, n_test: int = 20) -> None:
    """Local (Fashion-)MNIST IDX files, 28x28: a bright bar whose row says the class."""
    rng = np.random.default_rng(0)
    data.mkdir(exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 60, (n, 28, 28))
        for i, c in enumerate(labels):
            images[i, 2 + 2 * c : 4 + 2 * c, 4:24] = 250
        _write_idx(data / f"{split}-images-idx3-ubyte.gz", images)
        _write_idx(data / f"{split}-labels-idx1-ubyte", labels)


def test_short_train_writes_every_file_and_resumes(capsys, tmp_path):
    """The non-embedded path (IDX files in --data-dir, 28x28 resized to LeNet's 32x32, flips), every file
    written, then --resume / --extend semantics and their errors on the same run."""
    _tiny_idx_dataset(tmp_path / "data")
    out = tmp_path / "run"
    # --schedule constant: the same optimizer value in every run below, so the --extend run reuses the
    # first run's compiled step (the restart of a real schedule is tested in test_run_schedule_*).
    argv = [
        "train",
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        str(tmp_path / "data"),
        "--out",
        str(out),
        "--batch-size",
        "16",
        "--no-progress",
        "--lr",
        "0.005",
        "--schedule",
        "constant",
    ]
    status, out_text, err = _run(argv + ["--epochs", "1"], capsys)
    assert status == 0, err
    assert "fashion-mnist (64 train / 20 test images, 28x28 -> 32x32x1)" in err
    expected = {"checkpoint.safetensors", "metrics.json", "metrics.csv", *train_options.FIGURES}
    assert expected <= set(os.listdir(out))
    for name in train_options.FIGURES:
        with open(out / name, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(out / "metrics.json") as f:
        first = json.load(f)
    for key in ("test_accuracy", "test_loss", "wall_time_s", "images_per_s"):
        assert np.isfinite(first[key]) and first[key] >= 0
    assert first["epochs"] == 1 and first["steps"] == 64 // 16
    assert first["config"]["model"] == "lenet5" and first["config"]["dataset"] == "fashion-mnist"
    assert first["config"]["input_shape"] == [32, 32, 1]
    # Results on stdout (the epoch line and the summary), the log line on stderr.
    assert out_text.splitlines()[0].startswith("epoch 1/1  train loss")
    assert "jcnn train: test accuracy" in out_text and "test accuracy" not in err
    assert err.startswith("jcnn train: lenet5 on fashion-mnist")

    # The run was planned for 1 epoch and is complete: more epochs must be asked for with --extend.
    status, _, err = _run(argv + ["--epochs", "2", "--resume", "--no-plots"], capsys)
    assert status == 1 and len(err.strip().splitlines()) == 1
    assert (
        "the run is planned for 1 epochs (it is complete) and its learning-rate schedule spans them; "
        "--epochs 2 would change that"
    ) in err and "add --extend" in err
    status, _, err = _run(argv + ["--epochs", "2", "--resume", "--extend", "--no-plots"], capsys)
    assert status == 0, err
    with open(out / "metrics.json") as f:
        second = json.load(f)
    assert [r["epoch"] for r in second["history"]] == [1, 2]
    assert second["history"][0] == first["history"][0]
    assert second["steps"] == 2 * (64 // 16)
    assert second["config"]["epochs"] == 2 and second["config"]["extended_from"] == [1]

    # A finished run: --resume trains nothing and leaves the history as it was.
    status, out_text, err = _run(argv + ["--resume", "--no-plots"], capsys)
    assert status == 0 and "is already complete (completed 2 epochs); nothing to train" in out_text
    with open(out / "metrics.json") as f:
        assert json.load(f)["history"] == second["history"]

    for extra, message in [
        (["--resume", "--epochs", "1"], "--resume: the run has already trained 2 epochs; --epochs 1 cannot undo them"),
        (
            ["--resume", "--seed", "1", "--optimizer", "adam"],
            "was trained with other options (--optimizer 'adamw' there, 'adam' here; --weight-decay 0.05 there, "
            "0.0 here; --seed 0 there, 1 here)",
        ),
        (["--resume", "--patience", "3"], "(--patience None there, 3 here)"),
        (
            [],
            f"--out '{out}' already holds a run (checkpoint.safetensors); pass --resume to continue it, "
            "--overwrite to replace it",
        ),
        (["--extend", "--epochs", "3"], "--extend continues a run: pass --resume as well"),
        (["--resume", "--extend", "--epochs", "2"], "--extend needs --epochs above the 2 the run is planned for"),
    ]:
        status, _, err = _run(argv + extra, capsys)
        assert status == 1 and len(err.strip().splitlines()) == 1, err
        assert message in err, err


def test_run_schedule_restarts_over_each_extension():
    """A run planned for 2 epochs, extended to 5 and then 6: a fresh schedule over each segment."""
    import jax
    import jax.numpy as jnp

    def values(schedule, steps):
        return np.asarray(jax.jit(jax.vmap(schedule))(jnp.arange(steps)))

    spe, lr = 10, 0.1
    parts = [(0, 20), (20, 50), (50, 60)]
    want = np.concatenate(
        [values(cli_train.make_schedule("cosine", lr, end - start, spe), end - start) for start, end in parts]
    )
    got = values(cli_train.run_schedule("cosine", lr, [2, 5, 6], spe), 60)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[20] == pytest.approx(lr) and got[19] < 0.01 * lr  # the warm restart
    assert cli_train.run_schedule("constant", lr, [2, 5], spe) == lr
    once = cli_train.make_schedule("one-cycle", lr, 30, spe)
    assert cli_train.run_schedule("one-cycle", lr, [3], spe).__code__ is once.__code__  # never extended: as before


def test_out_and_resume_errors_come_before_the_data(capsys, tmp_path):
    """--dataset mnist with an empty --data-dir: the data would fail to load, so these errors come first."""
    data = ["--dataset", "mnist", "--data-dir", str(tmp_path)]
    (tmp_path / "file").write_text("x")
    status, _, err = _run(["train", *data, "--out", str(tmp_path / "file")], capsys)
    assert status == 1 and f"--out '{tmp_path / 'file'}' is an existing file, not a directory" in err
    from jcnn.training import checkpoint

    (tmp_path / "run").mkdir()
    checkpoint.save(tmp_path / "run" / "checkpoint.safetensors", {"w": np.ones(2)})
    status, _, err = _run(["train", *data, "--out", str(tmp_path / "run"), "--resume"], capsys)
    assert status == 1 and "is not a checkpoint written by jcnn train (it holds no training progress)" in err
    status, _, err = _run(["train", *data, "--out", str(tmp_path / "other"), "--resume", str(tmp_path / "run")], capsys)
    assert status == 1 and "is not a checkpoint written by jcnn train" in err  # a run directory works too
    assert "Traceback" not in err


def test_summary_prints_the_layer_table(capsys):
    status, out, _ = _run(["summary", "--model", "lenet5"], capsys)
    assert status == 0
    assert "61,706" in out  # LeNet-5: 156 + 2,416 + 48,120 + 10,164 + 850 parameters
    status, out, _ = _run(["summary", "--list"], capsys)
    assert status == 0 and out.splitlines()[0].startswith("lenet5")


def test_verify_is_wired_to_jcnn_verify(monkeypatch, capsys):
    calls = []
    fake = types.ModuleType("jcnn.interop.verify")

    def add_arguments(parser):
        parser.add_argument("--only", default="all")

    def run(args):
        calls.append(args.only)
        return 3

    fake.add_arguments, fake.run = add_arguments, run
    monkeypatch.setitem(sys.modules, "jcnn.interop.verify", fake)
    import jcnn.interop

    monkeypatch.setattr(jcnn.interop, "verify", fake, raising=False)
    assert _run(["verify", "--only", "conv"], capsys)[0] == 3
    assert calls == ["conv"]
    status, out, _ = _run(["verify", "--help"], capsys)
    assert status == 0 and "--only" in out


def test_verify_without_torch_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "jcnn.interop.verify", None)  # makes `from jcnn.interop import verify` fail
    import jcnn.interop

    monkeypatch.delattr(jcnn.interop, "verify", raising=False)
    status, _, err = _run(["verify"], capsys)
    assert status == 1
    assert err.startswith("jcnn verify: error:") and "needs PyTorch" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", train_options.SCHEDULES)
def test_schedules_peak_at_lr(name):
    schedule = cli_train.make_schedule(name, 0.1, total_steps=100, steps_per_epoch=10)
    values = [float(schedule(t)) if callable(schedule) else schedule for t in range(100)]
    assert max(values) == pytest.approx(0.1, rel=1e-3)
    assert all(v > 0 for v in values)
    if name != "constant":
        assert values[-1] < 0.1


def test_optimizers_and_unknown_names():
    import jax.numpy as jnp

    params = {"w": jnp.ones(3, jnp.float32)}
    grads = {"w": jnp.full(3, 0.5, jnp.float32)}
    for name in train_options.OPTIMIZERS:
        opt = cli_train.make_optimizer(name, 0.1, weight_decay=0.01)
        updates, _ = opt.update(grads, opt.init(params), params)
        assert float(updates["w"][0]) < 0, name  # a descent step
    with pytest.raises(cli.CLIError, match="unknown optimizer 'lbfgs'"):
        cli_train.make_optimizer("lbfgs", 0.1)
    with pytest.raises(cli.CLIError, match="unknown schedule 'zigzag'"):
        cli_train.make_schedule("zigzag", 0.1, 10, 1)


def test_prepare_images_resizes_once_bilinearly():
    ramp = np.broadcast_to((0.1 * np.arange(8, dtype=np.float32))[:, None, None], (8, 8, 1))
    images = np.stack([ramp, np.full((8, 8, 1), 0.3, np.float32)])
    out = cli_train.prepare_images(images, (32, 32))
    assert out.shape == (2, 32, 32, 1) and out.dtype == np.float32
    # Bilinear with half-pixel centres: output row r samples input row (r + 0.5)/4 - 0.5, exact on a ramp
    # away from the clamped border rows.
    rows = np.arange(2, 30)
    np.testing.assert_allclose(out[0, 2:30, 5, 0], 0.1 * ((rows + 0.5) / 4 - 0.5), atol=1e-6)
    np.testing.assert_allclose(out[1], 0.3, atol=1e-6)
    assert cli_train.prepare_images(images, (8, 8)) is images


@pytest.mark.slow
def test_make_train_defaults_reach_98_percent(capsys, tmp_path):
    """What `make train` runs (`jcnn train --out DIR` with every default): ≥ 98% on the digits test split.
    About 30 s of CPU (import, compiles, 1,760 steps, figures)."""
    out = tmp_path / "digits"
    status, _, err = _run(["train", "--out", str(out), "--no-progress"], capsys)
    assert status == 0, err
    with open(out / "metrics.json") as f:
        metrics = json.load(f)
    assert metrics["epochs"] == train_options.DEFAULTS["epochs"]
    assert metrics["test_accuracy"] >= 0.98, metrics["test_accuracy"]
    assert {"checkpoint.safetensors", "metrics.csv", *train_options.FIGURES} <= set(os.listdir(out))


def test_augmentation_per_dataset():
    import jax

    images = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4, 1)
    assert cli_train._augment_fn("digits", 0) is None  # no crop and never a flip for digits
    # fashion-mnist flips: with no crop, every image is itself or its mirror image.
    flip_only = cli_train._augment_fn("fashion-mnist", 0)
    out = np.asarray(flip_only(jax.random.PRNGKey(0), images))
    for got, image in zip(out, images):
        assert np.array_equal(got, image) or np.array_equal(got, image[:, ::-1])
    # A crop with padding keeps the shape and only moves pixels (or brings in zero padding).
    crop = cli_train._augment_fn("digits", 1)
    out = np.asarray(crop(jax.random.PRNGKey(1), images))
    assert out.shape == images.shape and set(np.unique(out)) <= set(np.unique(images)) | {0.0}


def _tree_bytes(tree) -> dict:
    import jax

    return {jax.tree_util.keystr(p): np.asarray(v).tobytes() for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


@pytest.mark.slow
def test_sigkill_at_random_moments_never_loses_the_run(tmp_path):
    """`jcnn train` children SIGKILLed at 20 seeded random moments: most during the epochs (steps,
    evaluation, checkpoint and metrics writes: timed from the first epoch line over what is left of the
    run), a quarter anywhere after start-up (tracing, loading). After every kill the checkpoint restores
    (CRCs checked) and metrics.json is strict JSON; every chain of resumes reaches the params, optimizer
    state and history of the uninterrupted run, bit for bit; no temporary file survives the last run. The
    children share one persistent compilation cache, so only the first one compiles."""
    import signal
    import time

    from jcnn.training import checkpoint

    epochs = 10
    _tiny_idx_dataset(tmp_path / "data", n_train=48, n_test=16)
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        JAX_COMPILATION_CACHE_DIR=str(tmp_path / "xla-cache"),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
    )

    def run(out, until=None):
        """Start a child (resuming when out holds a checkpoint); read its output up to a line starting with
        ``until`` (None: to the end). Returns the process and the times of its lines."""
        argv = [
            sys.executable,
            "-m",
            "jcnn",
            "train",
            "--dataset",
            "mnist",
            "--data-dir",
            str(tmp_path / "data"),
            "--out",
            str(out),
            "--epochs",
            str(epochs),
            "--batch-size",
            "16",
            "--no-progress",
            "--no-plots",
        ]
        resume = ["--resume"] if (out / "checkpoint.safetensors").exists() else []
        # Epoch lines come on stdout, the log line on stderr: read both, in order, from one pipe.
        proc = subprocess.Popen(argv + resume, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        times, text = {}, []
        for line in proc.stdout:
            text.append(line)
            key = (
                "start" if line.startswith("jcnn train: lenet5 on") else "epoch" if line.startswith("epoch ") else None
            )
            times.setdefault(key, time.perf_counter())
            if until is not None and line.startswith(until):
                return proc, times, text
        proc.wait(timeout=600)
        times["exit"] = time.perf_counter()
        assert proc.returncode == 0, "".join(text)
        return proc, times, text

    def final(out):
        meta = checkpoint.load_metadata(out / "checkpoint.safetensors")["fit"]
        tree, _ = checkpoint.restore(out / "checkpoint.safetensors")
        history = [{k: v for k, v in r.items() if not k.endswith("_s")} for r in meta["history"]]
        return _tree_bytes(tree["params"]), _tree_bytes(tree["opt_state"]), history

    run(tmp_path / "reference")  # compiles everything once, for every child after it
    want = final(tmp_path / "reference")
    _, t, _ = run(tmp_path / "timing")  # how long a child that loads cached executables takes
    whole, tail = t["exit"] - t["start"], t["exit"] - t["epoch"]

    def chain(seed: int, out, wanted: int) -> int:
        """Kill children in ``out`` at ``wanted`` random moments, resuming after each; returns the number
        of chains that completed on their own (each checked against the uninterrupted run)."""
        rng = np.random.default_rng(seed)
        kills, completed = 0, 0
        for _ in range(3 * wanted):
            if kills == wanted:
                break
            ckpt = out / "checkpoint.safetensors"
            done = checkpoint.load_metadata(ckpt)["fit"]["epoch"] if ckpt.exists() else 0
            anywhere = rng.uniform() < 0.25
            proc, _, text = run(out, until="jcnn train: lenet5 on" if anywhere else "epoch ")
            if proc.returncode is None:  # still running: kill it at the drawn moment
                time.sleep(rng.uniform(0, whole if anywhere else tail * (epochs - done) / epochs))
                proc.send_signal(signal.SIGKILL)
                proc.stdout.close()
                if proc.wait(timeout=60) == -signal.SIGKILL:
                    kills += 1
                    if ckpt.exists():
                        checkpoint.restore(ckpt)  # readable, CRCs intact
                    if (out / "metrics.json").exists():
                        json.loads((out / "metrics.json").read_text(), parse_constant=pytest.fail)
                    continue
            assert proc.returncode == 0, "".join(text)  # it finished before the kill: the chain is complete
            assert final(out) == want
            completed += 1
            for name in os.listdir(out):
                os.unlink(out / name)
        assert kills == wanted, (kills, completed)
        run(out)
        assert final(out) == want
        assert [n for n in os.listdir(out) if n.endswith(".tmp")] == []
        return completed

    # Two chains of 10 kills side by side (a child is mostly single-threaded tracing): 20 kills in all.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(chain, seed, tmp_path / f"killed_{seed}", 10) for seed in (20, 21)]
        [r.result() for r in runs]


def test_recipe_flags_build_the_mix_function_loss_and_ema(capsys):
    parser = cli.build_parser()
    args = parser.parse_args(
        ["train", "--mixup", "0.8", "--cutmix", "1.0", "--label-smoothing", "0.1", "--ema", "0.999", "--ema-warmup"]
    )
    mix_fn, loss_fn = cli_train._recipe(args, 10)
    assert loss_fn is None and mix_fn.func.__name__ == "mix_batch"
    assert mix_fn.keywords == {
        "num_classes": 10,
        "mixup_alpha": 0.8,
        "cutmix_alpha": 1.0,
        "prob": 1.0,
        "switch_prob": 0.5,
        "label_smoothing": 0.1,
    }
    assert cli_train._recipe(args, 10)[0] is mix_fn  # cached: repeated runs reuse the compiled step
    plain = parser.parse_args(["train", "--label-smoothing", "0.2"])
    mix_fn, loss_fn = cli_train._recipe(plain, 10)
    assert mix_fn is None and loss_fn.keywords == {"label_smoothing": 0.2}
    assert cli_train._recipe(parser.parse_args(["train"]), 10) == (None, None)
    for argv, message in (
        (["train", "--ema", "1"], "argument --ema: expected a number in [0, 1), got 1"),
        (["train", "--mixup", "-1"], "argument --mixup: expected a finite number >= 0"),
        (["train", "--mix-prob", "2"], "argument --mix-prob: expected a number in [0, 1], got 2"),
    ):
        status, _, err = _run(argv, capsys)
        assert status == 2 and message in err
    for key in ("ema", "mixup", "cutmix", "label_smoothing"):
        assert key in cli_train._RESUME_KEYS


@pytest.mark.parametrize(
    "parse, text, message",
    [
        (common._positive_int, "0", "expected an integer >= 1, got 0"),
        (common._positive_int, "2.5", "expected an integer >= 1, got '2.5'"),
        (common._nonnegative_int, "-1", "expected an integer >= 0, got -1"),
        (common._fraction, "1", "expected a number in (0, 1), got 1"),
        (common._float(0.0, open_low=True), "0", "expected a finite number > 0, got 0"),
        (common._float(0.0, open_low=False), "nan", "expected a finite number >= 0, got nan"),
        (common._probability(open_high=True), "1", "expected a number in [0, 1), got 1"),
    ],
)
def test_argument_types_name_what_they_expected(parse, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as err:
        parse(text)
    assert str(err.value) == message
    assert common._positive_int("3") == 3 and common._fraction("0.25") == 0.25
