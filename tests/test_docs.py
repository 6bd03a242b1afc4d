"""The documentation stands on its own.

- Every public name of jcnn (``jcnn.__all__``, each public module's ``__all__``, or, without one, the names
  it defines without a leading underscore) has a docstring, as griffe reads it (the source, not the
  runtime ``__doc__``), and is rendered by a ``::: module`` directive of the API reference
  (``docs/reference/*.md``), which ``make docs`` builds with ``mkdocs build --strict``.
- The ``python`` code blocks of every page run as written (one namespace per page, in order, in an empty
  temporary directory that the page fills itself; a block right after ``<!-- no-run -->`` is shown, not
  run).
- Nothing in the package, the README or the docs points outside the repository.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import pathlib
import re
import types
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "jcnn"
DOCS = ROOT / "docs"
REFERENCE = DOCS / "reference"
DIRECTIVE = re.compile(r"^::: *([\w.]+) *$")
MEMBERS = re.compile(r"^\s+members:\s*(.*?)\s*$")
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
NO_RUN = "<!-- no-run -->"


# --------------------------------------------------------------------------------------- what is public


@functools.cache
def public_modules() -> dict[str, pathlib.Path]:
    """``{module name: source path}`` of every module without a leading underscore in its dotted name."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if not any(p.startswith("_") for p in parts):
            found[".".join(parts)] = path
    return found


@functools.cache
def syntax(module: str) -> ast.Module:
    return ast.parse(public_modules()[module].read_text(encoding="utf-8"))


def _top_level(module: str) -> dict[str, tuple[ast.AST, str | None]]:
    """``{name: (node, docstring)}`` for the module's top-level defs, classes and assignments (an
    assignment's docstring is the string literal right after it, as griffe reads it)."""
    body = syntax(module).body
    out: dict[str, tuple[ast.AST, str | None]] = {}
    for i, node in enumerate(body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out[node.name] = (node, ast.get_docstring(node))
            continue
        if isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            names = [node.target.id]
        else:
            continue
        nxt = body[i + 1] if i + 1 < len(body) else None
        doc = (
            nxt.value.value
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)
            else None
        )
        for name in names:
            out[name] = (node, doc)
    return out


top_level = functools.lru_cache(maxsize=None)(_top_level)


def public_names(module: str) -> list[str]:
    """``__all__`` when the module has one; else its own public top-level names (a package without
    ``__all__``: every public attribute that is not a module, wherever it is defined)."""
    mod = importlib.import_module(module)
    if hasattr(mod, "__all__"):
        return list(mod.__all__)
    if public_modules()[module].name == "__init__.py":
        return [
            n
            for n, v in vars(mod).items()
            if not n.startswith("_") and not isinstance(v, types.ModuleType) and type(v).__module__ != "__future__"
        ]
    return [n for n in top_level(module) if not n.startswith("_")]


def home(module: str, name: str) -> tuple[str, str] | None:
    """Where ``module.name`` is defined: ``(defining module, name there)``; ``None`` for a module or an
    object from outside jcnn."""
    obj = getattr(importlib.import_module(module), name)
    if isinstance(obj, types.ModuleType):
        return None
    if inspect.isfunction(obj) or inspect.isclass(obj):
        where = getattr(obj, "__module__", "") or ""
        if where in public_modules() and obj.__qualname__ in top_level(where):
            return where, obj.__qualname__
        if not where.startswith("jcnn"):
            return None
    if name in top_level(module):
        return module, name
    for other in public_modules():  # data re-exported by a package: the module that assigns it
        if name in top_level(other) and getattr(importlib.import_module(other), name, None) is obj:
            return other, name
    raise AssertionError(f"{module}.{name}: cannot find where it is defined")


def every_public_name() -> dict[tuple[str, str], str]:
    """``{(defining module, name): the first public spelling}`` over all public modules."""
    found: dict[tuple[str, str], str] = {}
    for module in public_modules():
        for name in public_names(module):
            where = home(module, name)
            if where is not None:
                found.setdefault(where, f"{module}.{name}")
    return found


def _inherited_from_outside(cls: type, attr: str) -> bool:
    """True when ``attr`` overrides something of a base class from outside jcnn (``nn.Module.forward``):
    that base documents it."""
    return any(hasattr(base, attr) for base in cls.__mro__[1:] if not base.__module__.startswith("jcnn"))


# --------------------------------------------------------------------------------------- the reference


