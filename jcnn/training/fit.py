"""``fit``: the epoch loop around the step of :mod:`jcnn.training.step`, with early stopping, resuming
and the run's files.

``fit`` runs epochs over :func:`jcnn.data.batches` (the data order is a pure function of
``(seed, epoch)``, so resuming from a checkpoint replays exactly the run that was not stopped),
evaluates after every epoch, stops early on a metric, stops on a non-finite step without overwriting
the last good checkpoint, and writes ``metrics.csv`` / ``metrics.json`` and ``checkpoint.safetensors``
to ``out_dir``, each atomically (a kill leaves the previous version). tqdm (the ``train`` extra) is
imported only when a progress bar is drawn.

Resuming: a run is planned for ``epochs`` epochs (stored in its checkpoint; a learning-rate schedule is
defined over them). ``resume`` continues an interrupted run to that plan and gives the same result,
bit for bit, as the run that was not stopped; a finished (or early-stopped) run has nothing left to
train. Any other ``epochs``, fewer epochs than already trained, other seeds, batch sizes, data or
config values are errors. ``extend=True`` continues a run to more epochs than planned, recording the
old plan in ``config["extended_from"]`` (the CLI's ``--extend`` restarts its schedule over the added
epochs).

"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jcnn._labels import check_class_indices
from jcnn._types import Array, Params, PRNGKey, State
from jcnn.layers.base import Layer
from jcnn.training.step import (
    LossFn,
    TrainState,
    _cached_steps,
    _check_batch_size,
    _device_batch,
    evaluate,
    init_train_state,
    make_eval_step,
    make_train_step,
)

CHECKPOINT_NAME = "checkpoint.safetensors"
"""The file :func:`fit` writes its checkpoint to, in its output directory."""


METRICS_FILES = ("metrics.json", "metrics.csv")
"""The files :func:`fit` writes the per-epoch history to (strict JSON and CSV, each replaced atomically)."""


_HISTORY_KEYS = (
    "epoch",
    "step",
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
    "lr",
    "epoch_time_s",
    "images_per_s",
)


class EarlyStopping(NamedTuple):
    """Stop when ``monitor`` (a history key such as ``"test_accuracy"``) has not improved by more than
    ``min_delta`` for ``patience`` epochs. ``mode`` is ``"max"``, ``"min"`` or ``"auto"`` (``"min"`` for
    keys containing ``"loss"``)."""

    monitor: str = "test_accuracy"
    patience: int = 5
    min_delta: float = 0.0
    mode: str = "auto"


class FitResult(NamedTuple):
    """What :func:`fit` returns: the last good ``state``, the per-epoch ``history`` (list of dicts),
    ``summary`` (the content of ``metrics.json`` without the history) and why it stopped."""

    state: TrainState
    history: list[dict[str, Any]]
    summary: dict[str, Any]
    stop_reason: str


def write_metrics(out_dir: str | os.PathLike[str], history: Sequence[dict[str, Any]], summary: dict[str, Any]) -> None:
    """Write ``metrics.csv`` (one row per epoch) and ``metrics.json`` (``summary`` plus ``history``),
    each atomically (temporary file, fsync, rename: a kill leaves the previous version).

    ``metrics.json`` is strict JSON: non-finite numbers (a diverged run's loss, the throughput of a run
    that trained nothing) are written as ``null``, as JavaScript's ``JSON.stringify`` does, not as the
    bare ``NaN``/``Infinity`` strict parsers reject. ``metrics.csv`` keeps Python's ``nan``/``inf``.
    """
    from jcnn.training.checkpoint import atomic_write

    os.makedirs(out_dir, exist_ok=True)
    keys = [k for k in _HISTORY_KEYS if any(k in r for r in history)]
    keys += sorted({k for r in history for k in r} - set(keys))
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=keys)
    writer.writeheader()
    for record in history:
        writer.writerow(record)
    body = json.dumps(_strict_json({**summary, "history": list(history)}), indent=2, allow_nan=False) + "\n"
    for name, data in (("metrics.csv", text.getvalue()), ("metrics.json", body)):
        encoded = data.encode("utf-8")
        atomic_write(os.path.join(out_dir, name), _writer(encoded), who="write_metrics")


def _writer(data: bytes) -> Callable[[Any], None]:
    """The ``write(f)`` for :func:`jcnn.training.checkpoint.atomic_write` that writes ``data``."""

    def write(f: Any) -> None:
        f.write(data)

    return write


def _strict_json(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (JSON ``null``)."""
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _monitor_mode(es: EarlyStopping) -> str:
    if es.mode not in ("auto", "min", "max"):
        raise ValueError(f"EarlyStopping: mode must be 'auto', 'min' or 'max', got {es.mode!r}")
    if es.mode != "auto":
        return es.mode
    return "min" if "loss" in es.monitor else "max"


