"""From a folder of images to a served model, through the ``jcnn`` command: train two epochs on a
separable folder (odd sizes, grayscale, RGBA, palette, nested dirs, corrupt and truncated files), Ctrl-C
during training, ``jcnn predict`` against ``model.apply``, ``jcnn export`` run in a fresh process that
cannot import jcnn (and the documented server), stdout/stderr/exit-status conventions.

One training run is shared by every test (and both xdist workers: a file lock); the subprocesses share
JAX's persistent compilation cache, so the second training process compiles nothing.
"""

from __future__ import annotations

import ast
import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

from jcnn import cli
from jcnn.cli import train_options
from jcnn.data import normalize_pixels
from jcnn.serving.inference import load_classifier, preprocess
from jcnn.training import checkpoint
from tests.data._images import CLASSES, write_separable_folder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Constant learning rate: the compiled step does not depend on --epochs, so the Ctrl-C run (more epochs)
# finds every program of the first run in the compilation cache.
TRAIN = [
    "train",
    "--dataset",
    "folder",
    "--input-size",
    "16",
    "16",
    "--batch-size",
    "4",
    "--schedule",
    "constant",
    "--test-fraction",
    "0.25",
    "--no-progress",
]


def _env(shared: str) -> dict:
    env = dict(
        os.environ,
        PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
        JAX_COMPILATION_CACHE_DIR=os.path.join(shared, "jax-cache"),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PLATFORMS="cpu",
    )
    env.pop("JCNN_DEBUG", None)
    return env


def _jcnn(args: list[str], shared: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jcnn", *args], capture_output=True, text=True, env=_env(shared), timeout=600, **kw
    )


