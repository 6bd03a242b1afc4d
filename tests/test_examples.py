"""Every script in examples/ runs (with --quick) and writes its figures."""

from __future__ import annotations

import os
import runpy

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
FIGURES = {
    "conv_by_hand": ["conv_by_hand.png"],
    "padding_stride": ["padding_stride.png"],
    "pooling": ["pooling.png"],
    "activations": ["activations.png"],
    "normalization": ["normalization.png"],
    "fully_connected": ["fc_curves.png", "fc_weights.png", "fc_confusion.png"],
    "optimizers": ["optimizers.png"],
}


def test_every_example_is_listed():
    scripts = {f[:-3] for f in os.listdir(EXAMPLES) if f.endswith(".py") and not f.startswith("_")}
    assert scripts == set(FIGURES)


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_example_runs_and_writes_its_figures(name, tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(EXAMPLES)
    namespace = runpy.run_path(os.path.join(EXAMPLES, f"{name}.py"), run_name=f"example_{name}")
    out = tmp_path / name
    assert namespace["main"](["--out", str(out), "--quick"]) == 0
    for figure in FIGURES[name]:
        with open(out / figure, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", figure
    assert capsys.readouterr().out  # each example reports what it computed
