"""The README's quick start runs as written."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _quick_start() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README: no python block under '## Quick start'"
    return match.group(1)


def test_readme_gives_the_two_setup_commands():
    text = README.read_text(encoding="utf-8")
    assert "make train" in text and "make test" in text


def test_quick_start_runs_as_written(capsys):
    code = _quick_start()
    assert len(code.strip().splitlines()) <= 25
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    assert namespace["out_shape"] == (-1, 10)
    assert namespace["logits"].shape == (32, 10)
    assert float(namespace["loss"]) > 0
    assert capsys.readouterr().out.strip()
