"""``jcnn train``: check the options, load the data, build the model and recipe, train with
:func:`jcnn.training.train.fit`, and draw the figures."""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from jcnn.cli.common import CLIError, _model_info, _result, _say, _warn
from jcnn.cli.train_options import (
    CROP_PADDING,
    DEFAULT_LR,
    DEFAULT_WEIGHT_DECAY,
    DEFAULTS,
    FIGURES,
    FOLDER_DEFAULTS,
    OPTIMIZERS,
    SCHEDULES,
    SKIPPED_NAME,
)

__all__ = ["run_train", "make_optimizer", "make_schedule", "run_schedule", "prepare_images", "write_figures"]


def make_optimizer(name: str, learning_rate: Any, *, weight_decay: float = 0.0) -> Any:
    """The named optimizer of ``jcnn.optim`` with torch's defaults; ``momentum``/``nesterov`` are SGD with
    momentum 0.9."""
    from jcnn import optim

    if name == "sgd":
        return optim.sgd(learning_rate, weight_decay=weight_decay)
    if name in ("momentum", "nesterov"):
        return optim.sgd(learning_rate, momentum=0.9, nesterov=name == "nesterov", weight_decay=weight_decay)
    if name not in DEFAULT_LR:
        raise CLIError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    return getattr(optim, name)(learning_rate, weight_decay=weight_decay)


def run_schedule(name: str, lr: float, plan: Sequence[int], steps_per_epoch: int) -> Any:
    """The schedule of a run planned in segments: ``plan`` lists the epoch at which each ends (one entry
    for a run that was never extended); each segment gets a fresh :func:`make_schedule` over its own
    steps, joined by :func:`jcnn.optim.schedules.sequential` (a warm restart at each extension)."""
    from jcnn.optim import schedules

    ends = [int(e) * steps_per_epoch for e in plan]
    starts = [0] + ends[:-1]
    parts = [make_schedule(name, lr, end - start, steps_per_epoch) for start, end in zip(starts, ends)]
    if len(parts) == 1:
        return parts[0]
    if name == "constant":
        return lr
    return schedules.sequential(parts, starts[1:])


