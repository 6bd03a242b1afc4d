"""The flat module names of jcnn 0.1 (``jcnn.train``, ``jcnn.checkpoint``, ...), still importable.

The modules now live in subpackages that say what they are for (``jcnn.training``, ``jcnn.inspection``,
``jcnn.scale``, ``jcnn.serving``). Code and checkpoints written against the contract's names keep
working: ``import jcnn.train`` / ``from jcnn.checkpoint import save`` give the module at its new home
(the same module object, not a copy), loaded only when asked for.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

# Old name -> the module's home.
MOVED = {
    "jcnn.train": "jcnn.training.train",
    "jcnn.checkpoint": "jcnn.training.checkpoint",
    "jcnn.plots": "jcnn.training.plots",
    "jcnn.summary": "jcnn.inspection.summary",
    "jcnn.intermediates": "jcnn.inspection.intermediates",
    "jcnn.paths": "jcnn.inspection.paths",
    "jcnn.report": "jcnn.inspection.report",
    "jcnn.verify": "jcnn.interop.verify",
    "jcnn.distributed": "jcnn.scale.distributed",
    "jcnn.precision": "jcnn.scale.precision",
    "jcnn.export": "jcnn.serving.export",
    "jcnn.inference": "jcnn.serving.inference",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old name and loads it as the module at its home."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(MOVED[spec.name])
        spec.loader_state = module.__spec__  # the import system now overwrites __spec__ with `spec`
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The module ran when its home was imported; give it back its own spec (reload, tools).
        assert module.__spec__ is not None
        module.__spec__ = module.__spec__.loader_state


def install() -> None:
    """Alias the modules ``import jcnn`` has loaded; find the others when they are imported.

    Called at the end of ``jcnn/__init__``: an old name whose module is already loaded goes straight
    into ``sys.modules``, so importing it never rebinds a top-level name (``jcnn.summary`` stays the
    function, not the module of the same name)."""
    for old, home in MOVED.items():
        if home in sys.modules:
            sys.modules.setdefault(old, sys.modules[home])
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias())
