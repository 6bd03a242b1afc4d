"""The ``jcnn`` command: ``jcnn train``, ``predict``, ``export``, ``inspect``, ``summary`` and ``verify``.

``jcnn train`` trains a zoo model on a data set (the digits that ship with scikit-learn by default, no
download, or a folder of your own images with ``--dataset folder``) and writes into ``--out``:
``checkpoint.safetensors``, ``metrics.json``, ``metrics.csv`` and the PNG figures ``curves.png``,
``filters.png``, ``feature_maps.png``, ``confusion_matrix.png``. ``jcnn predict`` classifies image files
with a run's checkpoint; ``jcnn export`` writes the run as a ``jax.export`` artifact for serving.

Results go to stdout (train: one line per epoch and the final line; predict: the classes; export: what
was written), progress and logs to stderr; ``--quiet`` keeps only results, warnings and errors. Exit
status: see :data:`EXIT_STATUS` (bad input gives one line on stderr, no traceback; set
``JCNN_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

# The Python API of the command; the option defaults below are documented by ``jcnn train --help``.
__all__ = [
    "CLIError",
    "build_parser",
    "main",
    "run_summary",
    "run_train",
    "make_optimizer",
    "make_schedule",
    "prepare_images",
    "write_figures",
    "EXIT_STATUS",
]

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
DEFAULT_LR = {
    "sgd": 0.1,
    "momentum": 0.05,
    "nesterov": 0.05,
    "adagrad": 0.05,
    "rmsprop": 1e-3,
    "adam": 3e-3,
    "adamw": 5e-3,
    "adamax": 4e-3,
    "nadam": 3e-3,
    "adadelta": 1.0,
}
DEFAULT_WEIGHT_DECAY = {"adamw": 0.05}
OPTIMIZERS = tuple(DEFAULT_LR)
SCHEDULES = ("constant", "cosine", "warmup-cosine", "step", "exponential", "one-cycle")
# Random-crop padding in pixels of the model's input (digits: 2 px at 32x32 is half a pixel at 8x8).
CROP_PADDING = {"digits": 2, "mnist": 2, "fashion-mnist": 2, "cifar10": 4}
FIGURES = ("curves.png", "filters.png", "feature_maps.png", "confusion_matrix.png")
SKIPPED_NAME = "skipped_images.txt"
EXIT_STATUS = """exit status:
  0    success
  1    failure at run time: data or files missing or unreadable, a bad checkpoint, training diverged
       (non-finite loss), verify found a mismatch; one line on stderr says what
  2    bad command line (unknown option, invalid value)
  130  interrupted (Ctrl-C); the last checkpoint written (after the last whole epoch) is intact