def _improved(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if best is None:
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta


def _as_arrays(name: str, data: Any) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(f"fit: {name} must be a pair (images, labels), got {type(data).__name__}")
    images, labels = data[0], np.asarray(data[1])
    if isinstance(images, jax.Array) or not all(hasattr(images, a) for a in ("shape", "ndim", "__getitem__")):
        images = np.asarray(images)  # lazy arrays (jcnn.data.FolderImages) stay lazy
    if images.ndim < 2 or len(images) != len(labels) or len(images) == 0:
        raise ValueError(
            f"fit: {name} images and labels must be non-empty with one label per image, got shapes "
            f"{images.shape} and {labels.shape}"
        )
    if not np.issubdtype(images.dtype, np.floating):
        raise TypeError(
            f"fit: {name} images must be floating point, got {images.dtype}"
            + (" (scale uint8 pixels to [0, 1]: images.astype(np.float32) / 255)" if images.dtype == np.uint8 else "")
        )
    if not np.issubdtype(labels.dtype, np.integer):
        whole = np.issubdtype(labels.dtype, np.floating) and bool(np.all(np.mod(labels, 1) == 0))
        raise TypeError(
            f"fit: {name} labels must be integer class indices, got {labels.dtype}"
            + ("; they hold whole numbers: cast them (labels.astype(np.int32))" if whole else "")
        )
    return images, labels


def _layout_hint(shape: tuple[int, ...]) -> str:
    """A hint when images ``(N, A, B, C)`` look channels-first (``A`` a channel count, ``C`` not)."""
    if len(shape) == 4 and shape[1] in (1, 3, 4) and shape[3] > 4:
        return (
            f"; the images {tuple(shape)} look channels-first (NCHW): jcnn takes channels-last "
            f"(N, H, W, C) = {(shape[0], shape[2], shape[3], shape[1])}; pass images.transpose(0, 2, 3, 1)"
        )
    return ""


def _output_shape(model: Layer, ts: TrainState, images: np.ndarray) -> tuple[int, ...]:
    """The model's eval-mode output shape for one image (traced, not run)."""
    x = jax.ShapeDtypeStruct((1,) + images.shape[1:], images.dtype)
    try:
        out = jax.eval_shape(lambda p, s, a: model.apply(p, s, a, train=False)[0], ts.params, ts.state, x)
    except ValueError as exc:
        hint = _layout_hint(images.shape)
        if hint:
            raise ValueError(f"fit: the model does not accept the images: {exc}{hint}") from exc
        raise
    return tuple(out.shape)


def _check_labels(name: str, labels: np.ndarray, out_shape: tuple[int, ...]) -> None:
    """Labels against the model's output ``(1, *S, C)``: shape ``(N, *S)``, values in ``[0, C)``."""
    if len(out_shape) < 2 or tuple(labels.shape[1:]) != tuple(out_shape[1:-1]):
        raise ValueError(
            f"fit: {name} labels have shape {labels.shape}, but the model's outputs for one image have shape "
            f"{out_shape} (classes last): the labels must have shape (N, {', '.join(map(str, out_shape[1:-1]))})".replace(
                "(N, )", "(N,)"
            )
        )
    check_class_indices(
        "fit", labels, out_shape[-1], name=f"{name} labels", what=f"the model's {out_shape[-1]} outputs"
    )


def fit(
    model: Layer,
    optimizer: Any,
    train_data: tuple[Any, Any],
    test_data: tuple[Any, Any] | None = None,
    *,
    loss_fn: LossFn | None = None,
    epochs: int = 10,
    batch_size: int = 64,
    seed: int = 0,
    eval_batch_size: int = 1000,
    augment_fn: Callable[[PRNGKey, Array], Array] | None = None,
    train_state: TrainState | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    resume: str | os.PathLike[str] | None = None,
    early_stopping: EarlyStopping | None = None,
    learning_rate: Callable[[int], Any] | float | None = None,
    config: dict[str, Any] | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    prefetch: int = 0,
    extend: bool = False,
    overwrite: bool = False,
    mix_fn: Callable[[PRNGKey, Array, Array], tuple[Array, Array]] | None = None,
    ema: Any = None,
) -> FitResult:
    """Train ``model`` for ``epochs`` epochs over ``train_data = (images, labels)`` (NumPy, NHWC).

    Each epoch visits ``jcnn.data.batches(images, labels, batch_size, seed=seed, epoch=e,
    drop_last=True)`` (fixed shapes: one compile), evaluates on ``test_data`` if given (else on the
    train set), appends a history record (``epoch, step, train_loss, train_accuracy, test_loss,
    test_accuracy[, lr], epoch_time_s, images_per_s``) and, with ``out_dir``, saves
    ``checkpoint.safetensors`` (the ``TrainState`` plus ``config`` and the progress needed to resume)
    and rewrites ``metrics.csv``/``metrics.json``. ``learning_rate`` (a float or the schedule
    ``step -> lr`` given to the optimizer) is only logged.

    Labels are integer class indices in ``[0, C)`` (``C``: the model's last output axis), checked once
    on the host before training. ``out_dir`` holding another run's checkpoint is an error unless
    ``resume`` is that checkpoint or ``overwrite=True`` (which deletes its checkpoint and metrics first).

    ``resume`` is a checkpoint written by ``fit``: the run continues after its last epoch and
    reproduces the uninterrupted run bit for bit, given the ``epochs`` it was planned for; a finished or
    early-stopped run trains nothing (its files are rewritten, unchanged). ``extend=True`` with more
    epochs than planned continues past the plan (early stopping counts afresh); the optimizer is used
    as given, so give it a schedule for the new total if it has one. Everything else that differs from
    the checkpoint (``epochs``, ``seed``, ``batch_size``, the training images' shape, ``config`` values) is
    a ``ValueError``.

    Stops early when ``early_stopping`` says so, and on the first step whose loss, gradient or update
    is not finite: that step's update is discarded, the last checkpoint is left as it was and
    ``stop_reason`` names the step.

    ``prefetch > 0`` prepares that many batches ahead in a background thread and puts them on the
    device there (:func:`jcnn.data.prefetch_batches`): the same batches in the same order, so the same
    result.
    ``train_data``'s images may be a lazy array such as :class:`jcnn.data.FolderImages`.

    ``mix_fn`` mixes each batch (mixup/cutmix, see :func:`make_train_step`); ``ema`` (a
    :class:`jcnn.optim.ModelEma`) keeps a weight average in ``train_state.ema``, saved in the checkpoint,
    and the evaluation uses the averaged weights.
    """
    from jcnn.data import batches
    from jcnn.data.prefetch import prefetch_batches
    from jcnn.training import checkpoint

    train_x, train_y, test_x, test_y, batch_size, eval_batch_size = _check_fit_arguments(
        train_data, test_data, epochs, batch_size, eval_batch_size, early_stopping
    )
    stopper = _Stopper(early_stopping)
    log = log or (lambda msg: print(msg, file=sys.stderr))
    config = dict(config or {})
    config.update(seed=int(seed), batch_size=batch_size, epochs=int(epochs))
    data_shapes = {"train": list(train_x.shape), "test": list(test_x.shape)}

    history: list[dict[str, Any]] = []
    start_epoch, finished = 0, None
    if resume is not None:
        saved = _load_progress(resume, checkpoint.load_metadata(resume), config)
        start_epoch, finished = _plan_resume(resume, saved, config, epochs, extend, data_shapes)
        history = saved["history"]
        stopper.best, stopper.bad_epochs = saved["best"], 0 if extend else saved["bad_epochs"]
    elif extend:
        raise ValueError("fit: extend=True continues a run: pass resume= its checkpoint")
    _prepare_out_dir(out_dir, resume, overwrite, check_only=True)  # its errors before any work

    if train_state is None:
        train_state = _new_train_state(model, optimizer, train_x, seed)
    if ema is not None and train_state.ema is None:
        train_state = train_state._replace(ema=ema.init(train_state.params, train_state.state))
    out_shape = _output_shape(model, train_state, train_x)
    _check_labels("train_data", train_y, out_shape)
    if test_data is not None:
        _check_labels("test_data", test_y, out_shape)
    ckpt_path = _prepare_out_dir(out_dir, resume, overwrite)
    if resume is not None:
        train_state, _ = checkpoint.restore(resume, target=train_state)
        train_state = jax.tree_util.tree_map(jnp.asarray, train_state)
        if finished is not None and not extend:
            log(
                f"fit: {os.fspath(resume)} is already complete ({finished}); nothing to train "
                "(extend=True with more epochs continues it)"
            )
            return _finish(train_state, history, finished, False, config, out_dir)

    try:
        train_step, eval_step = _cached_steps(model, loss_fn, optimizer, augment_fn, mix_fn, ema)
    except TypeError:  # an unhashable argument: compile afresh
        train_step = make_train_step(model, loss_fn, optimizer, augment_fn=augment_fn, mix_fn=mix_fn, ema=ema)
        eval_step = make_eval_step(model, loss_fn)
    steps_per_epoch = len(train_x) // batch_size
    stop_reason = f"completed {epochs} epochs"
    diverged = False
    bar_cls = _tqdm() if progress else None

    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        epoch_batches = batches(train_x, train_y, batch_size, seed=seed, epoch=epoch, shuffle=True, drop_last=True)
        train_state, loss_sum, acc_sum, seen, failed = _train_epoch(
            train_step,
            train_state,
            prefetch_batches(epoch_batches, prefetch),
            steps_per_epoch,
            f"epoch {epoch + 1}/{epochs}",
            bar_cls,
            t0,
        )
        if failed is not None:
            global_step, batch_index, m = failed
            stop_reason = _divergence_reason(m, global_step, epoch, batch_index, history, ckpt_path)
            diverged = True
            log(stop_reason)
            break
        t_train = time.perf_counter() - t0
        test = evaluate(eval_step, *_eval_weights(train_state), test_x, test_y, batch_size=eval_batch_size)
        record = _epoch_record(epoch, train_state, loss_sum / seen, acc_sum / seen, test, learning_rate)
        epoch_time = time.perf_counter() - t0
        record.update(epoch_time_s=epoch_time, images_per_s=seen / t_train, _train_time_s=t_train, _images=seen)
        history.append(record)
        log(
            f"epoch {epoch + 1}/{epochs}  train loss {record['train_loss']:.4f} acc {record['train_accuracy']:.4f}"
            f"  test loss {test['loss']:.4f} acc {test['accuracy']:.4f}  ({epoch_time:.1f} s, "
            f"{record['images_per_s']:.0f} img/s)"
        )

        early = stopper.update(record)
        if early is not None:
            stop_reason = early
        if out_dir is not None and ckpt_path is not None:  # _prepare_out_dir gives a path for an out_dir
            progress_meta = {
                "config": config,
                "epoch": epoch + 1,
                "history": history,
                "best": stopper.best,
                "bad_epochs": stopper.bad_epochs,
                "stop_reason": stop_reason if early is not None or epoch + 1 == epochs else None,
                "data": data_shapes,
            }
            checkpoint.save(ckpt_path, train_state, metadata={"fit": progress_meta})
            write_metrics(out_dir, _public(history), _summary(history, stop_reason, config))
        if early is not None:
            log(stop_reason)
            break

    return _finish(train_state, history, stop_reason, diverged, config, out_dir)


def _epoch_record(
    epoch: int,
    train_state: TrainState,
    train_loss: float,
    train_accuracy: float,
    test: dict[str, Any],
    learning_rate: Callable[[int], Any] | float | None,
) -> dict[str, Any]:
    """The history record of ``epoch`` (0-based) without its timings; ``lr`` the last step's rate."""
    record: dict[str, Any] = {
        "epoch": epoch + 1,
        "step": int(train_state.step),
        "train_loss": train_loss,
        "train_accuracy": train_accuracy,
        "test_loss": test["loss"],
        "test_accuracy": test["accuracy"],
    }
    if learning_rate is not None:
        lr = learning_rate(int(train_state.step) - 1) if callable(learning_rate) else learning_rate
        record["lr"] = float(lr)
    return record


class _Stopper:
    """Early stopping's running state: the best value of the monitored key and the epochs since."""

    def __init__(self, rule: EarlyStopping | None) -> None:
        self.rule = rule
        self.mode = _monitor_mode(rule) if rule is not None else "max"
        self.best: float | None = None
        self.bad_epochs = 0

    def update(self, record: dict[str, Any]) -> str | None:
        """Count ``record``'s epoch; the stop reason when the run has not improved for ``patience``."""
        if self.rule is None:
            return None
        value = record[self.rule.monitor]
        if _improved(value, self.best, self.mode, self.rule.min_delta):
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs < self.rule.patience:
            return None
        assert self.best is not None  # the first epoch always improves on None
        return f"early stopping: {self.rule.monitor} did not improve on {self.best:.6g} for {self.bad_epochs} epochs"


def _new_train_state(model: Layer, optimizer: Any, train_x: np.ndarray, seed: int) -> TrainState:
    """:func:`init_train_state` for the images' shape (any batch), with a layout hint on a mismatch."""
    try:
        return init_train_state(model, optimizer, (-1,) + train_x.shape[1:], seed=seed)
    except ValueError as exc:
        hint = _layout_hint(train_x.shape)
        if hint:
            raise ValueError(f"fit: the model does not accept the images: {exc}{hint}") from exc
        raise


def _finish(
    train_state: TrainState,
    history: list[dict[str, Any]],
    stop_reason: str,
    diverged: bool,
    config: dict[str, Any],
    out_dir: str | os.PathLike[str] | None,
) -> FitResult:
    """The run's result; with ``out_dir``, its metrics files written a last time."""
    summary = _summary(history, stop_reason, config)
    summary["diverged"] = diverged
    if out_dir is not None:
        write_metrics(out_dir, _public(history), summary)
    return FitResult(train_state, _public(history), summary, stop_reason)


def _check_fit_arguments(
    train_data: Any, test_data: Any, epochs: Any, batch_size: Any, eval_batch_size: Any, early_stopping: Any
) -> tuple[Any, np.ndarray, Any, np.ndarray, int, int]:
    """fit's argument checks before any work: ``(train_x, train_y, test_x, test_y, batch_size,
    eval_batch_size)``; the test set defaults to the training set."""
    if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"fit: epochs must be an int >= 1, got {epochs!r}")
    batch_size = _check_batch_size("fit", batch_size)
    eval_batch_size = _check_batch_size("fit", eval_batch_size)
    train_x, train_y = _as_arrays("train_data", train_data)
    test_x, test_y = _as_arrays("test_data", test_data) if test_data is not None else (train_x, train_y)
    if len(train_x) < batch_size:
        raise ValueError(
            f"fit: batch_size {batch_size} is larger than the training set ({len(train_x)} images); "
            "use a smaller batch_size"
        )
    if early_stopping is not None and early_stopping.monitor not in _HISTORY_KEYS:
        raise ValueError(
            f"fit: early_stopping.monitor must be one of {list(_HISTORY_KEYS)}, got {early_stopping.monitor!r}"
        )
    if test_data is not None and test_x.shape[1:] != train_x.shape[1:]:
        raise ValueError(
            f"fit: test_data images have shape {test_x.shape[1:]} each, train_data images "
            f"{train_x.shape[1:]}; they must be alike"
        )
    return train_x, train_y, test_x, test_y, batch_size, eval_batch_size


