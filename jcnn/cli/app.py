"""The ``jcnn`` argument parser and entry point, and ``jcnn summary``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from jcnn.cli.common import EXIT_STATUS, CLIError, _model_info, _one_line, _Parser, _positive_int, _version
from jcnn.cli.train_options import DEFAULTS, FIGURES, add_train_arguments

__all__ = ["build_parser", "main", "run_summary"]


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
    come from :mod:`jcnn.interop.verify`, which imports torch)."""
    from jcnn.cli import serve

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
    add_train_arguments(train)
    predict = sub.add_parser(
        "predict",
        help="classify image files with a trained run",
        formatter_class=raw,
        epilog=EXIT_STATUS,
        description="Classify image files with a run's checkpoint: the top-k classes and their softmax\n"
        "probabilities, one line per image (or --json). Images go through the run's own input\n"
        "pipeline (size, colour, resize mode, normalisation from its config).",
    )
    serve.add_predict_arguments(predict)
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
    serve.add_export_arguments(export)
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
    serve.add_inspect_arguments(inspect)
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
        from jcnn.interop import verify as verify_module

        verify_module.add_arguments(verify)
    else:
        verify.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


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
            from jcnn.cli.train import run_train

            return run_train(args)
        if args.command == "summary":
            return run_summary(args)
        if args.command in ("predict", "export", "inspect"):
            from jcnn.cli import serve

            run = {"predict": serve.run_predict, "export": serve.run_export, "inspect": serve.run_inspect}[args.command]
            return run(args)
        from jcnn.interop import verify

        return int(verify.run(args))
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (CLIError, ValueError, OSError, ImportError) as exc:
        if os.environ.get("JCNN_DEBUG"):
            raise
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return 1


def run_summary(args: argparse.Namespace) -> int:
    """``jcnn summary``: print the layer table of ``--model`` (or the zoo with ``--list``)."""
    from jcnn.inspection.summary import summary
    from jcnn.models import MODELS, get_model

    if args.list:
        for name, info in MODELS.items():
            dims = f"{info.input_size[0]}x{info.input_size[1]}x{info.in_channels}"
            print(f"{name:14s} {dims:11s} {info.description}")
        return 0
    info = _model_info(args.model)
    size = tuple(args.input_size) if args.input_size else tuple(info.input_size)
    channels = args.in_channels or info.in_channels
    model = get_model(args.model, num_classes=args.num_classes, in_channels=channels)
    summary(model, (1, *size, channels), print_fn=print)
    return 0
