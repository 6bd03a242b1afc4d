"""Constructor argument checks shared by the conv and pooling layers (errors name the layer)."""

from __future__ import annotations

from typing import Any


def check_int(name: str, what: str, value: Any, minimum: int) -> None:
    """An int (not a bool) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: {what} must be an int >= {minimum}, got {value!r}")


def check_int_or_seq(name: str, what: str, value: Any, minimum: int) -> None:
    """An int or a sequence of ints, each ``>= minimum`` (the length is checked at init)."""
    items = [value] if isinstance(value, int) else value
    try:
        ok = all(not isinstance(v, bool) and isinstance(v, int) and v >= minimum for v in items)
    except TypeError:
        ok = False
    if isinstance(value, bool) or isinstance(value, str) or not ok:
        raise ValueError(f"{name}: {what} must be an int >= {minimum} or a sequence of them, got {value!r}")


def check_padding(name: str, padding: Any, strings: bool) -> None:
    """Non-negative ints, ``(low, high)`` pairs, or (when ``strings``) ``"SAME"``/``"VALID"``."""
    if isinstance(padding, str):
        if strings and padding.upper() in ("SAME", "VALID"):
            return
        allowed = "'SAME', 'VALID', " if strings else ""
        raise ValueError(
            f"{name}: unknown padding {padding!r}; expected {allowed}an int, one int per "
            "spatial dim or (low, high) pairs"
        )
    flat = [padding] if isinstance(padding, int) else padding
    try:
        flat = [p for item in flat for p in ([item] if isinstance(item, int) else item)]
    except TypeError:
        raise ValueError(f"{name}: padding must be an int, a sequence or 'SAME'/'VALID', got {padding!r}") from None
    if any(isinstance(p, bool) or not isinstance(p, int) or p < 0 for p in flat):
        raise ValueError(f"{name}: padding must be non-negative ints, got {padding!r}")
