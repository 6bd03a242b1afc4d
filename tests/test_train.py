"""jcnn.train: the jitted step against a hand-written step, the NaN/Inf guard, evaluation, fit's files,
early stopping, and resume == uninterrupted, bit for bit."""

from __future__ import annotations

import csv
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jcnn
from jcnn import checkpoint, losses, optim
from jcnn.data import batches
from jcnn.train import (
    CHECKPOINT_NAME,
    EarlyStopping,
    TrainState,
    evaluate,
    fit,
    init_train_state,
    make_eval_step,
    make_train_step,
    predict,
    write_metrics,
)

# A small CNN with every kind of thing a TrainState carries: params, BatchNorm state, Dropout randomness.
MODEL = jcnn.serial(("conv", jcnn.Conv(4, 3)), ("bn", jcnn.BatchNorm()), jcnn.Relu, jcnn.Dropout(0.1),
                    jcnn.Flatten, ("dense", jcnn.Dense(3)))
SHAPE = (-1, 6, 6, 1)


def _data(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three separable classes: the bright quadrant says the class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n).astype(np.int32)
    images = rng.uniform(0, 0.3, (n, 6, 6, 1)).astype(np.float32)
    for i, c in enumerate(labels):
        r, q = divmod(int(c), 2)
        images[i, 3 * r:3 * r + 3, 3 * q:3 * q + 3] += 0.7
    return images, labels


def _copy(tree):
    return jax.tree_util.tree_map(lambda a: np.array(a), tree)


def _assert_trees_equal(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_init_train_state_fields_and_dtypes():
    opt = OPTIMIZER
    ts = init_train_state(MODEL, opt, SHAPE, seed=3)
    assert isinstance(ts, TrainState)
    assert ts.step.dtype == jnp.int32 and ts.step.shape == () and int(ts.step) == 0
    assert ts.rng.dtype == jnp.uint32 and ts.rng.shape == (2,)
    assert set(ts.state["bn"]) >= {"mean", "var"}
    # The jitted init gives exactly the eager init's values.
    k_init, _ = jax.random.split(jax.random.PRNGKey(3))
    _, params, state = MODEL.init(k_init, SHAPE)
    _assert_trees_equal(ts.params, params)
    _assert_trees_equal(ts.state, state)
    assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(ts.params))


@pytest.mark.parametrize("seed", ["0", 1.5, True])
def test_init_train_state_rejects_bad_seed(seed):
    with pytest.raises(ValueError, match="init_train_state: seed must be an int"):
        init_train_state(MODEL, optim.sgd(0.1), SHAPE, seed=seed)


def test_train_step_equals_hand_written_step_and_donates():
    opt = optim.sgd(0.1, momentum=0.9)
    images, labels = _data(16)
    ts = init_train_state(MODEL, opt, SHAPE, seed=0)
    before = _copy(ts)

    # The same computation written out by hand, eagerly.
    rng, _, k_model = jax.random.split(jnp.asarray(before.rng), 3)

    def objective(p):
        logits, new_state = MODEL.apply(p, before.state, images, train=True, key=k_model)
        return losses.softmax_cross_entropy(logits, labels), (logits, new_state)

    (loss, (logits, new_state)), grads = jax.value_and_grad(objective, has_aux=True)(before.params)
    updates, opt_state = opt.update(grads, before.opt_state, before.params)
    params = optim.apply_updates(before.params, updates)

    step = make_train_step(MODEL, losses.softmax_cross_entropy, opt)
    ts2, metrics = step(ts, jnp.asarray(images), jnp.asarray(labels))
    assert ts.params["conv"]["kernel"].is_deleted(), "the input state's buffers must be donated"
    assert int(ts2.step) == 1
    np.testing.assert_array_equal(np.asarray(ts2.rng), np.asarray(rng))
    for got, want in zip(jax.tree_util.tree_leaves((ts2.params, ts2.state, ts2.opt_state)),
                         jax.tree_util.tree_leaves((params, new_state, opt_state))):
        # jit and eager order float32 sums differently; the conv bias gradient is mathematically zero
        # under BatchNorm (noise of order 1e-7), so an absolute floor is needed as well.
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
    assert metrics["loss"].dtype == jnp.float32 and metrics["accuracy"].dtype == jnp.float32
    np.testing.assert_allclose(float(metrics["loss"]), float(loss), rtol=1e-6)
    want_acc = float(np.mean(np.argmax(np.asarray(logits), -1) == labels))
    assert float(metrics["accuracy"]) == pytest.approx(want_acc)
    assert bool(metrics["finite"])


