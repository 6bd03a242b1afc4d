"""``jcnn train``'s options: their defaults (per data set, per optimizer) and the argument parser."""

from __future__ import annotations

import argparse
from typing import Any

from jcnn.cli.common import _add_quiet, _float, _fraction, _nonnegative_int, _positive_int, _probability

__all__ = [
    "DEFAULTS",
    "DEFAULT_LR",
    "DEFAULT_WEIGHT_DECAY",
    "OPTIMIZERS",
    "SCHEDULES",
    "CROP_PADDING",
    "FIGURES",
    "SKIPPED_NAME",
    "FOLDER_DEFAULTS",
    "add_train_arguments",
]

DEFAULTS: dict[str, Any] = {
    "model": "lenet5",
    "dataset": "digits",
    "epochs": 40,
    "batch_size": 32,
    "optimizer": "adamw",
    "schedule": "cosine",
    "seed": 0,
}
"""The defaults of ``jcnn train``'s main options (``--model``, ``--dataset``, ``--epochs``, ...)."""


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
"""The learning rate of each ``--optimizer`` when ``--lr`` is not given."""


DEFAULT_WEIGHT_DECAY = {"adamw": 0.05}
"""The weight decay of each ``--optimizer`` when ``--weight-decay`` is not given (others: 0)."""


OPTIMIZERS = tuple(DEFAULT_LR)
"""The choices of ``--optimizer``."""


SCHEDULES = ("constant", "cosine", "warmup-cosine", "step", "exponential", "one-cycle")
"""The choices of ``--schedule``."""


CROP_PADDING = {"digits": 2, "mnist": 2, "fashion-mnist": 2, "cifar10": 4}
"""Random-crop padding in pixels of the model's input, per data set (digits: 2 px at 32x32 is half a
pixel at 8x8)."""


FIGURES = ("curves.png", "filters.png", "feature_maps.png", "confusion_matrix.png")
"""The figures ``jcnn train`` writes into ``--out`` (unless ``--no-plots``)."""


SKIPPED_NAME = "skipped_images.txt"
"""The file in ``--out`` listing the unreadable images ``--dataset folder`` skipped, with the reason."""


FOLDER_DEFAULTS = {
    "val_dir": None,
    "test_fraction": 0.2,
    "split_seed": 0,
    "color": "rgb",
    "resize": "crop",
    "bad_images": "skip",
    "cache_mb": 512.0,
}
"""The defaults of the ``--dataset folder`` options; their parser default is None ("not given"), so
that they can be refused for the other data sets."""


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``jcnn train`` on its sub-parser ``p``: model and data, training, output."""
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
