"""The ``jcnn`` command: ``jcnn train``, ``jcnn summary`` and ``jcnn verify``.

``jcnn train`` trains a zoo model on a data set (the digits that ship with scikit-learn by default, no
download) and writes into ``--out``: ``checkpoint.safetensors``, ``metrics.json``, ``metrics.csv`` and
the PNG figures ``curves.png``, ``filters.png``, ``feature_maps.png``, ``confusion_matrix.png``.
Bad input exits with status 2 (arguments) or 1 (data, files) and one line on stderr, no traceback
(set ``JCNN_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import time
from typing import Any, Sequence

# The Python API of the command; the option defaults below are documented by ``jcnn train --help``.
__all__ = ["CLIError", "build_parser", "main", "run_summary", "run_train", "make_optimizer", "make_schedule",
           "prepare_images", "write_figures"]

DEFAULTS = {
    "model": "lenet5",
    "dataset": "digits",
    "epochs": 40,
    "batch_size": 32,
    "optimizer": "adamw",
    "schedule": "cosine",
    "seed": 0,
}
# Per-optimizer learning rates used when --lr is not given.
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.05, "rmsprop": 1e-3, "adam": 3e-3,
              "adamw": 5e-3, "adamax": 4e-3, "nadam": 3e-3, "adadelta": 1.0}
DEFAULT_WEIGHT_DECAY = {"adamw": 0.05}
OPTIMIZERS = tuple(DEFAULT_LR)
SCHEDULES = ("constant", "cosine", "warmup-cosine", "step", "exponential", "one-cycle")
# Random-crop padding in pixels of the model's input (digits: 2 px at 32x32 is half a pixel at 8x8).
CROP_PADDING = {"digits": 2, "mnist": 2, "fashion-mnist": 2, "cifar10": 4}
FIGURES = ("curves.png", "filters.png", "feature_maps.png", "confusion_matrix.png")


class CLIError(Exception):
    """Bad input found after parsing: printed as one line, exit status 1."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``jcnn train: error: ... (see jcnn train --help)``, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _float(low: float, *, open_low: bool) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        bad = not math.isfinite(value) or (value <= low if open_low else value < low)
        if bad:
            raise argparse.ArgumentTypeError(f"expected a finite number {'>' if open_low else '>='} {low:g}, "
                                             f"got {text}")
        return value

    return parse


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and data")
    g.add_argument("--model", default=DEFAULTS["model"], metavar="NAME",
                   help="zoo model (see `jcnn summary --list`); default %(default)s")
    g.add_argument("--dataset", default=DEFAULTS["dataset"], metavar="NAME",
                   help="digits (embedded, no download), mnist, fashion-mnist or cifar10; default %(default)s")
    g.add_argument("--data-dir", metavar="DIR",
                   help="directory holding the MNIST/Fashion-MNIST IDX files or the CIFAR-10 python batches "
                        "(default $JCNN_DATA_DIR or ~/.jcnn/data; unused for digits)")
    g.add_argument("--input-size", type=_positive_int, nargs=2, metavar=("H", "W"),
                   help="resize the images (bilinear, once) to H W; default: the model's input size "
                        "(32 32 for lenet5)")
    g.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                   help="random crop with zero padding (and a horizontal flip for fashion-mnist and "
                        "cifar10), inside the jitted step; default on")
    g.add_argument("--crop-padding", type=_nonnegative_int, metavar="P",
                   help="padding of the random crop, in pixels of the resized images; default: "
                        + ", ".join(f"{k} {v}" for k, v in CROP_PADDING.items()))
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=_positive_int, default=DEFAULTS["epochs"], metavar="N",
                   help="number of passes over the training set; default %(default)s")
    o.add_argument("--batch-size", type=_positive_int, default=DEFAULTS["batch_size"], metavar="N",
                   help="training mini-batch size (the last incomplete batch of an epoch is dropped); "
                        "default %(default)s")
    o.add_argument("--optimizer", default=DEFAULTS["optimizer"], choices=OPTIMIZERS, metavar="NAME",
                   help=f"one of {', '.join(OPTIMIZERS)} (momentum/nesterov: SGD with momentum 0.9); "
                        "default %(default)s")
    o.add_argument("--lr", type=_float(0.0, open_low=True), metavar="LR",
                   help="peak learning rate, > 0; default depends on the optimizer: "
                        + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()))
    o.add_argument("--schedule", default=DEFAULTS["schedule"], choices=SCHEDULES, metavar="NAME",
                   help=f"learning-rate schedule over the whole run, one of {', '.join(SCHEDULES)}; "
                        "default %(default)s")
    o.add_argument("--weight-decay", type=_float(0.0, open_low=False), metavar="WD",
                   help="weight decay: decoupled for adamw (default 0.05), L2 added to the gradient for "
                        "the others (default 0)")
    o.add_argument("--patience", type=_positive_int, metavar="N",
                   help="early stopping: stop after N epochs without a better test accuracy; default off")
    r = p.add_argument_group("run")
    r.add_argument("--seed", type=_nonnegative_int, default=DEFAULTS["seed"], metavar="N",
                   help="seed of the initialisation, data order and augmentation; default %(default)s")
    r.add_argument("--out", metavar="DIR",
                   help="output directory for the checkpoint, metrics and figures; default runs/<dataset>")
    r.add_argument("--resume", nargs="?", const="", default=None, metavar="CKPT",
                   help="continue a run from CKPT (default: OUT/checkpoint.safetensors) with the same "
                        "options; gives the same result as a run that was not stopped")
    r.add_argument("--eval-batch-size", type=_positive_int, default=1000, metavar="N",
                   help="batch size of the evaluation; default %(default)s")
    r.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")
    r.add_argument("--no-plots", action="store_true", help="do not write the PNG figures")


