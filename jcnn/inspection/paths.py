"""Dotted paths into params/state pytrees and glob patterns over them: select, replace, mask.

A leaf's path is its dict keys (and sequence indices) joined by dots, the names that checkpoints and
``jcnn.interop.torch`` use: ``{"layer1": {"0": {"conv1": {"kernel": …}}}}`` → ``"layer1.0.conv1.kernel"``.
A layer's path is the same without the leaf name (``"layer1.0.conv1"``).

Patterns are globs over path components: ``*`` matches within one component (``"layer*.0.bn1"``),
``**`` any number of whole components (``"**.bias"``: every bias), ``?`` one character, ``[…]`` a set.
Over params (``select``, ``mask``, ``replace``) a pattern matches a leaf when it matches its whole path or
a prefix of whole components (``"layer4"`` selects every leaf under ``layer4``); over layer paths
(:func:`matcher` with ``prefix=False``, used by ``jcnn.intermediates``) it must match the whole path.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Union

import jax

Patterns = Union[str, Sequence[str]]


def _component_regex(component: str) -> str:
    out = []
    i = 0
    while i < len(component):
        c = component[i]
        if c == "*":
            out.append(r"[^.]*")
        elif c == "?":
            out.append(r"[^.]")
        elif c == "[":
            end = component.find("]", i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = component[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=512)
def _compile(pattern: str, prefix: bool = True) -> re.Pattern[str]:
    if (
        not isinstance(pattern, str)
        or not pattern
        or pattern.startswith(".")
        or pattern.endswith(".")
        or ".." in pattern
    ):
        raise ValueError(
            f"paths: a pattern must be a non-empty dotted glob such as 'layer*.0.bn1' or '**.bias', got {pattern!r}"
        )
    parts = []
    for component in pattern.split("."):
        if component == "**":
            parts.append(r"(?:[^.]+(?:\.[^.]+)*)?")
        else:
            parts.append(_component_regex(component))
    regex = r"\.".join(parts)
    # '**' may match nothing: drop the dot that would then stand alone
    regex = regex.replace(r"(?:[^.]+(?:\.[^.]+)*)?\.", r"(?:[^.]+(?:\.[^.]+)*\.)?")
    return re.compile(rf"{regex}(?:\..*)?" if prefix else regex)


def as_patterns(patterns: Patterns, who: str) -> tuple[str, ...]:
    """One pattern or a sequence of them, as a tuple of strings (checked)."""
    if isinstance(patterns, str):
        patterns = (patterns,)
    try:
        result = tuple(patterns)
    except TypeError:
        raise TypeError(f"{who}: patterns must be a string or a sequence of strings, got {patterns!r}") from None
    if not result or not all(isinstance(p, str) for p in result):
        raise TypeError(f"{who}: patterns must be a string or a non-empty sequence of strings, got {patterns!r}")
    for p in result:
        _compile(p)
    return result


def matches(patterns: Patterns, path: str) -> bool:
    """True when one of ``patterns`` matches ``path`` (whole path or a prefix of whole components)."""
    return any(_compile(p).fullmatch(path) is not None for p in as_patterns(patterns, "matches"))


def _key_text(entry: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def path_of(keypath: Sequence[Any]) -> str:
    """The dotted path of a ``jax.tree_util`` key path."""
    return ".".join(_key_text(k) for k in keypath)


def leaves(tree: Any) -> dict[str, Any]:
    """``{dotted path: leaf}`` of every leaf, in ``jax.tree_util`` order."""
    return {path_of(kp): leaf for kp, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _check_used(who: str, patterns: tuple[str, ...], paths: Iterable[str]) -> None:
    paths = list(paths)
    unused = [p for p in patterns if not any(_compile(p).fullmatch(path) for path in paths)]
    if unused:
        shown = ", ".join(paths[:12]) + (", …" if len(paths) > 12 else "")
        raise ValueError(f"{who}: pattern(s) {unused} match no path; the paths are: {shown}")


def select(tree: Any, patterns: Patterns, *, strict: bool = True) -> dict[str, Any]:
    """``{path: leaf}`` for the leaves whose path matches one of ``patterns``; with ``strict`` a pattern that
    matches nothing is a ``ValueError`` listing the paths (a typo is not an empty selection)."""
    pats = as_patterns(patterns, "select")
    flat = leaves(tree)
    if strict:
        _check_used("select", pats, flat)
    return {p: v for p, v in flat.items() if any(_compile(q).fullmatch(p) for q in pats)}


def mask(tree: Any, patterns: Patterns, *, strict: bool = True) -> Any:
    """A bool pytree shaped like ``tree``: ``True`` where the leaf's path matches one of ``patterns``."""
    pats = as_patterns(patterns, "mask")
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    paths = [path_of(kp) for kp, _ in flat]
    if strict:
        _check_used("mask", pats, paths)
    return jax.tree_util.tree_unflatten(treedef, [any(_compile(q).fullmatch(p) for q in pats) for p in paths])


def replace(tree: Any, patterns: Patterns, value: Any, *, strict: bool = True) -> Any:
    """A copy of ``tree`` whose leaves matching ``patterns`` are replaced: by ``value(path, leaf)`` when
    ``value`` is callable, else by ``value`` itself (which must have the leaf's shape)."""
    pats = as_patterns(patterns, "replace")
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    paths = [path_of(kp) for kp, _ in flat]
    if strict:
        _check_used("replace", pats, paths)
    out = []
    for path, (_, leaf) in zip(paths, flat):
        if not any(_compile(q).fullmatch(path) for q in pats):
            out.append(leaf)
            continue
        new = value(path, leaf) if callable(value) else value
        if hasattr(leaf, "shape") and tuple(getattr(new, "shape", ())) != tuple(leaf.shape):
            raise ValueError(
                f"replace: the new value for {path!r} has shape {tuple(getattr(new, 'shape', ()))}, "
                f"expected {tuple(leaf.shape)}"
            )
        out.append(new)
    return jax.tree_util.tree_unflatten(treedef, out)


def matcher(patterns: Patterns | None, *, prefix: bool = True) -> Callable[[str], bool]:
    """A predicate over paths for ``patterns`` (``None`` matches every path); ``prefix=False`` matches whole
    paths only."""
    if patterns is None:
        return lambda path: True
    pats = as_patterns(patterns, "matcher")
    regexes = [_compile(p, prefix) for p in pats]
    return lambda path: any(r.fullmatch(path) is not None for r in regexes)


def unused_patterns(patterns: Patterns, paths: Iterable[str], *, prefix: bool = True) -> list[str]:
    """The patterns that match none of ``paths``."""
    paths = list(paths)
    return [
        p
        for p in as_patterns(patterns, "unused_patterns")
        if not any(_compile(p, prefix).fullmatch(path) for path in paths)
    ]


__all__ = ["leaves", "select", "mask", "replace", "matches", "matcher", "path_of"]