@pytest.fixture(scope="session")
def run(tmp_path_factory, worker_id):
    """The folder, and ``jcnn train`` on it for 2 epochs: made once per session, whatever the workers."""
    shared = str(tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent)
    done = os.path.join(shared, "serve-run.json")
    with open(os.path.join(shared, "serve-run.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(done):
            folder, out = os.path.join(shared, "images"), os.path.join(shared, "run")
            made = write_separable_folder(folder, per_class=32)
            t0 = time.perf_counter()
            proc = _jcnn(TRAIN + ["--data-dir", folder, "--epochs", "2", "--out", out], shared)
            info = {
                "folder": folder,
                "out": out,
                "made": made,
                "returncode": proc.returncode,
                "stdout": proc.stdout,
                "stderr": proc.stderr,
                "seconds": time.perf_counter() - t0,
            }
            with open(done + ".tmp", "w") as f:
                json.dump(info, f)
            os.replace(done + ".tmp", done)
    with open(done) as f:
        info = json.load(f)
    info["shared"] = shared
    info["checkpoint"] = os.path.join(info["out"], "checkpoint.safetensors")
    assert info["returncode"] == 0, info["stderr"]
    return info


def test_training_on_a_folder_through_the_cli(run):
    out, made = run["out"], run["made"]
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["test_accuracy"] > 0.9, metrics["history"]
    assert metrics["epochs"] == 2 and metrics["steps"] == 2 * (72 // 4)  # 96 readable, 24 held out
    config = metrics["config"]
    assert config["dataset"] == "folder" and config["class_names"] == list(CLASSES)
    assert config["input_shape"] == [16, 16, 3] and config["num_classes"] == 3
    assert config["train_images"] == 72 and config["test_images"] == 24 and config["skipped_images"] == 3
    assert len(config["normalize"]["mean"]) == 3 and all(s > 0 for s in config["normalize"]["std"])
    assert config["flip"] is True and config["crop_padding"] == 2  # the folder defaults at 16x16
    with open(os.path.join(out, train_options.SKIPPED_NAME)) as f:
        assert sorted(line.split("\t")[0] for line in f) == made["bad"]
    assert {"checkpoint.safetensors", "metrics.csv", *train_options.FIGURES} <= set(os.listdir(out))
    # Results on stdout (one line per epoch, then the summary), logs and warnings on stderr.
    lines = run["stdout"].splitlines()
    assert [line.split()[:2] for line in lines[:2]] == [["epoch", "1/2"], ["epoch", "2/2"]]
    assert lines[2].startswith("jcnn train: test accuracy") and len(lines) == 3
    err = run["stderr"]
    assert "jcnn train: warning: skipped 3 unreadable file(s)" in err and "test accuracy" not in err
    assert f"skipped {made['bad'][1]}: " in err and "ignored 1 file(s) without an image extension" in err
    assert "Traceback" not in err


def test_ctrl_c_during_training_exits_cleanly_and_keeps_the_checkpoint(run, tmp_path):
    out = tmp_path / "interrupted"
    ckpt = out / "checkpoint.safetensors"
    # A run planned for 30 epochs (a few seconds of training here after the compile), interrupted after its first.
    args = TRAIN + [
        "--data-dir",
        run["folder"],
        "--epochs",
        "30",
        "--out",
        str(out),
        "--cache-mb",
        "0",
        "--quiet",
        "--no-plots",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "jcnn", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(run["shared"]),
    )
    try:
        deadline = time.monotonic() + 300
        while not ckpt.exists():  # the first epoch is done: training (and prefetching) goes on
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint after 300 s"
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)  # a hung prefetch thread would block the exit
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "jcnn train: interrupted" and "Traceback" not in stderr
    assert "jcnn train: lenet5 on folder" not in stderr  # --quiet: no log lines
    epochs = [line for line in stdout.splitlines() if line.startswith("epoch ")]
    state, meta = checkpoint.restore(ckpt)  # intact: it reads, holds a whole epoch, and resumes
    done = meta["fit"]["epoch"]
    assert 1 <= done <= len(epochs) and done < 30
    assert {"params", "opt_state", "step", "rng"} <= set(state)
    resumed = _jcnn(args + ["--resume"], run["shared"])  # finishes the planned 30 epochs
    assert resumed.returncode == 0, resumed.stderr
    with open(out / "metrics.json") as f:
        metrics = json.load(f)
    assert [r["epoch"] for r in metrics["history"]] == list(range(1, 31))
    assert metrics["config"]["normalize"] == meta["fit"]["config"]["normalize"]  # kept, not recomputed


def _images(run) -> list[str]:
    """Seven readable images of the folder (every class, kind and nesting depth): batch 7 throughout, so
    that each process compiles the forward for batches 1 and 7 only."""
    paths = sorted(
        os.path.join(d, f)
        for d, _, files in os.walk(run["folder"])
        for f in files
        if f.endswith((".png", ".jpg", ".bmp", ".webp"))
    )
    return [p for p in paths if p not in run["made"]["bad"]][::14]


@pytest.fixture(scope="module")
def clf(run):
    return load_classifier(run["checkpoint"])


@pytest.fixture(scope="module")
def apply(clf):
    """``model.apply`` in eval mode (jitted: eager dispatch of each op costs more than one compile)."""
    return jax.jit(lambda x: clf.model.apply(clf.params, clf.state, x, train=False)[0])


def _predict_json(run, capsys, images):
    status = cli.main(["predict", "--checkpoint", run["checkpoint"], "--json", "-k", "2", *images])
    out, err = capsys.readouterr()
    assert status == 0, err
    return json.loads(out)


def test_predict_top1_is_argmax_of_apply(run, clf, apply, capsys):
    images = _images(run)
    assert len(images) == 7 and {os.path.relpath(p, run["folder"]).split(os.sep)[0] for p in images} == set(CLASSES)
    result = _predict_json(run, capsys, images)
    logits = np.asarray(apply(preprocess(clf, images)))
    for row, path, z in zip(result["predictions"], images, logits):
        assert row["image"] == path and len(row["top_k"]) == 2
        assert row["top_k"][0]["index"] == int(np.argmax(z))
        assert row["top_k"][0]["class"] == CLASSES[int(np.argmax(z))]
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        assert row["top_k"][0]["probability"] == pytest.approx(float(p.max()), rel=1e-5)
        assert row["top_k"][0]["probability"] >= row["top_k"][1]["probability"]
    right = [
        row["top_k"][0]["class"] == os.path.relpath(path, run["folder"]).split(os.sep)[0]
        for row, path in zip(result["predictions"], images)
    ]
    assert np.mean(right) > 0.8
    # The text form: one line per image, "path: class p, class p, class p".
    assert cli.main(["predict", "--checkpoint", run["checkpoint"], "-k", "3", *images]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    top = result["predictions"][0]["top_k"][0]
    assert len(lines) == 7 and lines[0].startswith(f"{images[0]}: {top['class']} {top['probability']:.4f}, ")
    assert lines[0].count(",") == 2
    # The pixels predict feeds are the run's: its stored normalisation of the decoded image.
    from jcnn.data import load_image

    u8 = load_image(images[0], (16, 16), color="rgb", resize="crop")
    np.testing.assert_array_equal(preprocess(clf, images[:1])[0], normalize_pixels(u8, clf.mean, clf.std))


def test_inspect_writes_every_stage_and_a_page_that_shows_them_in_order(run, clf, apply, capsys, tmp_path):
    from html.parser import HTMLParser

    from jcnn.inspection.report import stage_paths

    image = _images(run)[0]
    out = tmp_path / "inspect"
    assert (
        cli.main(["inspect", "--checkpoint", run["checkpoint"], image, "--out", str(out), "--channels", "4", "-q"]) == 0
    )
    page = capsys.readouterr().out.strip()
    assert page == str(out / "index.html")

    class Figures(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stages, self.images = [], []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "figure" and "data-path" in attrs:
                self.stages.append((attrs["data-path"], attrs["data-kind"]))
            if tag == "img":
                self.images.append(attrs["src"])

    parsed = Figures()
    parsed.feed(open(page, encoding="utf-8").read())
    expected = [("input", "input")] + stage_paths(clf.model)
    assert parsed.stages == expected and len(expected) >= 7  # LeNet: conv, act, pool, conv, act, pool, acts
    assert {k for _, k in expected} >= {"Conv", "MaxPool", "Relu"}
    for src in parsed.images:  # every figure the page shows exists and is a PNG
        with open(out / src, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", src
    with open(out / "stages.json") as f:
        stages = json.load(f)
    z = np.asarray(apply(preprocess(clf, [image])))[0]
    assert stages["top_k"][0]["index"] == int(np.argmax(z))
    from jcnn.layers import walk

    declared = {n.path: n.output_shape for n in walk(clf.model, (1, *clf.input_shape))}
    for stage in stages["stages"][1:]:  # each stage's shape is its layer's declared output (batch 1)
        assert tuple(stage["shape"]) == tuple(declared[stage["path"]][1:]), stage


def test_predict_errors_are_one_line(run, capsys, tmp_path):
    bad = run["made"]["bad"][0]
    for argv, message in (
        (["--checkpoint", run["checkpoint"], bad], f"{bad}: cannot read the image"),
        (["--checkpoint", run["checkpoint"], str(tmp_path / "none.png")], "no such image file(s)"),
        (["--checkpoint", str(tmp_path / "none.safetensors"), bad], "--checkpoint: no such file"),
        (["--checkpoint", os.path.join(run["out"], "metrics.json"), bad], "not a safetensors file"),
    ):
        assert cli.main(["predict", *argv]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["predict", "--checkpoint", run["checkpoint"], "-k", "0", bad])
    assert exit_info.value.code == 2


FRESH = textwrap.dedent("""
    import contextlib, io, json, re, runpy, sys, threading, urllib.request
    sys.modules["jcnn"] = None  # any `import jcnn` now fails: the artifact must run on its own
    import numpy as np
    from jax import export
    model, images, inputs, out, example, doc = sys.argv[1:7]
    images = images.split(",")
    exported = export.deserialize(bytearray(open(model, "rb").read()))
    x = np.load(inputs)
    result = {"platforms": list(exported.platforms), "in_shape": str(exported.in_avals[0].shape)}
    for n in (1, 7):
        np.save(out + f"{n}.npy", np.asarray(exported.call(x[:n])))
    example = runpy.run_path(example)  # the documented server, not as __main__
    served = example["Model"](model)
    result["files"] = served.predict([open(p, "rb").read() for p in images], k=2)
    server = example["make_server"](served, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/predict"
    with urllib.request.urlopen(urllib.request.Request(url, data=open(images[0], "rb").read())) as r:
        result["http"] = json.load(r)
    server.shutdown()
    # docs/serving.md's serving snippet, as written (the block before it, which exports, needs jcnn)
    snippet = next(b for b in re.findall(r"```python\\n(.*?)```", open(doc).read(), re.S) if "export.deserialize" in b)
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        exec(snippet, {})
    result["snippet"] = printed.getvalue()
    result["jcnn_loaded"] = sorted(m for m, v in sys.modules.items() if m.startswith("jcnn") and v is not None)
    print(json.dumps(result))
""")


def test_export_runs_without_jcnn_and_equals_apply(run, clf, apply, capsys, tmp_path):
    pytest.importorskip("flatbuffers", reason="jax.export serialization needs flatbuffers (the test extra)")
    model = str(tmp_path / "model.jax")
    assert cli.main(["export", "--checkpoint", run["checkpoint"], "--out", model, "--platforms", "cpu,cuda"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"jcnn export: wrote {model} (") and "float32[bx16x16x3]" in out and "cpu, cuda" in out
    with open(model + ".json") as f:
        info = json.load(f)
    assert info["class_names"] == list(CLASSES) and info["input"]["shape"] == ["b", 16, 16, 3]
    assert info["platforms"] == ["cpu", "cuda"] and info["input"]["resize"] == "crop"

    from jcnn.data import load_image

    images = _images(run)
    pixels = normalize_pixels(np.stack([load_image(p, 16) for p in images]))  # u8 / 255, as served
    np.save(tmp_path / "x.npy", pixels)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            FRESH,
            model,
            ",".join(images),
            str(tmp_path / "x.npy"),
            str(tmp_path / "logits"),
            os.path.join(REPO, "docs", "serve_exported.py"),
            os.path.join(REPO, "docs", "serving.md"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(tmp_path),
        env=_env(run["shared"]),
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["jcnn_loaded"] == [] and result["platforms"] == ["cpu", "cuda"]
    assert result["in_shape"] == "(b, 16, 16, 3)"
    for n in (1, 7):
        x = (pixels[:n] - np.asarray(clf.mean, np.float32)) / np.asarray(clf.std, np.float32)
        want = apply(x)
        got = np.load(tmp_path / f"logits{n}.npy")
        assert got.shape == (n, 3) and got.dtype == np.float32
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-6, atol=1e-6)
    # The documented server decodes and classifies files (and an HTTP upload) as jcnn predict does.
    expected = _predict_json(run, capsys, images)["predictions"]
    for served, mine in zip(result["files"], expected):
        assert [t["index"] for t in served] == [t["index"] for t in mine["top_k"]]
        assert served[0]["probability"] == pytest.approx(mine["top_k"][0]["probability"], rel=1e-5)
    assert result["http"]["top_k"][0]["class"] == expected[0]["top_k"][0]["class"]
    printed = ast.literal_eval(result["snippet"].strip())  # the doc's snippet: the classes of 4 blank images
    assert len(printed) == 4 and set(printed) <= set(CLASSES)


def test_export_errors(run, capsys, tmp_path):
    for argv, message in (
        (["--platforms", "cpu,metal"], "platforms must be a comma-separated list of cpu, cuda, rocm, tpu"),
        (["--out", str(tmp_path / "missing" / "model.jax")], "--out: directory"),
    ):
        argv = ["export", "--checkpoint", run["checkpoint"], "--out", str(tmp_path / "m.jax"), *argv]
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not os.path.exists(tmp_path / "m.jax")


def test_folder_input_errors_are_one_line(capsys, tmp_path):
    (tmp_path / "cats").mkdir()
    (tmp_path / "dogs").mkdir()
    from PIL import Image

    Image.new("RGB", (9, 7), (200, 10, 10)).save(tmp_path / "cats" / "a.png")
    for argv, message in (
        (["--data-dir", str(tmp_path)], f"class directory '{tmp_path}/dogs' holds no images"),
        ([], "--dataset folder needs --data-dir DIR"),
        (["--data-dir", str(tmp_path), "--val-dir", str(tmp_path / "nope")], "--val-dir"),
    ):
        status = cli.main(["train", "--dataset", "folder", "--out", str(tmp_path / "run"), *argv])
        err = capsys.readouterr().err
        assert status == 1 and message in err and len(err.strip().splitlines()) == 1, err
    assert cli.main(["train", "--dataset", "digits", "--color", "grayscale", "--cache-mb", "1"]) == 1
    assert "--color, --cache-mb only apply to --dataset folder, not digits" in capsys.readouterr().err
    # train/ and val/ are the split: a split option is reported as unused (the batch size then stops it).
    for split in ("train", "val"):
        for name in ("cats", "dogs"):
            (tmp_path / "tv" / split / name).mkdir(parents=True)
            Image.new("RGB", (9, 7), (200, 10, 10)).save(tmp_path / "tv" / split / name / "a.png")
    status = cli.main(
        [
            "train",
            "--dataset",
            "folder",
            "--data-dir",
            str(tmp_path / "tv"),
            "--test-fraction",
            "0.3",
            "--batch-size",
            "99",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    err = capsys.readouterr().err
    assert status == 1 and f"warning: --test-fraction ignored: {tmp_path}/tv/val is the test set" in err
    assert "--batch-size 99 is larger than the 2 training images" in err


def test_exit_status_is_documented_in_every_help(capsys):
    for argv in ([], ["train"], ["predict"], ["export"]):
        with pytest.raises(SystemExit):
            cli.main([*argv, "--help"])
        text = capsys.readouterr().out
        for code in ("0 ", "1 ", "2 ", "130"):
            assert f"  {code}" in text, (argv, code)
        assert "Results go to stdout, progress and logs to stderr" in text
        assert argv == [] or "--quiet" in text