def test_train_step_applies_augmentation_inside_jit():
    seen = []

    def augment_fn(key, images):
        seen.append(type(images).__name__)
        return images[:, ::-1]  # a deterministic change the step must see

    opt = optim.sgd(0.1)
    images, labels = _data(8)
    step_plain = make_train_step(MODEL, None, opt, donate=False)
    step_aug = make_train_step(MODEL, None, opt, augment_fn=augment_fn, donate=False)
    ts = init_train_state(MODEL, opt, SHAPE)
    _, m_aug = step_aug(ts, images, labels)
    step_aug(ts, images, labels)
    _, m_flipped = step_plain(ts, images[:, ::-1], labels)
    assert len(seen) == 1, "augment_fn runs inside the jitted step: traced once, not called per step"
    assert float(m_aug["loss"]) == pytest.approx(float(m_flipped["loss"]), rel=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_train_step_guard_keeps_state_on_non_finite_loss(bad):
    opt = OPTIMIZER
    images, labels = _data(8)
    images[3, 0, 0, 0] = bad
    ts = init_train_state(MODEL, opt, SHAPE)
    before = _copy(ts)
    new, metrics = make_train_step(MODEL, None, opt)(ts, jnp.asarray(images), jnp.asarray(labels))
    assert not bool(metrics["finite"])
    _assert_trees_equal(new, before)


def test_evaluate_weights_batches_by_length():
    opt = OPTIMIZER
    images, labels = _data(23)
    ts = init_train_state(MODEL, opt, SHAPE)
    eval_step = make_eval_step(MODEL)
    whole = evaluate(eval_step, ts.params, ts.state, images, labels, batch_size=23)
    pieces = evaluate(eval_step, ts.params, ts.state, images, labels, batch_size=10)
    logits = predict(MODEL, ts.params, ts.state, images, batch_size=10)
    assert logits.shape == (23, 3)
    want_loss = float(losses.softmax_cross_entropy(jnp.asarray(logits), labels))
    assert whole["loss"] == pytest.approx(want_loss, rel=1e-6)
    assert pieces["loss"] == pytest.approx(want_loss, rel=1e-6)
    assert pieces["accuracy"] == pytest.approx(float(np.mean(logits.argmax(-1) == labels)))
    with pytest.raises(ValueError, match="evaluate: batch_size must be an int >= 1"):
        evaluate(eval_step, ts.params, ts.state, images, labels, batch_size=0)
    with pytest.raises(ValueError, match="evaluate: got an empty evaluation set"):
        evaluate(eval_step, ts.params, ts.state, images[:0], labels[:0])
    with pytest.raises(ValueError, match="predict: batch_size must be an int >= 1"):
        predict(MODEL, ts.params, ts.state, images, batch_size=-2)


def _crop(key, images):
    return jcnn.data.random_crop(key, images, 1)


# One optimizer and augmentation object for every fit below, so that fit reuses one compiled step.
SCHEDULE = optim.schedules.cosine_decay(0.05, 20)
OPTIMIZER = optim.adam(SCHEDULE)


def _fit(out, epochs, **kw):
    train, test = _data(40, seed=1), _data(20, seed=2)
    kw.setdefault("augment_fn", _crop)
    kw.setdefault("progress", False)
    kw.setdefault("log", lambda msg: None)
    return fit(MODEL, OPTIMIZER, train, test, epochs=epochs, batch_size=16, seed=5, out_dir=out, **kw)


def test_fit_writes_history_files_and_resumes_bit_for_bit(tmp_path):
    straight = _fit(tmp_path / "a", 3, learning_rate=SCHEDULE)
    assert [r["epoch"] for r in straight.history] == [1, 2, 3]
    assert [r["step"] for r in straight.history] == [2, 4, 6]  # 40 // 16 full batches per epoch
    assert straight.history[-1]["train_loss"] < straight.history[0]["train_loss"]
    assert straight.history[-1]["test_accuracy"] >= 0.8  # 6 steps on 3 classes: well above chance (1/3)
    assert straight.stop_reason == "completed 3 epochs"

    files = set(os.listdir(tmp_path / "a"))
    assert {CHECKPOINT_NAME, "metrics.csv", "metrics.json"} <= files
    with open(tmp_path / "a" / "metrics.json") as f:
        summary = json.load(f)
    assert summary["test_accuracy"] == straight.history[-1]["test_accuracy"]
    assert summary["test_loss"] == straight.history[-1]["test_loss"]
    assert summary["wall_time_s"] > 0 and summary["images_per_s"] > 0
    assert summary["config"]["seed"] == 5 and summary["config"]["batch_size"] == 16
    assert [r["epoch"] for r in summary["history"]] == [1, 2, 3]
    with open(tmp_path / "a" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[1]["lr"]) == pytest.approx(float(optim.schedules.cosine_decay(0.05, 20)(3)))
    assert float(rows[2]["test_loss"]) == pytest.approx(straight.history[2]["test_loss"])

    # 1 epoch, then a fresh fit resumed from its checkpoint for the remaining 2.
    first = _fit(tmp_path / "b", 1)
    assert len(first.history) == 1
    resumed = _fit(tmp_path / "c", 3, resume=tmp_path / "b" / CHECKPOINT_NAME)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    _assert_trees_equal(resumed.state, straight.state)
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "step"):
        assert [r[key] for r in resumed.history] == [r[key] for r in straight.history]
    # The checkpoint holds the whole final TrainState.
    restored, meta = checkpoint.restore(tmp_path / "c" / CHECKPOINT_NAME, target=resumed.state)
    _assert_trees_equal(restored, straight.state)


