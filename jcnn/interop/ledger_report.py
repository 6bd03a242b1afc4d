"""The training parity ledger as text, JSON and a figure, and ``jcnn verify --train MODEL``.

:func:`format_ledger` prints one row per layer path (the worst relative error of each quantity over the
steps, and the first step over tolerance), the losses and the verdict; :func:`ledger_json` is the
JSON-ready report (every entry, the manifest, the verdict); :func:`run_cli` is the command, which also
draws :func:`jcnn.training.plots.plot_ledger` beside ``--json``.
"""

from __future__ import annotations

import math
from typing import Any

import jax

from jcnn.interop.ledger import (
    CONTROL_FACTOR,
    DEFAULT_LR,
    OPTIMIZERS,
    QUANTITIES,
    TOLERANCES,
    Entry,
    LedgerResult,
    _worse,
    ledger,
)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _entry_json(e: Entry) -> dict[str, Any]:
    return {
        "step": e.step,
        "path": e.path,
        "quantity": e.quantity,
        "tensor": e.tensor,
        "max_abs_err": _finite(e.max_abs),
        "max_rel_err": _finite(e.max_rel),
        "index": list(e.index),
        "jcnn": _finite(e.jcnn),
        "torch": _finite(e.torch),
        "control_rel_err": _finite(e.control),
        "passed": e.passed,
    }


def ledger_json(result: LedgerResult) -> dict[str, Any]:
    """The result as JSON-ready data (non-finite numbers as ``null``)."""
    verdict = result.verdict
    return {
        "passed": result.passed,
        "model": result.model,
        "config": result.config,
        "tolerance": result.tolerance,
        "manifest": result.manifest,
        "warnings": result.warnings,
        "verdict": None if verdict is None else {**_entry_json(verdict), "tolerance": result.tolerance},
        "losses": [{"step": i + 1, "jcnn": _finite(a), "torch": _finite(b)} for i, (a, b) in enumerate(result.losses)],
        "unmatched": result.unmatched,
        "seconds": round(result.seconds, 3),
        "entries": [_entry_json(e) for e in result.entries],
    }


def describe(entry: Entry, tolerance: float) -> str:
    """One line: where an entry is and both values at its worst element."""
    where = f"{entry.tensor}[{', '.join(map(str, entry.index))}]" if entry.index else entry.tensor
    return (
        f"step {entry.step}, layer {entry.path or '(model)'!r}, {entry.quantity} ({where}): "
        f"jcnn {entry.jcnn:.10g} vs torch {entry.torch:.10g} (abs err {entry.max_abs:.2e}, rel err "
        f"{entry.max_rel:.2e} > tolerance {tolerance:.0e})"
    )


def format_ledger(result: LedgerResult) -> str:
    """The ledger as text: the run, one row per layer path (the worst relative error of each quantity over
    the steps and the first step over tolerance), the losses, and the verdict."""
    c = result.config
    opt = ", ".join(f"{k} {v}" for k, v in c["optimizer"].items() if k != "name")
    lines = [
        f"training parity ledger: {result.model}, {c['steps']} steps, input {tuple(c['input_shape'])}, "
        f"{c['optimizer']['name']} ({opt}), {c['loss']}, {c['dtype']}, tolerance {result.tolerance:.0e}"
        + (f" or {CONTROL_FACTOR:g}x the torch control's error" if c.get("control") else ""),
        "",
    ]
    cols = [q for q in QUANTITIES if q != "loss"]
    rows: dict[str, dict[str, Any]] = {}
    for e in result.entries:
        if e.quantity == "loss":
            continue
        row = rows.setdefault(e.path, {})
        if e.quantity not in row or _worse(e.max_rel, row[e.quantity]):
            row[e.quantity] = e.max_rel
        if not e.passed and "first" not in row:
            row["first"] = f"step {e.step} {e.quantity}"
    head = ["layer path"] + [q.replace("_", " ") for q in cols] + ["first over tolerance"]
    table = [
        [p or "(model)"] + [f"{r[q]:.1e}" if q in r else "-" for q in cols] + [r.get("first", "-")]
        for p, r in rows.items()
    ]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(head)]
    lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    lines.append("-" * len(lines[-1]))
    lines += ["  ".join(v.ljust(w) for v, w in zip(t, widths)).rstrip() for t in table]
    lines += ["", "step  loss (jcnn)          loss (torch)         rel err"]
    for i, (a, b) in enumerate(result.losses):
        lines.append(f"{i + 1:<4}  {a:<19.15g} {b:<19.15g}  {abs(a - b) / max(abs(b), 1e-300):.1e}")
    if result.unmatched.get("jcnn_only") or result.unmatched.get("torch_only"):
        lines += [
            "",
            f"compared on one side only: jcnn {result.unmatched.get('jcnn_only') or '-'}, "
            f"torch {result.unmatched.get('torch_only') or '-'}",
        ]
    verdict = result.verdict
    lines.append("")
    if verdict is None:
        lines.append(
            f"PARITY: every quantity of every layer within {result.tolerance:.0e} over {c['steps']} steps "
            f"({result.seconds:.1f} s)"
        )
    else:
        lines.append("DIVERGENCE at " + describe(verdict, result.tolerance))
    return "\n".join(lines)