def _train_epoch(
    train_step: Any, train_state: TrainState, batch_iter: Any, steps: int, desc: str, bar_cls: Any, t0: float
) -> tuple[TrainState, float, float, int, tuple[int, int, dict[str, Any]] | None]:
    """One epoch of steps: ``(train_state, loss_sum, acc_sum, seen, failed)`` with sums weighted by batch
    size; ``failed`` is ``(global_step, batch_index, metrics)`` of the first non-finite step (its update
    discarded by the step's guard), else None. Draws the progress bar when ``bar_cls`` is given."""
    loss_sum = acc_sum = 0.0
    seen = 0
    bar = (
        bar_cls(total=steps, desc=desc, unit="step", leave=False, file=sys.stderr, dynamic_ncols=True)
        if bar_cls
        else None
    )
    first_step = int(train_state.step) + 1
    try:
        for batch_index, (xb, yb) in enumerate(batch_iter):
            train_state, m = train_step(train_state, _device_batch(xb), _device_batch(yb))
            m = jax.device_get(m)  # one transfer: the guard needs it now, the progress bar too
            if not m["finite"]:
                return train_state, loss_sum, acc_sum, seen, (first_step + batch_index, batch_index, m)
            n = len(xb)
            loss_sum += float(m["loss"]) * n
            acc_sum += float(m["accuracy"]) * n
            seen += n
            if bar is not None:
                rate = seen / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix(
                    loss=f"{loss_sum / seen:.4f}", acc=f"{acc_sum / seen:.4f}", img_s=f"{rate:.0f}", refresh=False
                )
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        close = getattr(batch_iter, "close", None)
        if close is not None:  # a prefetching generator stops its thread now, not at garbage collection
            close()
    return train_state, loss_sum, acc_sum, seen, None