def test_fit_resume_errors(tmp_path):
    _fit(tmp_path / "b", 1)
    ckpt = tmp_path / "b" / CHECKPOINT_NAME
    train = _data(40, seed=1)
    with pytest.raises(ValueError, match="cannot resume .* trained with seed=5, got seed=6"):
        fit(MODEL, OPTIMIZER, train, epochs=2, batch_size=16, seed=6, resume=ckpt, progress=False,
            log=lambda m: None)
    with pytest.raises(ValueError, match="trained with batch_size=16, got batch_size=8"):
        fit(MODEL, OPTIMIZER, train, epochs=2, batch_size=8, seed=5, resume=ckpt, progress=False,
            log=lambda m: None)
    foreign = tmp_path / "plain.safetensors"
    ts = init_train_state(MODEL, OPTIMIZER, SHAPE, seed=5)
    checkpoint.save(foreign, ts)
    with pytest.raises(ValueError, match="not a checkpoint written by fit"):
        fit(MODEL, OPTIMIZER, train, epochs=2, batch_size=16, seed=5, resume=foreign, progress=False,
            log=lambda m: None)


def test_fit_stops_on_non_finite_step_and_keeps_last_checkpoint(tmp_path):
    images, labels = _data(40, seed=1)
    # An image that epoch 0 drops (it is among the last 40 % 16 = 8 of the order) and epoch 1 uses.
    order0 = batches(images, labels, 16, seed=5, epoch=0, drop_last=True).order()
    order1 = batches(images, labels, 16, seed=5, epoch=1, drop_last=True).order()
    candidates = [i for i in order0[32:] if i in order1[:32]]
    bad = int(candidates[0])
    images[bad] = np.nan
    batch_in_epoch1 = int(np.flatnonzero(order1 == bad)[0]) // 16
    expected_step = 2 + batch_in_epoch1 + 1
    messages = []
    result = fit(MODEL, OPTIMIZER, (images, labels), _data(20, seed=2), epochs=3, batch_size=16,
                 seed=5, out_dir=tmp_path, progress=False, log=messages.append)
    assert f"non-finite loss or gradient at step {expected_step} (epoch 2, batch {batch_in_epoch1 + 1}" \
        in result.stop_reason
    assert "the last good checkpoint (epoch 1) is kept" in result.stop_reason
    assert result.stop_reason in messages
    assert int(result.state.step) == expected_step - 1
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree_util.tree_leaves(result.state.params))
    assert len(result.history) == 1 and result.summary["diverged"] is True
    meta = checkpoint.load_metadata(tmp_path / CHECKPOINT_NAME)
    assert meta["fit"]["epoch"] == 1
    restored, _ = checkpoint.restore(tmp_path / CHECKPOINT_NAME, target=result.state)
    assert int(restored.step) == 2
    with open(tmp_path / "metrics.json") as f:
        assert "non-finite" in json.load(f)["stop_reason"]


