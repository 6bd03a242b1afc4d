"""mkdocs hooks for the jcnn site (loaded by ``hooks:`` in mkdocs.yml, never imported by the package).

The docstrings are written with Sphinx roles (``:func:`jcnn.ops.conv```, ``:class:`~jcnn.optim.Optimizer```),
which Markdown would print verbatim. A preprocessor in every Markdown instance (mkdocstrings renders
docstrings with the site's extensions) turns each role into a mkdocs-autorefs cross-reference,
``[`conv`][jcnn.ops.conv]``, so the reference links them and ``mkdocs build --strict`` fails on a target
that does not exist. Relative targets (``:func:`chain```) resolve in the docstring's own module
(``scoped_crossrefs``). A private target (a name with a leading underscore) stays plain code.

The changelog lives at the repository root (``CHANGELOG.md``, where packaging tools look for it); the site
shows it as ``changelog.md``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from markdown import Extension, Markdown
from markdown.preprocessors import Preprocessor
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent

ROLE = re.compile(r":(?:func|class|mod|meth|data|attr|obj|exc|const):`(~?)([A-Za-z_][\w.]*)`")


def _link(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2)
    title = target.rsplit(".", 1)[-1] if short else target
    if any(part.startswith("_") for part in target.split(".")):
        return f"`{title}`"  # private: not in the reference, so plain code
    return f"[`{title}`][{target}]"


class _Roles(Preprocessor):
    def run(self, lines: list[str]) -> list[str]:
        return [ROLE.sub(_link, line) for line in lines]


class RolesExtension(Extension):
    """Sphinx roles in docstrings → autorefs cross-references."""

    def extendMarkdown(self, md: Markdown) -> None:  # noqa: N802 - Markdown's API
        md.preprocessors.register(_Roles(md), "jcnn-sphinx-roles", 25)


@event_priority(100)  # before mkdocstrings reads the extensions
def on_config(config: Any) -> Any:
    config.markdown_extensions.append(RolesExtension())
    return config


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, "changelog.md", abs_src_path=str(ROOT / "CHANGELOG.md")))
    return files