def _divergence_reason(
    m: dict[str, Any],
    global_step: int,
    epoch: int,
    batch_index: int,
    history: Sequence[dict[str, Any]],
    ckpt_path: str | None,
) -> str:
    """fit's stop reason for a non-finite step: what was not finite, where, and what was kept."""
    kept = (
        f"the last good checkpoint (epoch {history[-1]['epoch']}) is kept at {ckpt_path}"
        if ckpt_path and history
        else "no checkpoint was written"
    )
    what = (
        "loss or gradient"
        if not (np.isfinite(m["loss"]) and m.get("finite_grads", True))
        else "update (finite loss and gradients: the optimizer's step, e.g. a schedule's negative or NaN learning rate)"
    )
    return (
        f"stopped: non-finite {what} at step {global_step} (epoch {epoch + 1}, "
        f"batch {batch_index + 1}; loss={float(m['loss'])}); the update was discarded and "
        f"{kept}"
    )


def _eval_weights(train_state: TrainState) -> tuple[Params, State]:
    from jcnn.optim.ema import eval_weights

    return eval_weights(train_state)


def _public(history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in history]


def _summary(history: Sequence[dict[str, Any]], stop_reason: str, config: dict[str, Any]) -> dict[str, Any]:
    """``metrics.json`` without the history: the last epoch's figures, the run's speed, why it stopped."""
    last = history[-1] if history else {}
    train_time = sum(r.get("_train_time_s", 0.0) for r in history)
    images = sum(r.get("_images", 0) for r in history)
    return {
        "test_accuracy": last.get("test_accuracy", math.nan),
        "test_loss": last.get("test_loss", math.nan),
        "train_accuracy": last.get("train_accuracy", math.nan),
        "train_loss": last.get("train_loss", math.nan),
        "epochs": last.get("epoch", 0),
        "steps": last.get("step", 0),
        "wall_time_s": sum(r.get("epoch_time_s", 0.0) for r in history),
        "images_per_s": images / train_time if train_time > 0 else math.nan,
        "stop_reason": stop_reason,
        "config": config,
    }


