"""``jcnn verify``: every op, layer, loss, optimizer and zoo model against PyTorch (CPU, float32).

Runs the checks of :mod:`jcnn.interop.checks` and reports, for each, the worst ``max |a − e|`` and
normwise ``max |a − e| / max |e|`` over its pairs. ``python -m jcnn.interop.verify`` or ``jcnn verify``
prints the numerics manifest (:mod:`jcnn.interop.manifest`) and the table and exits 1 if anything fails;
``jcnn verify --train MODEL`` runs the training parity ledger (:mod:`jcnn.interop.ledger`) instead. This
module imports torch (a test dependency).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import sys
import time
from collections.abc import Sequence
from typing import NamedTuple

import jax
import numpy as np
import torch

from jcnn.interop.checks import GROUPS, Check, all_checks
from jcnn.interop.manifest import format_manifest, numerics_manifest, numerics_warnings

# The entry points (jcnn verify, python -m jcnn.interop.verify).
__all__ = ["Check", "Result", "all_checks", "select", "run_check", "format_table", "add_arguments", "run", "main"]


class Result(NamedTuple):
    """One check's outcome: the worst absolute and relative errors, the tolerance, pass/fail, time, error."""

    component: str
    config: str
    max_abs: float
    max_rel: float
    tolerance: float
    passed: bool
    seconds: float
    error: str = ""


def select(
    checks: Sequence[Check], only: Sequence[str] = (), skip: Sequence[str] = (), full: bool = False
) -> list[Check]:
    """Checks whose component matches a pattern of ``only`` (glob, or a prefix such as ``ops`` or
    ``ops.conv``; all when empty) and none of ``skip``; slow ones only with ``full`` or when named."""

    def match(c: Check, patterns: Sequence[str]) -> bool:
        return any(
            fnmatch.fnmatchcase(c.component, p) or c.component == p or c.component.startswith(p + ".") for p in patterns
        )

    chosen = [c for c in checks if (not only or match(c, only)) and not match(c, skip)]
    return [c for c in chosen if full or not c.slow or (only and match(c, [p for p in only if p not in GROUPS]))]


def _worst(a: float, b: float) -> float:
    """``max(a, b)``, except that a NaN or inf on either side wins (``max`` would drop a NaN)."""
    if not math.isfinite(a):
        return a
    return b if not math.isfinite(b) else max(a, b)


def run_check(check: Check, seed: int = 0) -> Result:
    """Run one check; an exception is a failure whose message goes in ``error``."""
    start = time.perf_counter()
    try:
        with jax.default_matmul_precision("highest"):
            pairs = check.run(np.random.default_rng(seed))
        max_abs = max_rel = 0.0
        for actual, expected in pairs:
            a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
            if a.shape != e.shape:
                raise ValueError(f"shape {a.shape} differs from torch's {e.shape}")
            if not e.size:
                continue
            err = float(np.max(np.abs(a - e)))
            scale = float(np.max(np.abs(e)))
            rel = err / scale if scale > 0 else err
            max_abs, max_rel = _worst(max_abs, err), _worst(max_rel, rel)
        passed = bool(max_rel <= check.tolerance)  # NaN fails
        return Result(
            check.component, check.config, max_abs, max_rel, check.tolerance, passed, time.perf_counter() - start
        )
    except Exception as err:  # noqa: BLE001 - a crash is a failed check, reported in the table
        return Result(
            check.component,
            check.config,
            math.nan,
            math.nan,
            check.tolerance,
            False,
            time.perf_counter() - start,
            f"{type(err).__name__}: {err}",
        )


def format_table(results: Sequence[Result]) -> str:
    """The results as a plain-text table, one row per check, failures marked ``FAIL``."""
    head = ("component", "configuration", "max abs err", "max rel err", "tolerance", "result")
    rows = [
        (
            r.component,
            r.config,
            f"{r.max_abs:.2e}",
            f"{r.max_rel:.2e}",
            f"{r.tolerance:.0e}",
            "pass" if r.passed else "FAIL" + (f" ({r.error})" if r.error else ""),
        )
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head[:-1])]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head[:-1], widths)) + "  " + head[-1]]
    lines.append("-" * len(lines[0]))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row[:-1], widths)) + "  " + row[-1] for row in rows]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``jcnn verify``."""
    parser.add_argument(
        "--only",
        nargs="+",
        default=[],
        metavar="PATTERN",
        help="run only these components: a group (ops, layers, losses, optim, models), a "
        "component (ops.conv, models.resnet18) or a glob ('optim.ada*')",
    )
    parser.add_argument("--skip", nargs="+", default=[], metavar="PATTERN", help="leave these components out")
    parser.add_argument(
        "--full",
        action="store_true",
        help="also run the slow checks (vgg11, vgg13(_bn), vgg16(_bn), resnet34, resnet50)",
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="also write the table as JSON to PATH (with --train: the whole ledger, and its figure beside it as .png)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    parser.add_argument("--list", action="store_true", help="list the selected checks and exit")
    from jcnn.interop import ledger_report

    ledger_report.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Run the selected checks, print the numerics manifest and the table (and write ``--json``); 0 if all
    pass, else 1. With ``--train MODEL``, the training parity ledger instead (:mod:`jcnn.interop.ledger`)."""
    if getattr(args, "train", None):
        if args.only or args.skip or args.full or args.list:
            raise ValueError("--train runs the training ledger; --only/--skip/--full/--list select component checks")
        from jcnn.interop.ledger_report import run_cli

        return run_cli(args)
    checks = select(all_checks(), args.only, args.skip, args.full)
    if args.list:
        for c in checks:
            print(f"{c.component}  [{c.config}]{'  (slow)' if c.slow else ''}")
        return 0
    if not checks:
        print(f"jcnn verify: no check matches --only {' '.join(args.only)}", file=sys.stderr)
        return 1
    manifest = numerics_manifest()
    print(format_manifest(manifest, numerics_warnings(manifest, "float32")), end="\n\n")
    results = [run_check(c, args.seed) for c in checks]
    print(format_table(results))
    failed = [r for r in results if not r.passed]
    print(
        f"\n{len(results) - len(failed)} passed, {len(failed)} failed "
        f"({sum(r.seconds for r in results):.1f} s, torch {torch.__version__}, jax {jax.__version__})"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "passed": not failed,
                    "manifest": manifest,
                    "results": [
                        {
                            "component": r.component,
                            "configuration": r.config,
                            "max_abs_err": _finite(r.max_abs),
                            "max_rel_err": _finite(r.max_rel),
                            "tolerance": r.tolerance,
                            "passed": r.passed,
                            "seconds": round(r.seconds, 3),
                            "error": r.error,
                        }
                        for r in results
                    ],
                },
                fh,
                indent=2,
            )
    return 1 if failed else 0


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m jcnn.interop.verify [options]``."""
    parser = argparse.ArgumentParser(prog="jcnn verify", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
