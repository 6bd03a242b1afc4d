"""Where the time of a compiled JAX program goes on the CPU backend: per-thunk times from XLA's profiler,
each thunk (one fusion, convolution, dot, copy, ...) classified from the optimized HLO.

    from benchmarks.xla_profile import profile_compiled, categorize
    per_op = profile_compiled(compiled, args, steps=3)   # {instruction name: ms per call}
    table = categorize(compiled.as_text(), per_op)       # {category: ms per call}

The CPU runtime records one trace event per thunk, named after the entry instruction it runs, on the
thread that ran it (independent thunks run concurrently on the pool's threads, so per-category times add up
to more than the wall time when the runtime overlaps them). Categories:

- ``conv fwd`` / ``conv d_input`` / ``conv d_kernel``: convolutions (XLA's, in or out of a YNNPACK fusion)
  and jcnn's named-scope lowerings, by role; the role comes from the ``op_name`` metadata (``transpose(``
  marks the backward pass) and, for backward convolutions, from whether the result has the kernel's shape;
- ``dot fwd`` / ``dot bwd``: matmuls not inside a conv role (dense layers, im2col lowerings);
- ``max-pool bwd (select_and_scatter)``, ``pool fwd (reduce_window)``;
- ``reduce`` (BatchNorm statistics and its backward sums, loss), ``elementwise`` (loop fusions without a
  reduction), ``copy/transpose``, ``other``.
"""

from __future__ import annotations

import collections
import glob
import re
import tempfile
from collections.abc import Callable, Iterable
from typing import Any

import jax

_INSTR = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = (.+?) ([a-z][\w\-]*)\((.*)$")
_COMP = re.compile(r"^%?([\w.\-]+) \(.*\) -> .* \{$|^ENTRY %?([\w.\-]+) ")


def profile_compiled(run: Callable[[], Any], steps: int = 3) -> dict[str, float]:
    """Run ``run()`` (one blocking call of a compiled program) ``steps`` times under ``jax.profiler.trace``;
    return ``{thunk name: milliseconds per call}`` summed over threads."""
    run()
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp):
            for _ in range(steps):
                run()
        path = glob.glob(f"{tmp}/**/*.xplane.pb", recursive=True)[0]
        data = jax.profiler.ProfileData.from_file(path)
        total: collections.Counter = collections.Counter()
        for plane in data.planes:
            if plane.name != "/host:CPU":
                continue
            for line in plane.lines:
                if not line.name.startswith("tf_XLA"):
                    continue
                for event in line.events:
                    name = event.name
                    if name.startswith(("end: ", "ThunkExecutor", "ThreadpoolListener", "SlinkyThreadPool")):
                        continue
                    total[name] += event.duration_ns
    return {k: v / 1e6 / steps for k, v in total.items()}


def parse_hlo(text: str) -> tuple[dict[str, list[str]], dict[str, dict]]:
    """``(computations, instructions)``: the body lines of every computation, and per instruction that runs
    as a thunk (those of the entry computation and of loop bodies, not of fused computations or reducers)
    its ``opcode``, result ``shape``, ``line`` and ``calls`` (the fused computation, if any)."""
    comps: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        m = _COMP.match(line)
        if m:
            current = m.group(1) or m.group(2)
            comps[current] = []
        elif current is not None and line.strip() != "}":
            comps[current].append(line)
    inner = {
        c for lines in comps.values() for line in lines for c in re.findall(r"(?:calls|to_apply)=%?([\w.\-]+)", line)
    }
    # A loop body's instructions carry no metadata of their own: they inherit the while's op_name.
    inherited: dict[str, str] = {}
    for lines in comps.values():
        for line in lines:
            body = re.search(r"body=%?([\w.\-]+)", line)
            scope = re.search(r'op_name="([^"]*)"', line)
            if body and scope:
                inherited[body.group(1)] = scope.group(1)
    entry: dict[str, dict] = {}
    for name, lines in comps.items():
        if name in inner:
            continue
        for line in lines:
            im = _INSTR.match(line)
            if im:
                calls = re.search(r"calls=%?([\w.\-]+)", line)
                if name in inherited and "op_name=" not in line:
                    line = f'{line}, metadata={{op_name="{inherited[name]}"}}'
                entry[im.group(1)] = {
                    "opcode": im.group(3),
                    "shape": im.group(2),
                    "line": line,
                    "calls": calls.group(1) if calls else None,
                }
    return comps, entry


