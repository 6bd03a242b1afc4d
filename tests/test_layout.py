"""The package layout (docs/design.md §7): modules in subpackages by purpose, the flat names of 0.1
still importable as the same module objects, and ``import jcnn`` light."""

import importlib
import subprocess
import sys

import pytest

import jcnn
from jcnn import _moved


@pytest.mark.parametrize("old, home", sorted(_moved.MOVED.items()))
def test_old_names_import_the_module_at_its_home(old, home):
    if old == "jcnn.verify":
        pytest.importorskip("torch")
    module = importlib.import_module(old)
    assert module is importlib.import_module(home)
    assert module.__name__ == home and module.__spec__.name == home  # one module, its own spec
    assert sys.modules[old] is module


def test_from_imports_of_old_names_keep_the_top_level_functions():
    from jcnn.checkpoint import save
    from jcnn.intermediates import capture
    from jcnn.summary import Summary
    from jcnn.train import TrainState

    assert save is jcnn.training.checkpoint.save and TrainState is jcnn.training.train.TrainState
    assert Summary is jcnn.inspection.summary.Summary and capture is jcnn.inspection.intermediates.capture
    # importing the module of the same name must not rebind the function
    assert callable(jcnn.summary) and jcnn.summary is jcnn.inspection.summary.summary
    assert jcnn.intermediates is jcnn.inspection.intermediates.intermediates
    assert jcnn.train is jcnn.training.train and jcnn.checkpoint is jcnn.training.checkpoint


def test_root_holds_only_the_core_modules():
    root = {p.stem for p in __import__("pathlib").Path(jcnn.__file__).parent.glob("*.py")}
    public = {name for name in root if not name.startswith("_")}
    assert public == {"initializers", "losses", "metrics"}, public


def test_import_jcnn_leaves_the_heavy_parts_unloaded():
    code = (
        "import sys, jcnn; heavy = [m for m in ('matplotlib', 'torch', 'PIL', 'tqdm', 'jcnn.cli.train', "
        "'jcnn.serving.export', 'jcnn.interop', 'jcnn.training.plots') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