def make_schedule(name: str, lr: float, total_steps: int, steps_per_epoch: int) -> Any:
    """A schedule ``step -> lr`` over ``total_steps`` updates peaking at ``lr`` (``constant``: the float)."""
    from jcnn.optim import schedules

    total = max(int(total_steps), 1)
    if name == "constant":
        return lr
    if name == "cosine":
        return schedules.cosine_decay(lr, total)
    if name == "warmup-cosine":
        warmup = min(steps_per_epoch, total // 2)
        return schedules.warmup_cosine(lr, warmup, max(total - warmup, 1))
    if name == "step":
        return schedules.step_decay(lr, max(total // 3, 1), 0.1)
    if name == "exponential":
        return schedules.exponential_decay(lr, 0.01 ** (1.0 / total))
    if name == "one-cycle":
        return schedules.one_cycle(lr, total)
    raise CLIError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")


def prepare_images(images: Any, size: tuple[int, int]) -> Any:
    """Resize ``images (N, H, W, C)`` to ``size`` once, bilinearly (``jax.image.resize``), as float32 NumPy."""
    import jax
    import numpy as np

    images = np.asarray(images, dtype=np.float32)
    if tuple(images.shape[1:3]) == tuple(size):
        return images
    out = jax.image.resize(images, (images.shape[0], *size, images.shape[3]), method="bilinear")
    return np.asarray(out, dtype=np.float32)


def _resolve_out(args: argparse.Namespace) -> str:
    return args.out or os.path.join("runs", args.dataset)


def _folder_options(args: argparse.Namespace, dataset: str) -> dict[str, Any]:
    """The folder options with their defaults; refused for the other data sets (they would be ignored)."""
    given = {k: getattr(args, k) for k in FOLDER_DEFAULTS if getattr(args, k) is not None}
    if dataset != "folder":
        if given:
            names = ", ".join("--" + k.replace("_", "-") for k in given)
            raise CLIError(f"{names} only apply to --dataset folder, not {dataset}")
        return {}
    return {**FOLDER_DEFAULTS, **given}


def _load_folder(
    args: argparse.Namespace,
    opts: dict[str, Any],
    size: tuple[int, int],
    saved: dict[str, Any] | None,
    out: str,
    log: Any,
) -> Any:
    """``jcnn.data.image_folder`` from the options; a resumed run keeps its stored normalisation."""
    from jcnn import data as jdata

    if args.data_dir is None:
        raise CLIError(
            "--dataset folder needs --data-dir DIR: one sub-directory of images per class "
            "(DIR/<class>/<images>), or DIR/train/<class>/ and DIR/val/<class>/"
        )
    if opts["val_dir"] is not None and not os.path.isdir(opts["val_dir"]):
        raise CLIError(f"--val-dir {opts['val_dir']!r} is not a directory")
    normalize: Any = True
    if saved is not None and saved.get("normalize"):
        normalize = (saved["normalize"]["mean"], saved["normalize"]["std"])
    ds = jdata.image_folder(
        args.data_dir,
        size=size,
        color=opts["color"],
        resize=opts["resize"],
        val_root=opts["val_dir"],
        test_fraction=opts["test_fraction"],
        split_seed=opts["split_seed"],
        normalize=normalize,
        cache_mb=opts["cache_mb"],
        on_error="raise" if opts["bad_images"] == "fail" else "skip",
        progress=not (args.no_progress or args.quiet),
    )
    split = (
        f"validation folder {ds.val_root}"
        if ds.val_root is not None
        else f"stratified split {ds.test_fraction:g} (split seed {ds.split_seed})"
    )
    unused = [f"--{k.replace('_', '-')}" for k in ("test_fraction", "split_seed") if getattr(args, k) is not None]
    if ds.val_root is not None and unused:
        _warn("jcnn train", f"{' and '.join(unused)} ignored: {ds.val_root} is the test set")
    cached = ds.train_images.cached + ds.test_images.cached
    log(
        f"jcnn train: folder {ds.root}: {ds.num_classes} classes ({', '.join(ds.class_names[:10])}"
        f"{', ...' if ds.num_classes > 10 else ''}), {split}, {opts['color']} {opts['resize']}, "
        f"{cached} of {len(ds.train_images) + len(ds.test_images)} decoded images cached, "
        f"mean {_floats(ds.mean)} std {_floats(ds.std)}"
    )
    if ds.skipped:
        os.makedirs(out, exist_ok=True)
        listing = os.path.join(out, SKIPPED_NAME)
        with open(listing, "w") as f:
            f.writelines(f"{path}\t{reason}\n" for path, reason in ds.skipped)
        _warn(
            "jcnn train",
            f"skipped {len(ds.skipped)} unreadable file(s), listed in {listing} (--bad-images fail stops instead)",
        )
        for path, reason in ds.skipped[:10]:
            log(f"  skipped {path}: {reason}")
    if ds.ignored:
        log(f"jcnn train: ignored {len(ds.ignored)} file(s) without an image extension, e.g. {ds.ignored[0]}")
    return ds


def _floats(values: Any) -> str:
    return "none" if values is None else "[" + ", ".join(f"{v:.4f}" for v in values) + "]"


def _check_out(out: str, resuming: bool, overwrite: bool) -> None:
    """``--out`` must be (or become) a writable directory, and must not hold another run unless it is
    resumed or ``--overwrite`` replaces it. Checked before any data is loaded."""
    from jcnn.training.train import CHECKPOINT_NAME

    if os.path.exists(out) and not os.path.isdir(out):
        raise CLIError(
            f"--out {out!r} is an existing file, not a directory; pass a directory (it is created if missing)"
        )
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"--out {out!r}: cannot create the directory ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise CLIError(f"--out {out!r} is not writable")
    ckpt = os.path.join(out, CHECKPOINT_NAME)
    if os.path.exists(ckpt) and not resuming and not overwrite:
        raise CLIError(
            f"--out {out!r} already holds a run ({CHECKPOINT_NAME}); pass --resume to continue it, "
            "--overwrite to replace it, or another --out"
        )


def _resume_source(args: argparse.Namespace, out: str) -> tuple[str, dict[str, Any]]:
    """The checkpoint ``--resume`` names (a file or a run directory) and its fit progress."""
    from jcnn.training import checkpoint
    from jcnn.training.train import CHECKPOINT_NAME

    path = args.resume or os.path.join(out, CHECKPOINT_NAME)
    if os.path.isdir(path):
        path = os.path.join(path, CHECKPOINT_NAME)
    if not os.path.isfile(path):
        raise CLIError(f"--resume: no checkpoint at {path!r}; train first with --out {out}")
    progress = checkpoint.load_metadata(path).get("fit")
    if not isinstance(progress, dict) or "config" not in progress:
        raise CLIError(
            f"--resume: {path!r} is not a checkpoint written by jcnn train (it holds no training "
            "progress); pass a run's checkpoint.safetensors"
        )
    if os.path.abspath(os.path.dirname(path)) != os.path.abspath(out):
        ours = os.path.join(out, CHECKPOINT_NAME)
        if os.path.exists(ours) and not args.overwrite:
            raise CLIError(
                f"--out {out!r} already holds another run ({CHECKPOINT_NAME}); resuming {path!r} "
                "there needs --overwrite, or another --out"
            )
    return path, progress


def _plan_epochs(args: argparse.Namespace, progress: dict[str, Any] | None) -> list[int]:
    """The run's plan: the epoch at which each schedule segment ends (the last one is the total)."""
    if progress is None:
        if args.extend:
            raise CLIError("--extend continues a run: pass --resume as well")
        return [args.epochs or DEFAULTS["epochs"]]
    saved = progress["config"]
    planned = int(saved.get("epochs") or args.epochs or 0)
    done = int(progress.get("epoch", 0))
    plan = [int(e) for e in saved.get("extended_from", [])] + [planned]
    if args.epochs is not None and args.epochs < done:
        raise CLIError(f"--resume: the run has already trained {done} epochs; --epochs {args.epochs} cannot undo them")
    if args.extend:
        if args.epochs is None or args.epochs <= planned:
            raise CLIError(
                f"--extend needs --epochs above the {planned} the run is planned for (it trains on to --epochs in all)"
            )
        return plan + [args.epochs]
    if args.epochs is not None and args.epochs != planned:
        state = "it is complete" if done >= planned else f"{done} done"
        raise CLIError(
            f"--resume: the run is planned for {planned} epochs ({state}) and its learning-rate "
            f"schedule spans them; --epochs {args.epochs} would change that: leave --epochs out to "
            f"{'finish' if done < planned else 'keep'} it, or add --extend to train on to "
            f"{args.epochs} epochs with a fresh schedule over the added ones"
        )
    return plan


def run_train(args: argparse.Namespace) -> int:
    """``jcnn train``: validate, load and resize the data, train with :func:`jcnn.training.train.fit`, plot."""
    from jcnn import data as jdata
    from jcnn.training.train import CHECKPOINT_NAME, METRICS_FILES, EarlyStopping, fit

    info = _model_info(args.model)
    dataset = "folder" if str(args.dataset).strip().lower() == "folder" else jdata.canonical_name(args.dataset)
    args.dataset = dataset
    folder_opts = _folder_options(args, dataset)
    if args.data_dir is not None and not os.path.isdir(args.data_dir):
        raise CLIError(f"--data-dir {args.data_dir!r} is not a directory; create it and put the {dataset} files there")
    out = _resolve_out(args)
    resume, progress = _resume_source(args, out) if args.resume is not None else (None, None)
    saved = progress["config"] if progress is not None else None
    plan = _plan_epochs(args, progress)
    epochs = plan[-1]
    _check_out(out, resume is not None, args.overwrite)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    weight_decay = args.weight_decay
    if weight_decay is None:
        weight_decay = DEFAULT_WEIGHT_DECAY.get(args.optimizer, 0.0)
    log = _say(args.quiet)

    t0 = time.perf_counter()
    size = tuple(args.input_size) if args.input_size else tuple(info.input_size)
    if dataset == "folder":
        ds = _load_folder(args, folder_opts, size, saved, out, log)
        train_x, test_x, native = ds.train_images, ds.test_images, "files"
        class_names = ds.class_names
    else:
        ds = jdata.load_dataset(dataset, args.data_dir)
        native = "{}x{}".format(*ds.train_images.shape[1:3])
        train_x = prepare_images(ds.train_images, size)
        test_x = prepare_images(ds.test_images, size)
        class_names = jdata.CLASS_NAMES.get(dataset)
    channels = train_x.shape[-1]
    if len(train_x) < args.batch_size:
        raise CLIError(f"--batch-size {args.batch_size} is larger than the {len(train_x)} training images")
    model = _build_model(args.model, int(ds.num_classes), int(channels))
    steps_per_epoch = len(train_x) // args.batch_size
    schedule = run_schedule(args.schedule, lr, plan, steps_per_epoch)
    optimizer = (
        make_optimizer(args.optimizer, schedule, weight_decay=weight_decay)
        if callable(schedule)
        else _constant_lr_optimizer(args.optimizer, schedule, weight_decay)
    )
    default_padding = max(1, round(min(size) / 8)) if dataset == "folder" else CROP_PADDING.get(dataset, 0)
    padding = default_padding if args.crop_padding is None else args.crop_padding
    flip = _default_flip(dataset) if args.flip is None else bool(args.flip)
    augment_fn = _augment_fn(dataset, padding, flip) if args.augment else None
    early = EarlyStopping("test_accuracy", args.patience) if args.patience else None
    mix_fn, loss_fn = _recipe(args, int(ds.num_classes))
    ema = None
    if args.ema is not None:
        from jcnn import optim

        ema = optim.ema(args.ema, warmup=args.ema_warmup)
    config = {
        "model": args.model,
        "dataset": dataset,
        "epochs": epochs,
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "lr": lr,
        "schedule": args.schedule,
        "weight_decay": weight_decay,
        "augment": bool(args.augment),
        "crop_padding": padding if args.augment else 0,
        "seed": args.seed,
        "input_shape": [int(d) for d in train_x.shape[1:]],
        "num_classes": int(ds.num_classes),
        "train_images": int(len(train_x)),
        "test_images": int(len(test_x)),
        "flip": flip and bool(args.augment),
        "patience": args.patience,
        "ema": args.ema,
        "ema_warmup": bool(args.ema_warmup),
        "mixup": args.mixup,
        "cutmix": args.cutmix,
        "mix_prob": args.mix_prob,
        "mix_switch_prob": args.mix_switch_prob,
        "label_smoothing": args.label_smoothing,
    }
    if class_names is not None:
        config["class_names"] = list(class_names)
    if dataset == "folder":
        config.update(ds.config())
    if resume is not None and saved is not None:  # saved: the resumed run's config
        _check_resume_config(resume, saved, config)
    elif args.overwrite:
        for name in (CHECKPOINT_NAME, *METRICS_FILES, *FIGURES):
            if os.path.isfile(os.path.join(out, name)):
                os.unlink(os.path.join(out, name))
    log(
        f"jcnn train: {args.model} on {dataset} ({len(train_x)} train / {len(test_x)} test images, "
        f"{native} -> {size[0]}x{size[1]}x{channels}), {args.optimizer} lr {lr:g} "
        f"{args.schedule} wd {weight_decay:g}, {epochs} epochs of {steps_per_epoch} steps, out {out}"
    )
    result = fit(
        model,
        optimizer,
        (train_x, ds.train_labels),
        (test_x, ds.test_labels),
        epochs=epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        eval_batch_size=args.eval_batch_size,
        augment_fn=augment_fn,
        out_dir=out,
        resume=resume,
        early_stopping=early,
        learning_rate=schedule,
        config=config,
        progress=not (args.no_progress or args.quiet),
        log=_result,
        prefetch=args.prefetch,
        extend=args.extend,
        overwrite=args.overwrite,
        loss_fn=loss_fn,
        mix_fn=mix_fn,
        ema=ema,
    )
    if not args.no_plots and result.history:
        write_figures(
            out, model, result, test_x, ds.test_labels, ds.num_classes, class_names, title=f"{args.model} on {dataset}"
        )
    s = result.summary
    _result(
        f"jcnn train: test accuracy {s['test_accuracy']:.4f}, test loss {s['test_loss']:.4f}, "
        f"{s['epochs']} epochs in {s['wall_time_s']:.1f} s ({s['images_per_s']:.0f} images/s); "
        f"total {time.perf_counter() - t0:.1f} s; wrote {out}"
    )
    if s.get("diverged"):
        print(f"jcnn train: error: {result.stop_reason}", file=sys.stderr)
        return 1
    return 0


# Options that must match the checkpoint's for --resume to continue the same run (--epochs is the plan).
_RESUME_KEYS = (
    "model",
    "dataset",
    "batch_size",
    "optimizer",
    "lr",
    "schedule",
    "weight_decay",
    "augment",
    "crop_padding",
    "seed",
    "input_shape",
    "flip",
    "class_names",
    "color",
    "resize",
    "test_fraction",
    "split_seed",
    "patience",
    "ema",
    "ema_warmup",
    "mixup",
    "cutmix",
    "mix_prob",
    "mix_switch_prob",
    "label_smoothing",
)


# What the data set must still give.
_RESUME_DATA = ("num_classes", "train_images", "test_images")


def _check_resume_config(path: str, saved: dict[str, Any], config: dict[str, Any]) -> None:
    diffs = [
        f"--{k.replace('_', '-')} {saved[k]!r} there, {config[k]!r} here"
        for k in _RESUME_KEYS
        if k in saved and k in config and saved[k] != config[k]
    ]
    if diffs:
        raise CLIError(
            f"--resume: {path} was trained with other options ({'; '.join(diffs)}); "
            "pass the same options to continue it"
        )
    data = [f"{k} {saved[k]!r} there, {config[k]!r} here" for k in _RESUME_DATA if k in saved and saved[k] != config[k]]
    if data:
        raise CLIError(
            f"--resume: {path} was trained on other data ({'; '.join(data)}); point --data-dir at the same files"
        )


@functools.lru_cache(maxsize=8)
def _build_model(name: str, num_classes: int, channels: int) -> Any:
    """The zoo model (cached: one Layer value per configuration, so its jitted init compiles once)."""
    from jcnn.models import get_model

    return get_model(name, num_classes=num_classes, in_channels=channels)


@functools.lru_cache(maxsize=8)
def _mix_fn(
    num_classes: int, mixup: float, cutmix: float, prob: float, switch_prob: float, label_smoothing: float
) -> Any:
    from jcnn.data import mix_batch

    return functools.partial(
        mix_batch,
        num_classes=num_classes,
        mixup_alpha=mixup,
        cutmix_alpha=cutmix,
        prob=prob,
        switch_prob=switch_prob,
        label_smoothing=label_smoothing,
    )


@functools.lru_cache(maxsize=8)
def _smoothed_loss(label_smoothing: float) -> Any:
    from jcnn.losses import softmax_cross_entropy

    return functools.partial(softmax_cross_entropy, label_smoothing=label_smoothing)


def _recipe(args: argparse.Namespace, num_classes: int) -> tuple[Any, Any]:
    """``(mix_fn, loss_fn)`` of the flags: ``jcnn.data.mix_batch`` when --mixup or --cutmix is on (the label
    smoothing goes into its soft targets), else a label-smoothed cross-entropy when asked (None: the default
    loss). Cached, so that repeated runs in one process reuse the compiled steps."""
    if args.mixup > 0 or args.cutmix > 0:
        return _mix_fn(
            num_classes, args.mixup, args.cutmix, args.mix_prob, args.mix_switch_prob, args.label_smoothing
        ), None
    return None, (_smoothed_loss(args.label_smoothing) if args.label_smoothing > 0 else None)


@functools.lru_cache(maxsize=8)
def _constant_lr_optimizer(name: str, lr: float, weight_decay: float) -> Any:
    """One optimizer value per configuration (as the model and augmentation), so that runs in one
    process (tests, notebooks) reuse fit's compiled steps; schedules are closures, built per run."""
    return make_optimizer(name, lr, weight_decay=weight_decay)


def _default_flip(dataset: str) -> bool:
    """Horizontal flips by default for fashion-mnist, cifar10 and image folders; never for digits."""
    from jcnn.data import AUGMENTATION_DEFAULTS

    return dataset == "folder" or bool(AUGMENTATION_DEFAULTS.get(dataset, {}).get("flip", False))


@functools.lru_cache(maxsize=8)
def _augment_fn(dataset: str, padding: int, flip: bool | None = None) -> Any:
    """Random crop with ``padding`` and a horizontal flip (default: the data set's, see
    :func:`_default_flip`), as ``f(key, x)``; ``None`` when neither applies. Cached: one function value
    per configuration, so runs in one process reuse fit's compiled step."""
    from jcnn.data import augment

    flip = _default_flip(dataset) if flip is None else flip
    if padding == 0 and not flip:
        return None
    return lambda key, images: augment(key, images, crop_padding=padding, flip=flip)


def write_figures(
    out: str,
    model: Any,
    result: Any,
    test_x: Any,
    test_y: Any,
    num_classes: int,
    class_names: Sequence[str] | None = None,
    *,
    title: str = "",
) -> list[str]:
    """Write ``curves.png``, ``filters.png``, ``feature_maps.png`` and ``confusion_matrix.png`` to ``out``."""
    from jcnn.optim import eval_weights
    from jcnn.training import plots
    from jcnn.training.train import predict

    params, state = eval_weights(result.state)  # the EMA's when the run keeps one
    written = [plots.plot_history(result.history, os.path.join(out, "curves.png"), title=title)]
    _, kernel = plots.first_conv_kernel(params)
    if kernel.ndim == 4:
        written.append(plots.plot_filters(kernel, os.path.join(out, "filters.png")))
        maps = plots.first_conv_output(model, params, state, test_x[:1])
        written.append(
            plots.plot_feature_maps(
                test_x[0],
                maps[0],
                os.path.join(out, "feature_maps.png"),
                title=f"first conv layer on test image 0 (label {int(test_y[0])})",
            )
        )
    logits = predict(model, params, state, test_x)
    cm = plots.confusion_matrix(test_y, logits, num_classes)
    written.append(
        plots.plot_confusion_matrix(
            cm, os.path.join(out, "confusion_matrix.png"), class_names=class_names, title=f"{title} test"
        )
    )
    return written