def _add_summary_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULTS["model"], metavar="NAME", help="zoo model; default %(default)s")
    p.add_argument("--num-classes", type=_positive_int, metavar="N", help="classes (default: the model's)")
    p.add_argument("--in-channels", type=_positive_int, metavar="C", help="input channels (default: the model's)")
    p.add_argument("--input-size", type=_positive_int, nargs=2, metavar=("H", "W"),
                   help="input height and width (default: the model's)")
    p.add_argument("--list", action="store_true", help="list the zoo models and exit")


def build_parser(*, with_verify: bool = False) -> argparse.ArgumentParser:
    """The ``jcnn`` argument parser. ``jcnn verify``'s options are added only when ``with_verify`` (they
    come from :mod:`jcnn.verify`, which imports torch)."""
    parser = _Parser(prog="jcnn", description="jcnn: a functional CNN library on JAX.",
                     epilog="Run `jcnn COMMAND --help` for the options of a command.")
    parser.add_argument("--version", action="version", version=f"jcnn {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    train = sub.add_parser(
        "train", help="train a model and write its checkpoint, metrics and figures",
        description="Train a zoo model on a data set. Writes OUT/checkpoint.safetensors, metrics.json "
                    "(final test_accuracy, test_loss, wall_time_s, images_per_s, per-epoch history), "
                    f"metrics.csv and the figures {', '.join(FIGURES)}.")
    _add_train_arguments(train)
    summary = sub.add_parser("summary", help="print a model's layer table",
                             description="Print the layer table of a zoo model: output shapes and parameters.")
    _add_summary_arguments(summary)
    verify = sub.add_parser("verify", help="check every op, layer, loss, optimizer and model against PyTorch",
                            description="Run jcnn against PyTorch and print a table of errors; exit 1 on a "
                                        "failure (needs torch).", add_help=with_verify)
    if with_verify:
        from jcnn import verify as verify_module

        verify_module.add_arguments(verify)
    else:
        verify.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def _version() -> str:
    from jcnn import __version__

    return __version__


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jcnn`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        parser = build_parser(with_verify=command == "verify")
    except ImportError as exc:  # jcnn verify needs torch, which is not a dependency of jcnn
        print(f"jcnn verify: error: {_one_line(exc)} (jcnn verify needs PyTorch: pip install torch)",
              file=sys.stderr)
        return 1
    args = parser.parse_args(argv)
    prog = f"jcnn {args.command}"
    try:
        if args.command == "train":
            return run_train(args)
        if args.command == "summary":
            return run_summary(args)
        from jcnn import verify

        return int(verify.run(args))
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (CLIError, ValueError, OSError) as exc:
        if os.environ.get("JCNN_DEBUG"):
            raise
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return 1


# ------------------------------------------------------------------------------------------------ summary


def _model_info(name: str) -> Any:
    from jcnn.models import MODELS

    if name not in MODELS:
        raise CLIError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}")
    return MODELS[name]


def run_summary(args: argparse.Namespace) -> int:
    """``jcnn summary``: print the layer table of ``--model`` (or the zoo with ``--list``)."""
    from jcnn.models import MODELS, get_model
    from jcnn.summary import summary

    if args.list:
        for name, info in MODELS.items():
            size = f"{info.input_size[0]}x{info.input_size[1]}x{info.in_channels}"
            print(f"{name:14s} {size:11s} {info.description}")
        return 0
    info = _model_info(args.model)
    size = tuple(args.input_size) if args.input_size else tuple(info.input_size)
    channels = args.in_channels or info.in_channels
    model = get_model(args.model, num_classes=args.num_classes, in_channels=channels)
    summary(model, (1, *size, channels), print_fn=print)
    return 0


# -------------------------------------------------------------------------------------------------- train


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


def run_train(args: argparse.Namespace) -> int:
    """``jcnn train``: validate, load and resize the data, train with :func:`jcnn.train.fit`, plot."""
    from jcnn import data as jdata
    from jcnn.train import CHECKPOINT_NAME, EarlyStopping, fit

    info = _model_info(args.model)
    dataset = jdata.canonical_name(args.dataset)
    args.dataset = dataset
    if args.data_dir is not None and not os.path.isdir(args.data_dir):
        raise CLIError(f"--data-dir {args.data_dir!r} is not a directory; create it and put the "
                       f"{dataset} files there")
    out = _resolve_out(args)
    resume = None
    if args.resume is not None:
        resume = args.resume or os.path.join(out, CHECKPOINT_NAME)
        if not os.path.isfile(resume):
            raise CLIError(f"--resume: no checkpoint at {resume!r}; train first with --out {out}")
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    weight_decay = args.weight_decay
    if weight_decay is None:
        weight_decay = DEFAULT_WEIGHT_DECAY.get(args.optimizer, 0.0)

    t0 = time.perf_counter()
    ds = jdata.load_dataset(dataset, args.data_dir)
    size = tuple(args.input_size) if args.input_size else tuple(info.input_size)
    native = ds.train_images.shape[1:3]
    train_x = prepare_images(ds.train_images, size)
    test_x = prepare_images(ds.test_images, size)
    channels = train_x.shape[-1]
    if len(train_x) < args.batch_size:
        raise CLIError(f"--batch-size {args.batch_size} is larger than the {len(train_x)} training images")
    model = _build_model(args.model, int(ds.num_classes), int(channels))
    steps_per_epoch = len(train_x) // args.batch_size
    schedule = make_schedule(args.schedule, lr, args.epochs * steps_per_epoch, steps_per_epoch)
    optimizer = make_optimizer(args.optimizer, schedule, weight_decay=weight_decay)
    padding = CROP_PADDING.get(dataset, 0) if args.crop_padding is None else args.crop_padding
    augment_fn = _augment_fn(dataset, padding) if args.augment else None
    early = EarlyStopping("test_accuracy", args.patience) if args.patience else None
    config = {"model": args.model, "dataset": dataset, "epochs": args.epochs, "batch_size": args.batch_size,
              "optimizer": args.optimizer, "lr": lr, "schedule": args.schedule,
              "weight_decay": weight_decay, "augment": bool(args.augment),
              "crop_padding": padding if args.augment else 0, "seed": args.seed,
              "input_shape": [int(d) for d in train_x.shape[1:]], "num_classes": int(ds.num_classes),
              "train_images": int(len(train_x)), "test_images": int(len(test_x))}
    if resume is not None:
        _check_resume_config(resume, config)
    print(f"jcnn train: {args.model} on {dataset} ({len(train_x)} train / {len(test_x)} test images, "
          f"{native[0]}x{native[1]} -> {size[0]}x{size[1]}x{channels}), {args.optimizer} lr {lr:g} "
          f"{args.schedule} wd {weight_decay:g}, {args.epochs} epochs of {steps_per_epoch} steps, out {out}",
          file=sys.stderr)
    os.makedirs(out, exist_ok=True)
    result = fit(model, optimizer, (train_x, ds.train_labels), (test_x, ds.test_labels),
                 epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                 eval_batch_size=args.eval_batch_size, augment_fn=augment_fn, out_dir=out, resume=resume,
                 early_stopping=early, learning_rate=schedule, config=config, progress=not args.no_progress)
    if not args.no_plots and result.history:
        write_figures(out, model, result, test_x, ds.test_labels, ds.num_classes,
                      jdata.CLASS_NAMES.get(dataset), title=f"{args.model} on {dataset}")
    s = result.summary
    print(f"jcnn train: test accuracy {s['test_accuracy']:.4f}, test loss {s['test_loss']:.4f}, "
          f"{s['epochs']} epochs in {s['wall_time_s']:.1f} s ({s['images_per_s']:.0f} images/s); "
          f"total {time.perf_counter() - t0:.1f} s; wrote {out}", file=sys.stderr)
    if s.get("diverged"):
        print(f"jcnn train: error: {result.stop_reason}", file=sys.stderr)
        return 1
    return 0


# Options that must match the checkpoint's for --resume to continue the same run (--epochs may grow).
_RESUME_KEYS = ("model", "dataset", "batch_size", "optimizer", "lr", "schedule", "weight_decay", "augment",
                "crop_padding", "seed", "input_shape")


def _check_resume_config(path: str, config: dict) -> None:
    from jcnn import checkpoint

    saved = (checkpoint.load_metadata(path).get("fit") or {}).get("config", {})
    diffs = [f"--{k.replace('_', '-')} {saved[k]!r} there, {config[k]!r} here" for k in _RESUME_KEYS
             if k in saved and saved[k] != config[k]]
    if diffs:
        raise CLIError(f"--resume: {path} was trained with other options ({'; '.join(diffs)}); "
                       "pass the same options to continue it")


@functools.lru_cache(maxsize=8)
def _build_model(name: str, num_classes: int, channels: int) -> Any:
    """The zoo model (cached: one Layer value per configuration, so its jitted init compiles once)."""
    from jcnn.models import get_model

    return get_model(name, num_classes=num_classes, in_channels=channels)


def _augment_fn(dataset: str, padding: int) -> Any:
    """Random crop with ``padding`` and the data set's flip default (never for digits), as ``f(key, x)``."""
    from jcnn.data import AUGMENTATION_DEFAULTS, augment

    flip = bool(AUGMENTATION_DEFAULTS.get(dataset, {}).get("flip", False))
    if padding == 0 and not flip:
        return None
    return lambda key, images: augment(key, images, crop_padding=padding, flip=flip)


def write_figures(out: str, model: Any, result: Any, test_x: Any, test_y: Any, num_classes: int,
                  class_names: Sequence[str] | None = None, *, title: str = "") -> list[str]:
    """Write ``curves.png``, ``filters.png``, ``feature_maps.png`` and ``confusion_matrix.png`` to ``out``."""
    from jcnn import plots
    from jcnn.train import predict

    params, state = result.state.params, result.state.state
    written = [plots.plot_history(result.history, os.path.join(out, "curves.png"), title=title)]
    _, kernel = plots.first_conv_kernel(params)
    if kernel.ndim == 4:
        written.append(plots.plot_filters(kernel, os.path.join(out, "filters.png")))
        maps = plots.first_conv_output(model, params, state, test_x[:1])
        written.append(plots.plot_feature_maps(test_x[0], maps[0], os.path.join(out, "feature_maps.png"),
                                               title=f"first conv layer on test image 0 (label {int(test_y[0])})"))
    logits = predict(model, params, state, test_x)
    cm = plots.confusion_matrix(test_y, logits, num_classes)
    written.append(plots.plot_confusion_matrix(cm, os.path.join(out, "confusion_matrix.png"),
                                               class_names=class_names, title=f"{title} test"))
    return written


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