@functools.cache
def directives() -> dict[str, Any]:
    """``{target: members}`` of every ``::: target`` in the reference pages; members is ``None`` (all the
    public members), ``False`` (none) or a list of names."""
    found: dict[str, Any] = {}
    for page in sorted(REFERENCE.glob("*.md")):
        lines = page.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            match = DIRECTIVE.match(line)
            if not match:
                continue
            members: Any = None
            for option in lines[i + 1 :]:
                if not option.startswith(" "):
                    break
                m = MEMBERS.match(option)
                if m:
                    value = m.group(1)
                    members = False if value in ("false", "[]") else [v.strip() for v in value.strip("[]").split(",")]
            assert match.group(1) not in found, f"{page.name}: {match.group(1)} is documented twice"
            found[match.group(1)] = members
    return found


def rendered(where: tuple[str, str]) -> bool:
    module, name = where
    if f"{module}.{name}" in directives():
        return True
    members = directives().get(module, False)
    return members is None or (isinstance(members, list) and name in members)


# --------------------------------------------------------------------------------------------- tests


def test_jcnn_all_lists_every_public_attribute():
    import jcnn

    missing = sorted(
        n
        for n, v in vars(jcnn).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType) and n not in jcnn.__all__
    )
    assert not missing, f"public in jcnn but not in jcnn.__all__ (add them, and document them): {missing}"
    absent = [n for n in jcnn.__all__ if not hasattr(jcnn, n)]
    assert not absent, f"jcnn.__all__ lists names jcnn does not have: {absent}"
    assert {"Conv", "serial", "Layer", "optim", "summary", "intermediates"} <= set(jcnn.__all__)


def test_layers_all_lists_every_public_attribute():
    """jcnn re-exports jcnn.layers by ``*``: its list is written out, so that type checkers see it."""
    mod = importlib.import_module("jcnn.layers")
    public = {n for n, v in vars(mod).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    assert public <= set(mod.__all__), sorted(public - set(mod.__all__))
    assert all(hasattr(mod, n) for n in mod.__all__)


def test_every_public_module_and_name_has_a_docstring():
    problems = [f"{m}: no module docstring" for m in public_modules() if not ast.get_docstring(syntax(m))]
    for (module, name), spelling in sorted(every_public_name().items()):
        node, doc = top_level(module)[name]
        if not (doc or "").strip():
            problems.append(f"{spelling} (defined in {module}): no docstring")
        if isinstance(node, ast.ClassDef):
            cls = getattr(importlib.import_module(module), name)
            for item in node.body:
                if (
                    isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                    and not item.name.startswith("_")
                    and not ast.get_docstring(item)
                    and not _inherited_from_outside(cls, item.name)
                ):
                    problems.append(f"{module}.{name}.{item.name}: no docstring")
    assert not problems, "undocumented public names:\n  " + "\n  ".join(problems)


def test_every_public_name_is_in_the_reference():
    problems = [f"{m}: no '::: {m}' directive in docs/reference/" for m in public_modules() if m not in directives()]
    for (module, name), spelling in sorted(every_public_name().items()):
        mod = importlib.import_module(module)
        if hasattr(mod, "__all__") and name not in mod.__all__:
            problems.append(f"{spelling}: defined in {module} but not in its __all__, so the reference leaves it out")
        elif not rendered((module, name)):
            problems.append(f"{spelling}: the reference renders no '::: {module}' member {name!r}")
    assert not problems, "missing from the API reference:\n  " + "\n  ".join(problems)


def test_every_reference_directive_names_something():
    for target, members in directives().items():
        try:
            mod = importlib.import_module(target)
        except ModuleNotFoundError:
            module, _, name = target.rpartition(".")
            assert hasattr(importlib.import_module(module), name), f"::: {target}: no such module or object"
            continue
        for name in members or ():
            assert hasattr(mod, name), f"::: {target} lists member {name!r}, which {target} does not have"


def test_nothing_points_outside_the_repository():
    outside = re.compile(r"\.\./shared|DESIGN\.md §|seed §")
    files = [ROOT / "README.md", *DOCS.rglob("*.md"), *PACKAGE.rglob("*.py")]
    hits = [
        f"{f.relative_to(ROOT)}:{i}: {line.strip()}"
        for f in files
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
        if outside.search(line)
    ]
    assert not hits, "references to files outside the repository:\n  " + "\n  ".join(hits)


def _blocks(page: pathlib.Path) -> list[tuple[int, str]]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip().splitlines()
        if before and before[-1].strip() == NO_RUN:
            continue
        found.append((text.count("\n", 0, match.start()) + 2, match.group(1)))
    return found


PAGES = sorted(p for p in DOCS.rglob("*.md") if _blocks(p))


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_page_examples_run(page, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the files a page writes (a folder of images, a run, an artifact) go here
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem}"}
    for line, code in _blocks(page):
        # Padding with newlines makes a traceback point at the page's own line numbers.
        exec(compile("\n" * (line - 1) + code, str(page), "exec"), namespace)