def add_arguments(parser: Any) -> None:
    """The ``--train`` options of ``jcnn verify``."""
    g = parser.add_argument_group("training parity ledger (--train)")
    g.add_argument(
        "--train",
        metavar="MODEL",
        help="train zoo MODEL and its torch twin side by side and compare every layer at every step",
    )
    g.add_argument("--steps", type=int, default=5, metavar="N", help="training steps (default 5)")
    g.add_argument(
        "--batch",
        type=int,
        default=8,
        metavar="B",
        help="batch size (default 8: train-mode BatchNorm over few values amplifies rounding)",
    )
    g.add_argument("--size", type=int, metavar="S", help="image side (default the model's, at most 32)")
    g.add_argument(
        "--optimizer",
        default="sgd",
        choices=list(OPTIMIZERS),
        metavar="NAME",
        help=f"one of {', '.join(OPTIMIZERS)} (default sgd with momentum 0.9)",
    )
    g.add_argument(
        "--lr",
        type=float,
        metavar="LR",
        help="learning rate (default: " + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + ")",
    )
    g.add_argument("--momentum", type=float, metavar="M", help="momentum (sgd, rmsprop)")
    g.add_argument("--weight-decay", type=float, metavar="WD", help="weight decay")
    g.add_argument(
        "--dtype", default="float32", choices=sorted(TOLERANCES), help="compute dtype of both sides (default float32)"
    )
    g.add_argument(
        "--control",
        action="store_true",
        help="also train a torch copy one ulp away and pass errors within "
        f"{CONTROL_FACTOR:g}x of its own (long runs, where training amplifies rounding)",
    )
    g.add_argument(
        "--tolerance",
        type=float,
        metavar="T",
        help="relative tolerance (default " + ", ".join(f"{k} {v:g}" for k, v in TOLERANCES.items()) + ")",
    )


def run_cli(args: Any) -> int:
    """``jcnn verify --train MODEL``: run the ledger, print it (the manifest first), write ``--json`` and the
    figure beside it (same name, ``.png``); 0 at parity, 1 at a divergence."""
    import json
    import os

    from jcnn.interop.manifest import format_manifest

    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    hyper = {k: v for k, v in (("momentum", args.momentum), ("weight_decay", args.weight_decay)) if v is not None}
    for flag, value in (("--steps", args.steps), ("--batch", args.batch), ("--size", args.size)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    result = ledger(
        args.train,
        steps=args.steps,
        batch=args.batch,
        size=args.size,
        optimizer=args.optimizer,
        lr=args.lr,
        optimizer_kwargs=hyper,
        dtype=args.dtype,
        tolerance=args.tolerance,
        seed=args.seed,
        control=args.control,
    )
    print(format_manifest(result.manifest, result.warnings), end="\n\n")
    print(format_ledger(result))
    if args.json:
        report = ledger_json(result)
        figure = os.path.splitext(args.json)[0] + ".png"
        try:
            from jcnn.training.plots import plot_ledger

            report["figure"] = plot_ledger(report, figure)
        except ImportError as err:  # matplotlib is the train extra
            print(f"no figure ({err}; pip install matplotlib)")
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
        print(f"wrote {args.json}" + (f" and {report['figure']}" if "figure" in report else ""))
    return 0 if result.passed else 1


__all__ = ["format_ledger", "ledger_json", "describe", "add_arguments", "run_cli"]
