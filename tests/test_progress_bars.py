"""Progress bars (docs/cli.md): on a terminal only, and never before the inputs were checked."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from dpanet.cli import main
from dpanet.runtime.images import write_image

from fake_data import random_image

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dpanet", "runtime", "training", "export", "calib", "plugins")


def _tqdm_calls():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            source = path.read_text()
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "tqdm":
                    yield f"{path.relative_to(ROOT)}:{node.lineno}", node, source


def test_every_progress_bar_is_for_terminals_only():
    """tqdm draws on stderr whatever it is unless ``disable`` is None (tqdm's "not on a terminal")
    or True; calibrate and bench tiling drew into files and pipes (issue 23)."""
    calls = list(_tqdm_calls())
    assert len(calls) >= 10  # the bars were found
    for where, node, source in calls:
        disable = next((k.value for k in node.keywords if k.arg == "disable"), None)
        assert disable is not None, where
        text = ast.get_source_segment(source, disable)
        if isinstance(disable, ast.Name):  # a variable set beside the call (runtime/tiling.py)
            text = " ".join(re.findall(rf"^\s*{disable.id} = (.*)$", source, re.MULTILINE))
        assert "None" in text, where


@pytest.fixture
def no_bar(monkeypatch):
    import dpanet.runtime.tiling_benchmark as tiling_benchmark

    def refuse(*args, **kwargs):
        raise AssertionError("a progress bar was drawn")

    monkeypatch.setattr(tiling_benchmark, "tqdm", refuse)


@pytest.mark.parametrize("case", ["no pair", "sizes differ"])
def test_bench_tiling_refuses_its_input_before_a_progress_bar(small_export, tmp_path, capfd, no_bar, case):
    _, model = small_export
    (tmp_path / "pairs").mkdir()
    if case == "no pair":  # a view without its partner
        write_image(tmp_path / "pairs" / "a_L.png", random_image(0, 24, 32), 8)
    else:
        write_image(tmp_path / "pairs" / "a_L.png", random_image(0, 24, 32), 8)
        write_image(tmp_path / "pairs" / "a_R.png", random_image(1, 24, 32), 8)
        write_image(tmp_path / "pairs" / "b_L.png", random_image(2, 24, 32), 8)
        write_image(tmp_path / "pairs" / "b_R.png", random_image(3, 16, 32), 8)
    argv = [
        "bench",
        "tiling",
        "--model",
        str(model),
        "--pairs",
        str(tmp_path / "pairs"),
        "--tiling",
        "16x16:0",
    ]
    assert main(argv) == 1
    err = capfd.readouterr().err.strip().splitlines()
    message = "no complete pair" if case == "no pair" else "b_R.png: size 16x32 differs from"
    assert len(err) == 1 and err[0].startswith("dpanet bench: error: ") and message in err[0], err