Results go to stdout, progress and logs to stderr (--quiet: results, warnings and errors only)."""
"""The epilog of every ``--help``: what each exit status means, and where results and logs go."""


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
            raise argparse.ArgumentTypeError(
                f"expected a finite number {'>' if open_low else '>='} {low:g}, got {text}"
            )
        return value

    return parse


def _probability(*, open_high: bool = False) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (0.0 <= value < 1.0 if open_high else 0.0 <= value <= 1.0):
            raise argparse.ArgumentTypeError(f"expected a number in [0, {'1)' if open_high else '1]'}, got {text}")
        return value

    return parse


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and data")
    g.add_argument(
        "--model",
        default=DEFAULTS["model"],
        metavar="NAME",
        help="zoo model (see `jcnn summary --list`); default %(default)s",
    )
    g.add_argument(
        "--dataset",
        default=DEFAULTS["dataset"],
        metavar="NAME",
        help="digits (embedded, no download), mnist, fashion-mnist, cifar10, or folder (your own "
        "images in --data-dir); default %(default)s",
    )
    g.add_argument(
        "--data-dir",
        metavar="DIR",
        help="directory holding the MNIST/Fashion-MNIST IDX files or the CIFAR-10 python batches "
        "(default $JCNN_DATA_DIR or ~/.jcnn/data; unused for digits); for folder: one "
        "sub-directory of images per class, or train/ and val/ holding those",
    )
    g.add_argument(
        "--input-size",
        type=_positive_int,
        nargs=2,
        metavar=("H", "W"),
        help="resize the images (bilinear, once) to H W; default: the model's input size (32 32 for lenet5)",
    )
    g.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="random crop with zero padding (and a horizontal flip for fashion-mnist and "
        "cifar10), inside the jitted step; default on",
    )
    g.add_argument(
        "--crop-padding",
        type=_nonnegative_int,
        metavar="P",
        help="padding of the random crop, in pixels of the resized images; default: "
        + ", ".join(f"{k} {v}" for k, v in CROP_PADDING.items())
        + ", folder H/8",
    )
    g.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random horizontal flips (with --augment); default on for fashion-mnist, cifar10 "
        "and folder, off for digits and mnist",
    )
    g.add_argument(
        "--prefetch",
        type=_nonnegative_int,
        default=2,
        metavar="N",
        help="batches prepared ahead (decoded, on the device) in a background thread, 0: none; "
        "the result is the same; default %(default)s",
    )
    f = p.add_argument_group("image folder (--dataset folder)")
    f.add_argument(
        "--val-dir",
        metavar="DIR",
        help="a separate validation folder (same class sub-directories); default DATA_DIR/val or "
        "DATA_DIR/test when DATA_DIR/train exists, else a split of --data-dir",
    )
    f.add_argument(
        "--test-fraction",
        type=_fraction,
        metavar="F",
        help="share of each class held out for testing when there is no validation folder; default 0.2",
    )
    f.add_argument(
        "--split-seed",
        type=_nonnegative_int,
        metavar="N",
        help="seed of that stratified split (independent of --seed); default 0",
    )
    f.add_argument(
        "--color",
        choices=("rgb", "grayscale"),
        metavar="MODE",
        help="rgb (3 channels; alpha dropped) or grayscale (1 channel); default rgb",
    )
    f.add_argument(
        "--resize",
        choices=("crop", "stretch"),
        metavar="MODE",
        help="crop: the centred box of the input's aspect ratio, resized; stretch: the whole "
        "image resized; default crop",
    )
    f.add_argument(
        "--bad-images",
        choices=("skip", "fail"),
        metavar="WHAT",
        help="unreadable, truncated or non-image files: skip them (listed on stderr and in "
        f"OUT/{SKIPPED_NAME}) or fail before training; default skip",
    )
    f.add_argument(
        "--cache-mb",
        type=_float(0.0, open_low=False),
        metavar="MB",
        help="decoded images kept in memory; the others are decoded again for each batch; default 512",
    )
    o = p.add_argument_group("optimisation")
    o.add_argument(
        "--epochs",
        type=_positive_int,
        metavar="N",
        help=f"number of passes over the training set, which the learning-rate schedule spans; "
        f"default {DEFAULTS['epochs']}, or with --resume the run's own",
    )
    o.add_argument(
        "--batch-size",
        type=_positive_int,
        default=DEFAULTS["batch_size"],
        metavar="N",
        help="training mini-batch size (the last incomplete batch of an epoch is dropped); default %(default)s",
    )
    o.add_argument(
        "--optimizer",
        default=DEFAULTS["optimizer"],
        choices=OPTIMIZERS,
        metavar="NAME",
        help=f"one of {', '.join(OPTIMIZERS)} (momentum/nesterov: SGD with momentum 0.9); default %(default)s",
    )
    o.add_argument(
        "--lr",
        type=_float(0.0, open_low=True),
        metavar="LR",
        help="peak learning rate, > 0; default depends on the optimizer: "
        + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()),
    )
    o.add_argument(
        "--schedule",
        default=DEFAULTS["schedule"],
        choices=SCHEDULES,
        metavar="NAME",
        help=f"learning-rate schedule over the whole run, one of {', '.join(SCHEDULES)}; default %(default)s",
    )
    o.add_argument(
        "--weight-decay",
        type=_float(0.0, open_low=False),
        metavar="WD",
        help="weight decay: decoupled for adamw (default 0.05), L2 added to the gradient for the others (default 0)",
    )
    o.add_argument(
        "--patience",
        type=_positive_int,
        metavar="N",
        help="early stopping: stop after N epochs without a better test accuracy; default off",
    )
    e = p.add_argument_group("recipe (timm's: weight EMA, mixup/cutmix with soft targets, label smoothing)")
    e.add_argument(
        "--ema",
        type=_probability(open_high=True),
        metavar="DECAY",
        help="keep an exponential moving average of the weights with this decay (e.g. 0.999), "
        "timm's ModelEmaV3; evaluated, plotted and checkpointed with the run; default off",
    )
    e.add_argument(
        "--ema-warmup",
        action="store_true",
        help="EMA warm-up: decay min(DECAY, 1 - (1 + step)^(-2/3)) (timm's use_warmup)",
    )
    e.add_argument(
        "--mixup",
        type=_float(0.0, open_low=False),
        default=0.0,
        metavar="ALPHA",
        help="mixup with lambda ~ Beta(ALPHA, ALPHA) (timm uses 0.8); 0 (default) is off",
    )
    e.add_argument(
        "--cutmix",
        type=_float(0.0, open_low=False),
        default=0.0,
        metavar="ALPHA",
        help="cutmix with lambda ~ Beta(ALPHA, ALPHA) (timm uses 1.0); 0 (default) is off; with "
        "--mixup too, each batch takes one of the two (--mix-switch-prob)",
    )
    e.add_argument(
        "--mix-prob",
        type=_probability(),
        default=1.0,
        metavar="P",
        help="probability that a batch is mixed; default %(default)s",
    )
    e.add_argument(
        "--mix-switch-prob",
        type=_probability(),
        default=0.5,
        metavar="P",
        help="probability of cutmix rather than mixup when both are on; default %(default)s",
    )
    e.add_argument(
        "--label-smoothing",
        type=_probability(),
        default=0.0,
        metavar="EPS",
        help="label smoothing of the (soft) targets; default %(default)s",
    )
    r = p.add_argument_group("run")
    r.add_argument(
        "--seed",
        type=_nonnegative_int,
        default=DEFAULTS["seed"],
        metavar="N",
        help="seed of the initialisation, data order and augmentation; default %(default)s",
    )
    r.add_argument(
        "--out", metavar="DIR", help="output directory for the checkpoint, metrics and figures; default runs/<dataset>"
    )
    r.add_argument(
        "--resume",
        nargs="?",
        const="",
        default=None,
        metavar="CKPT",
        help="continue an interrupted run from CKPT (a checkpoint, or a run directory; default: "
        "OUT/checkpoint.safetensors) with the same options, to the epochs it was planned for: "
        "gives the same result as a run that was not stopped; a finished run trains nothing",
    )
    r.add_argument(
        "--extend",
        action="store_true",
        help="with --resume and --epochs N above the run's planned epochs: train on to N epochs in "
        "all; the added epochs get a fresh --schedule over them (a warm restart from --lr), "
        "recorded in the checkpoint so a later --resume replays it",
    )
    r.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in OUT (its checkpoint, metrics and figures are deleted first); "
        "without it a new run into an OUT that holds one is an error",
    )
    r.add_argument(
        "--eval-batch-size",
        type=_positive_int,
        default=1000,
        metavar="N",
        help="batch size of the evaluation; default %(default)s",
    )
    r.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")
    r.add_argument("--no-plots", action="store_true", help="do not write the PNG figures")
    _add_quiet(r)


# Folder options: None means "not given", so that they can be refused for the other data sets.
FOLDER_DEFAULTS = {
    "val_dir": None,
    "test_fraction": 0.2,
    "split_seed": 0,
    "color": "rgb",
    "resize": "crop",
    "bad_images": "skip",
    "cache_mb": 512.0,
}


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text}")
    return value


def _add_quiet(p: Any) -> None:
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print only results (stdout), warnings and errors: no progress bar or log lines",
    )


def _add_summary_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULTS["model"], metavar="NAME", help="zoo model; default %(default)s")
    p.add_argument("--num-classes", type=_positive_int, metavar="N", help="classes (default: the model's)")
    p.add_argument("--in-channels", type=_positive_int, metavar="C", help="input channels (default: the model's)")
    p.add_argument(
        "--input-size",
        type=_positive_int,
        nargs=2,
        metavar=("H", "W"),
        help="input height and width (default: the model's)",
    )
    p.add_argument("--list", action="store_true", help="list the zoo models and exit")


def build_parser(*, with_verify: bool = False) -> argparse.ArgumentParser:
    """The ``jcnn`` argument parser. ``jcnn verify``'s options are added only when ``with_verify`` (they
    come from :mod:`jcnn.verify`, which imports torch)."""
    from jcnn import cli_serve

    raw = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog="jcnn",
        description="jcnn: a functional CNN library on JAX.",
        formatter_class=raw,
        epilog="Run `jcnn COMMAND --help` for the options of a command.\n\n" + EXIT_STATUS,
    )
    parser.add_argument("--version", action="version", version=f"jcnn {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    train = sub.add_parser(
        "train",
        help="train a model and write its checkpoint, metrics and figures",
        formatter_class=raw,
        description="Train a zoo model on a data set. Writes OUT/checkpoint.safetensors, metrics.json\n"
        "(final test_accuracy, test_loss, wall_time_s, images_per_s, per-epoch history),\n"
        f"metrics.csv and the figures {', '.join(FIGURES)}.",
        epilog=EXIT_STATUS,
    )
    _add_train_arguments(train)
    predict = sub.add_parser(
        "predict",
        help="classify image files with a trained run",
        formatter_class=raw,
        epilog=EXIT_STATUS,
        description="Classify image files with a run's checkpoint: the top-k classes and their softmax\n"
        "probabilities, one line per image (or --json). Images go through the run's own input\n"
        "pipeline (size, colour, resize mode, normalisation from its config).",
    )
    cli_serve.add_predict_arguments(predict)
    export = sub.add_parser(
        "export",
        help="write a run as a jax.export artifact for serving",
        formatter_class=raw,
        epilog=EXIT_STATUS,
        description="Write the eval-mode forward of a run (its normalisation, then the model, parameters\n"
        "baked in) as a serialized jax.export artifact for any batch size, and PATH.json\n"
        "describing its input and classes. Loading it needs jax (and flatbuffers), not jcnn:\n"
        "see docs/serving.md.",
    )
    cli_serve.add_export_arguments(export)
    inspect = sub.add_parser(
        "inspect",
        help="draw every step of a trained run's forward pass on one image (HTML page)",
        formatter_class=raw,
        epilog=EXIT_STATUS,
        description="Run a run's model on one image and write one figure per stage: the input, then each\n"
        "convolution, pooling, normalization and activation layer's feature maps (first\n"
        "channels), shape and value histogram, then the class probabilities; OUT/index.html\n"
        "lays them out in order (print its path on stdout).",
    )
    cli_serve.add_inspect_arguments(inspect)
    summary = sub.add_parser(
        "summary",
        help="print a model's layer table",
        description="Print the layer table of a zoo model: output shapes and parameters.",
    )
    _add_summary_arguments(summary)
    verify = sub.add_parser(
        "verify",
        help="check every op, layer, loss, optimizer and model against PyTorch",
        description="Run jcnn against PyTorch and print a table of errors; exit 1 on a failure (needs torch).",
        add_help=with_verify,
    )
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
        print(f"jcnn verify: error: {_one_line(exc)} (jcnn verify needs PyTorch: pip install torch)", file=sys.stderr)
        return 1
    args = parser.parse_args(argv)
    prog = f"jcnn {args.command}"
    try:
        if args.command == "train":
            return run_train(args)
        if args.command == "summary":
            return run_summary(args)
        if args.command in ("predict", "export", "inspect"):
            from jcnn import cli_serve

            run = {"predict": cli_serve.run_predict, "export": cli_serve.run_export, "inspect": cli_serve.run_inspect}[
                args.command
            ]
            return run(args)
        from jcnn import verify

        return int(verify.run(args))
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (CLIError, ValueError, OSError, ImportError) as exc:
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


def _say(quiet: bool) -> Any:
    """``log(msg)`` on stderr unless ``quiet`` (progress and logs; results use :func:`_result`)."""
    return (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))


def _result(msg: str) -> None:
    print(msg, flush=True)


def _warn(prog: str, msg: str) -> None:
    print(f"{prog}: warning: {msg}", file=sys.stderr, flush=True)


def _folder_options(args: argparse.Namespace, dataset: str) -> dict:
    """The folder options with their defaults; refused for the other data sets (they would be ignored)."""
    given = {k: getattr(args, k) for k in FOLDER_DEFAULTS if getattr(args, k) is not None}
    if dataset != "folder":
        if given:
            names = ", ".join("--" + k.replace("_", "-") for k in given)
            raise CLIError(f"{names} only apply to --dataset folder, not {dataset}")
        return {}
    return {**FOLDER_DEFAULTS, **given}


def _load_folder(
    args: argparse.Namespace, opts: dict, size: tuple[int, int], saved: dict | None, out: str, log: Any
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
    from jcnn.train import CHECKPOINT_NAME

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


def _resume_source(args: argparse.Namespace, out: str) -> tuple[str, dict]:
    """The checkpoint ``--resume`` names (a file or a run directory) and its fit progress."""
    from jcnn import checkpoint
    from jcnn.train import CHECKPOINT_NAME

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


def _plan_epochs(args: argparse.Namespace, progress: dict | None) -> list[int]:
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
    """``jcnn train``: validate, load and resize the data, train with :func:`jcnn.train.fit`, plot."""
    from jcnn import data as jdata
    from jcnn.train import CHECKPOINT_NAME, METRICS_FILES, EarlyStopping, fit

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
    if resume is not None:
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


def _check_resume_config(path: str, saved: dict, config: dict) -> None:
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
    from jcnn import plots
    from jcnn.optim import eval_weights
    from jcnn.train import predict

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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