def _dims(shape: str) -> tuple[int, ...]:
    m = re.search(r"\[([\d,]*)\]", shape)
    return tuple(int(d) for d in m.group(1).split(",") if d) if m else ()


def _body(name: str, comps: dict[str, list[str]], seen: set | None = None) -> list[str]:
    """The lines of computation ``name`` and of every computation it calls (nested fusions)."""
    seen = set() if seen is None else seen
    if name in seen or name not in comps:
        return []
    seen.add(name)
    out = list(comps[name])
    for line in comps[name]:
        for callee in re.findall(r"(?:calls|to_apply)=%?([\w.\-]+)", line):
            out += _body(callee, comps, seen)
    return out


def classify(info: dict, comps: dict[str, list[str]], kernel_shapes: set[tuple[int, ...]]) -> str:
    """The category of one entry instruction (see the module docstring)."""
    lines = [info["line"]] + (_body(info["calls"], comps) if info["calls"] else [])
    text = "\n".join(lines)
    scope = re.findall(r'op_name="([^"]*)"', text)
    scoped = " ".join(scope)
    for role in ("d_kernel", "d_input", "fwd"):
        if f"jcnn_conv_{role}" in scoped:
            return f"conv {role}"
    if " convolution(" in text:
        backward = any("transpose(" in s for s in scope if "conv" in s) or not scope
        if not backward:
            return "conv fwd"
        out = tuple(sorted(_dims(info["shape"])))
        return "conv d_kernel" if out in kernel_shapes else "conv d_input"
    if " select-and-scatter(" in text:
        return "max-pool bwd (select_and_scatter)"
    if " reduce-window(" in text:
        return "pool fwd (reduce_window)"
    if " dot(" in text:
        return "dot bwd" if "transpose(" in scoped else "dot fwd"
    if " reduce(" in text:
        return "reduce"
    if info["opcode"] in ("copy", "transpose") or re.search(
        r"(transpose|copy)[\w.]*_fusion|wrapped_copy|"
        r"wrapped_transpose",
        info["line"],
    ):
        return "copy/transpose"
    if info["opcode"] == "fusion" or info["opcode"] in (
        "add",
        "multiply",
        "select",
        "maximum",
        "pad",
        "slice",
        "concatenate",
        "broadcast",
    ):
        if re.search(r" (pad|slice|concatenate|dynamic-slice|dynamic-update-slice)\(", text) and not re.search(
            r" (add|multiply|maximum|select|subtract|divide)\(", text
        ):
            return "copy/transpose"
        return "elementwise"
    return "other"


def categorize(
    hlo_text: str, per_op: dict[str, float], kernel_shapes: Iterable[tuple[int, ...]] = ()
) -> dict[str, float]:
    """Sum ``per_op`` (thunk name → ms) by :func:`classify` category. ``kernel_shapes``: the shapes of the
    program's conv kernels, which tell a kernel-gradient convolution from an input-gradient one."""
    comps, entry = parse_hlo(hlo_text)
    shapes = {tuple(sorted(s)) for s in kernel_shapes}
    out: collections.Counter = collections.Counter()
    for name, ms in per_op.items():
        info = entry.get(name)
        if info is not None and info["opcode"] in _CONTAINERS:
            continue  # a loop or call: its body's thunks have events of their own
        out["other" if info is None else classify(info, comps, shapes)] += ms
    return dict(out)


_CONTAINERS = ("while", "call", "conditional")