def test_fit_early_stopping(capsys):
    # min_delta so large that nothing improves after the first epoch: stop after 1 + patience epochs.
    result = _fit(None, 6, early_stopping=EarlyStopping("test_loss", patience=2, min_delta=1e9))
    assert len(result.history) == 3
    assert result.stop_reason.startswith("early stopping: test_loss did not improve")
    result = _fit(None, 3, early_stopping=EarlyStopping("test_accuracy", patience=1, min_delta=-1.0),
                  progress=True, log=None)
    assert len(result.history) == 3 and result.stop_reason == "completed 3 epochs"
    err = capsys.readouterr().err
    assert "epoch 1/3:" in err and "step/s" in err  # the tqdm bar
    assert "epoch 3/3  train loss" in err  # the per-epoch line of the default log


def test_fit_argument_errors():
    train = _data(40)
    opt = optim.sgd(0.1)
    cases = [
        (dict(epochs=0), "fit: epochs must be an int >= 1, got 0"),
        (dict(batch_size=0), "fit: batch_size must be an int >= 1, got 0"),
        (dict(batch_size=41), "batch_size 41 is larger than the training set"),
        (dict(batch_size=16, early_stopping=EarlyStopping("val_f1")), "early_stopping.monitor must be one of"),
        (dict(batch_size=16, early_stopping=EarlyStopping(mode="up")),
         "EarlyStopping: mode must be 'auto', 'min' or 'max'"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            fit(MODEL, opt, train, progress=False, **kwargs)
    with pytest.raises(ValueError, match="fit: train_data must be a pair"):
        fit(MODEL, opt, train[0], progress=False)
    with pytest.raises(ValueError, match="one label per image, got shapes"):
        fit(MODEL, opt, (train[0], train[1][:5]), progress=False)


def test_write_metrics_orders_columns(tmp_path):
    history = [{"epoch": 1, "test_accuracy": 0.5, "train_loss": 1.0, "extra": 3},
               {"epoch": 2, "test_accuracy": 0.75, "train_loss": 0.5, "extra": 4}]
    write_metrics(tmp_path, history, {"test_accuracy": 0.75})
    with open(tmp_path / "metrics.csv") as f:
        header = f.readline().strip().split(",")
    assert header == ["epoch", "train_loss", "test_accuracy", "extra"]
    with open(tmp_path / "metrics.json") as f:
        assert json.load(f) == {"test_accuracy": 0.75, "history": history}


# One EMA and mix function for the fits below (one compiled step).
EMA = optim.ema(0.8, warmup=True)


def _mix(key, images, labels):
    return jcnn.data.mix_batch(key, images, labels, 3, mixup_alpha=0.4, cutmix_alpha=1.0)


def test_fit_with_ema_and_mixing_evaluates_checkpoints_and_resumes_the_average(tmp_path):
    straight = _fit(tmp_path / "a", 2, mix_fn=_mix, ema=EMA)
    ts = straight.state
    assert int(ts.ema.count) == int(ts.step) == 4
    # the average differs from the weights, and the reported test figures are the average's
    assert not np.array_equal(np.asarray(ts.ema.params["conv"]["kernel"]), np.asarray(ts.params["conv"]["kernel"]))
    test = evaluate(make_eval_step(MODEL, None), ts.ema.params, ts.ema.state, *_data(20, seed=2))
    assert straight.history[-1]["test_accuracy"] == test["accuracy"]
    assert straight.history[-1]["test_loss"] == pytest.approx(test["loss"], rel=1e-6)
    # the checkpoint holds the average (params and BatchNorm state) and a resumed run continues it exactly
    restored, _ = checkpoint.restore(tmp_path / "a" / CHECKPOINT_NAME, target=ts)
    _assert_trees_equal(restored.ema, ts.ema)
    _fit(tmp_path / "b", 1, mix_fn=_mix, ema=EMA)
    resumed = _fit(tmp_path / "c", 2, mix_fn=_mix, ema=EMA, resume=tmp_path / "b" / CHECKPOINT_NAME)
    _assert_trees_equal(resumed.state, ts)
