"""jcnn.serving.inference and jcnn.serving.export without a training run: restoring params from a TrainState checkpoint
(and refusing the wrong model), top-k, and an export with a symbolic batch through BatchNorm and a conv
that ``algorithm="auto"`` would run spectrally at batch >= 8."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jcnn
from jcnn.serving.export import check_platforms, describe, export_classifier, serialize
from jcnn.serving.inference import Classifier, load_classifier, top_k
from jcnn.training import checkpoint

MODEL = jcnn.serial(
    ("conv", jcnn.Conv(4, 5, padding=2)),
    ("bn", jcnn.BatchNorm()),
    jcnn.Relu,
    jcnn.GlobalAvgPool,
    ("head", jcnn.Dense(3)),
)
SHAPE = (6, 6, 1)


def _init(model=MODEL):
    _, params, state = model.init(jax.random.PRNGKey(0), (-1, *SHAPE))
    state = {**state, "bn": {"mean": jnp.full((4,), 0.3, jnp.float32), "var": jnp.full((4,), 2.0, jnp.float32)}}
    return params, state


def _save(path, params, state, config):
    tree = {
        "params": params,
        "state": state,
        "opt_state": {"mu": params},
        "step": np.int32(7),
        "rng": np.zeros(2, np.uint32),
    }
    checkpoint.save(path, tree, metadata={"fit": {"config": config, "epoch": 1}})


def test_load_classifier_restores_the_params_and_refuses_another_model(tmp_path):
    params, state = _init()
    path = tmp_path / "ckpt.safetensors"
    _save(path, params, state, {"input_shape": list(SHAPE), "num_classes": 3, "dataset": "mine"})
    clf = load_classifier(path, model=MODEL)
    for a, b in zip(jax.tree_util.tree_leaves((clf.params, clf.state)), jax.tree_util.tree_leaves((params, state))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert clf.input_shape == SHAPE and clf.class_names == ("0", "1", "2")
    assert clf.color == "grayscale" and clf.resize == "stretch" and clf.mean is None
    other = jcnn.serial(
        ("conv", jcnn.Conv(4, 5, padding=2)),
        ("bn", jcnn.BatchNorm()),
        jcnn.Relu,
        jcnn.GlobalAvgPool,
        ("head", jcnn.Dense(5)),
    )
    with pytest.raises(
        checkpoint.CheckpointMismatchError,
        match=r"2 difference\(s\)(.|\n)*params/head/bias: float32\[3\] in the file, float32\[5\]",
    ):
        load_classifier(path, model=other)
    with pytest.raises(ValueError, match="the run's model None is not a zoo model; pass model="):
        load_classifier(path)
    checkpoint.save(tmp_path / "plain.safetensors", {"params": params})
    with pytest.raises(ValueError, match="not a checkpoint written by jcnn train"):
        load_classifier(tmp_path / "plain.safetensors", model=MODEL)
    _save(
        path,
        params,
        state,
        {"input_shape": list(SHAPE), "num_classes": 3, "class_names": ["a", "b", "c"], "color": "rgb"},
    )
    with pytest.raises(ValueError, match="color 'rgb' does not give the model's 1 input channels"):
        load_classifier(path, model=MODEL)


def test_top_k_orders_by_probability_and_breaks_ties_by_index():
    scores = np.array([[0.0, 2.0, 2.0, -1.0], [1000.0, 0.0, 0.0, 0.0]])
    rows = top_k(scores, 3, ("a", "b", "c", "d"))
    assert [t["class"] for t in rows[0]] == ["b", "c", "a"]
    p = np.exp(scores[0] - 2) / np.exp(scores[0] - 2).sum()
    assert [t["probability"] for t in rows[0]] == pytest.approx([p[1], p[2], p[0]], rel=1e-12)
    assert rows[1][0] == {"index": 0, "class": "a", "probability": 1.0}  # no overflow at 1e3
    with pytest.raises(ValueError, match="top_k: k must be an int >= 1, got 0"):
        top_k(scores, 0, "abcd")


def test_export_has_a_symbolic_batch_and_equals_apply():
    pytest.importorskip("flatbuffers", reason="jax.export serialization needs flatbuffers (the test extra)")
    params, state = _init()
    mean, std = (0.4,), (0.2,)
    clf = Classifier(MODEL, params, state, SHAPE, ("a", "b", "c"), "grayscale", "crop", mean, std, {"model": None})
    exported = jax.export.deserialize(bytearray(serialize(export_classifier(clf, platforms="cpu,cuda"))))
    assert exported.platforms == ("cpu", "cuda") and str(exported.in_avals[0].shape) == "(b, 6, 6, 1)"
    info = describe(clf, exported)
    assert info["input"]["shape"] == ["b", 6, 6, 1] and info["normalize"] == {"mean": [0.4], "std": [0.2]}
    apply = jax.jit(lambda x: MODEL.apply(params, state, x, train=False)[0])
    pixels = np.random.default_rng(0).uniform(0, 1, (9, *SHAPE)).astype(np.float32)
    for n in (1, 9):  # at 9 the conv's "auto" is spectral for a concrete batch, XLA's in the artifact
        got = np.asarray(exported.call(pixels[:n]))
        want = np.asarray(apply((pixels[:n] - np.float32(0.4)) / np.float32(0.2)))
        assert got.shape == (n, 3) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_check_platforms():
    assert check_platforms("CPU, cuda,cpu") == ("cpu", "cuda")
    assert check_platforms(["tpu"]) == ("tpu",)
    with pytest.raises(ValueError, match="platforms must be a comma-separated list of cpu, cuda, rocm, tpu"):
        check_platforms("gpu")
    with pytest.raises(ValueError, match="platforms must be"):
        check_platforms([])
