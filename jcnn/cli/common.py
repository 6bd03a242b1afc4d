"""What every ``jcnn`` command shares: the exit statuses, one-line errors, argument types, and where
output goes (results on stdout, progress and logs on stderr)."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any, NoReturn

__all__ = ["CLIError", "EXIT_STATUS"]

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

    def error(self, message: str) -> NoReturn:
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


def _version() -> str:
    from jcnn import __version__

    return __version__


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _say(quiet: bool) -> Any:
    """``log(msg)`` on stderr unless ``quiet`` (progress and logs; results use :func:`_result`)."""
    return (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))


def _result(msg: str) -> None:
    print(msg, flush=True)


def _warn(prog: str, msg: str) -> None:
    print(f"{prog}: warning: {msg}", file=sys.stderr, flush=True)


def _model_info(name: str) -> Any:
    from jcnn.models import MODELS

    if name not in MODELS:
        raise CLIError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}")
    return MODELS[name]
