"""``jcnn predict``, ``jcnn export`` and ``jcnn inspect``: a trained run's checkpoint put to use (see
:mod:`jcnn.cli`).

``predict`` prints the top-k classes of image files (text, or ``--json``), ``export`` writes the run as
a ``jax.export`` artifact plus its JSON description, ``inspect`` draws every stage of the forward pass on
one image; the work is done by :mod:`jcnn.serving.inference`, :mod:`jcnn.serving.export` and :mod:`jcnn.inspection.report`.
"""

from __future__ import annotations

import argparse
import json
import os

from jcnn.cli.common import CLIError, _add_quiet, _positive_int, _result, _say


def add_predict_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``jcnn predict`` on its sub-parser ``p``: image files, ``--checkpoint``, ``-k/--top-k``, ``--json``, ``--batch-size``, ``--quiet``."""
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, BMP, WebP)")
    p.add_argument(
        "--checkpoint", required=True, metavar="CKPT", help="a run's checkpoint.safetensors (written by jcnn train)"
    )
    p.add_argument(
        "-k",
        "--top-k",
        type=_positive_int,
        default=5,
        metavar="K",
        help="classes shown per image (at most the run's), most probable first; default %(default)s",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='print one JSON object: {"checkpoint", "predictions": [{"image", "top_k": '
        '[{"index", "class", "probability"}]}]}',
    )
    p.add_argument(
        "--batch-size", type=_positive_int, default=64, metavar="N", help="images per forward pass; default %(default)s"
    )
    _add_quiet(p)


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``jcnn export`` on its sub-parser ``p``: ``--checkpoint``, ``--out``, ``--platforms``, ``--quiet``."""
    p.add_argument(
        "--checkpoint", required=True, metavar="CKPT", help="a run's checkpoint.safetensors (written by jcnn train)"
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="the artifact to write (e.g. model.jax); its description goes to PATH.json",
    )
    p.add_argument(
        "--platforms",
        default="cpu",
        metavar="LIST",
        help="comma-separated platforms to lower for, of cpu, cuda, rocm, tpu (one artifact "
        "runs on each); default %(default)s",
    )
    _add_quiet(p)


def add_inspect_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``jcnn inspect`` on its sub-parser ``p``: one image, ``--checkpoint``, ``--out``, ``--channels``, ``--quiet``."""
    p.add_argument("image", metavar="IMAGE", help="one image file (PNG, JPEG, BMP, WebP)")
    p.add_argument(
        "--checkpoint", required=True, metavar="CKPT", help="a run's checkpoint.safetensors (written by jcnn train)"
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="where the figures and index.html go; default RUN/inspect/<image name> beside the checkpoint",
    )
    p.add_argument(
        "--channels",
        type=_positive_int,
        default=16,
        metavar="K",
        help="feature maps drawn per stage (the first K channels); default %(default)s",
    )
    _add_quiet(p)


def _checkpoint_file(path: str) -> str:
    if not os.path.isfile(path):
        raise CLIError(
            f"--checkpoint: no such file {path!r}; pass a run's checkpoint.safetensors "
            "(jcnn train --out RUN writes RUN/checkpoint.safetensors)"
        )
    return path


def run_predict(args: argparse.Namespace) -> int:
    """``jcnn predict``: the top-k classes of each image, as text lines or one JSON object on stdout."""
    from jcnn.serving.inference import classify, load_classifier

    checkpoint = _checkpoint_file(args.checkpoint)
    missing = [p for p in args.images if not os.path.isfile(p)]
    if missing:
        raise CLIError(f"no such image file(s): {', '.join(map(repr, missing))}")
    clf = load_classifier(checkpoint)
    rows = classify(clf, args.images, k=args.top_k, batch_size=args.batch_size)
    if args.json:
        _result(json.dumps({"checkpoint": args.checkpoint, "predictions": rows}, indent=2))
        return 0
    for row in rows:
        best = ", ".join(f"{t['class']} {t['probability']:.4f}" for t in row["top_k"])
        _result(f"{row['image']}: {best}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """``jcnn export``: the artifact and its JSON description; one line on stdout says what was written."""
    from jcnn.serving.export import check_platforms, export_checkpoint

    platforms = check_platforms(args.platforms)
    directory = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(directory):
        raise CLIError(f"--out: directory {directory!r} does not exist")
    _say(args.quiet)(f"jcnn export: {args.checkpoint} -> {args.out} for {', '.join(platforms)}")
    out, sidecar, info = export_checkpoint(_checkpoint_file(args.checkpoint), args.out, platforms=platforms)
    shape = "x".join(str(d) for d in info["input"]["shape"])
    _result(
        f"jcnn export: wrote {out} ({info['bytes']:,} bytes; float32[{shape}] pixels in [0, 1] -> "
        f"{len(info['class_names'])} logits; {', '.join(info['platforms'])}) and {sidecar}"
    )
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    """``jcnn inspect``: the stage figures and index.html; the page's path on stdout."""
    from jcnn.inspection.report import forward_report
    from jcnn.serving.inference import load_classifier

    checkpoint = _checkpoint_file(args.checkpoint)
    if not os.path.isfile(args.image):
        raise CLIError(f"no such image file {args.image!r}")
    out = args.out or os.path.join(
        os.path.dirname(os.path.abspath(checkpoint)), "inspect", os.path.splitext(os.path.basename(args.image))[0]
    )
    if os.path.exists(out) and not os.path.isdir(out):
        raise CLIError(f"--out: {out!r} exists and is not a directory")
    _say(args.quiet)(f"jcnn inspect: {args.image} through {checkpoint} -> {out}")
    page = forward_report(load_classifier(checkpoint), args.image, out, channels=args.channels)
    _result(page)
    return 0