def _load_progress(path: Any, meta: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    progress = (meta or {}).get("fit")
    if not isinstance(progress, dict):
        raise ValueError(
            f"fit: {os.fspath(path)} is not a checkpoint written by fit (no 'fit' metadata: it "
            "holds no training progress to resume); restore it with jcnn.training.checkpoint.restore and "
            "pass it as train_state instead"
        )
    saved = progress.get("config", {})
    for key in ("seed", "batch_size"):
        if key in saved and saved[key] != config[key]:
            raise ValueError(
                f"fit: cannot resume {os.fspath(path)} exactly: it was trained with {key}={saved[key]!r}, got "
                f"{key}={config[key]!r}; pass the same {key}"
            )
    return progress


def _plan_resume(
    path: Any, progress: dict[str, Any], config: dict[str, Any], epochs: int, extend: bool, data_shapes: dict[str, Any]
) -> tuple[int, str | None]:
    """Check a resume against the saved run; returns ``(epochs done, why it ended or None)`` and puts
    the plan (``epochs``, ``extended_from``) into ``config``. Raises ``ValueError`` on any mismatch."""
    path = os.fspath(path)
    saved = progress.get("config", {})
    done = int(progress["epoch"])
    planned = saved.get("epochs")  # None: written before runs recorded their plan
    finished = progress.get("stop_reason")
    if finished is None and planned is not None and done >= planned:
        finished = f"completed {planned} epochs"
    if epochs < done:
        raise ValueError(
            f"fit: {path} has already trained {done} epochs; epochs={epochs} cannot undo them "
            f"(the run was planned for {planned if planned is not None else done})"
        )
    if planned is not None and epochs != planned:
        if not extend:
            raise ValueError(
                f"fit: {path} is a run planned for {planned} epochs ({done} done); epochs={epochs} would change "
                "the plan (and any learning-rate schedule built over it): "
                + (f"pass epochs={planned} to finish it, or " if finished is None else "it is complete; pass ")
                + f"extend=True to continue it to {epochs} epochs"
            )
        if epochs < planned:
            raise ValueError(
                f"fit: extend=True adds epochs, but epochs={epochs} is fewer than the {planned} planned for {path}"
            )
    elif extend:
        raise ValueError(
            f"fit: extend=True needs more epochs than the {planned} planned for {path}, got epochs={epochs}"
        )
    saved_data = progress.get("data")
    if saved_data is not None and saved_data.get("train") != data_shapes["train"]:
        raise ValueError(
            f"fit: {path} was trained on training images of shape {tuple(saved_data['train'])}, "
            f"got {tuple(data_shapes['train'])}; resume with the same data"
        )
    extended = list(saved.get("extended_from", []))
    if extend and planned is not None and epochs > planned:
        extended.append(planned)
    if extended:
        config["extended_from"] = extended
    plan_keys = {"epochs", "extended_from"}
    diffs = [
        f"{k}={saved[k]!r} there, {config[k]!r} here"
        for k in sorted(set(saved) & set(config) - plan_keys)
        if json.loads(json.dumps(config[k])) != saved[k]
    ]
    if diffs:
        raise ValueError(
            f"fit: cannot resume {path}: its config differs ({'; '.join(diffs)}); pass the same "
            "values to continue that run"
        )
    return done, (finished if not (extend and epochs > (planned or done)) else None)


def _prepare_out_dir(out_dir: Any, resume: Any, overwrite: bool, *, check_only: bool = False) -> str | None:
    """Create ``out_dir``, remove dead writers' temporary files, and refuse to replace another run (with
    ``check_only``, only the refusals: nothing is created or deleted)."""
    from jcnn.training import checkpoint

    if out_dir is None:
        return None
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"fit: out_dir {out_dir!r} is an existing file, not a directory")
    ckpt_path = os.path.join(out_dir, CHECKPOINT_NAME)
    same = resume is not None and os.path.exists(ckpt_path) and os.path.samefile(resume, ckpt_path)
    if os.path.exists(ckpt_path) and not same and not overwrite:
        raise ValueError(
            f"fit: {out_dir!r} already holds a run ({CHECKPOINT_NAME}); resume it (resume={ckpt_path!r}), "
            "pass overwrite=True to replace it, or choose another out_dir"
        )
    if check_only:
        return ckpt_path
    os.makedirs(out_dir, exist_ok=True)
    for name in (CHECKPOINT_NAME,) + METRICS_FILES:
        checkpoint.remove_stale_temp_files(os.path.join(out_dir, name))
    if os.path.exists(ckpt_path) and not same:
        for name in (CHECKPOINT_NAME,) + METRICS_FILES:
            try:
                os.unlink(os.path.join(out_dir, name))
            except FileNotFoundError:
                pass
    return ckpt_path


def _tqdm() -> Any:
    from tqdm import tqdm

    return tqdm
