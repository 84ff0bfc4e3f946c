"""Every option a command's --help lists is described on that command's page of the docs (issue 23
found `deblur --backend`, `evaluate --threads`, `parity --device/--threads`, `demo --out` missing)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from dpanet.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = {
    "deblur": ["docs/runtime.md", "docs/serving.md"],
    "parity": ["docs/runtime.md"],
    "evaluate": ["docs/training.md", "docs/runtime.md"],
    "demo": ["README.md"],
    "export": ["docs/export.md"],
    "calibrate": ["docs/int8.md"],
    "build-engine": ["docs/engines.md"],
    "doctor": ["docs/engines.md"],
    "deploy": ["docs/serving.md"],
    "triton-repo": ["docs/serving.md"],
    "serve": ["docs/serving.md"],
    "bench serving": ["docs/serving.md"],
    "convert-official": ["docs/checkpoints.md"],
    "model-info": ["docs/model.md"],
    "prepare-patches": ["docs/training.md"],
    "train": ["docs/training.md"],
    "tune-unsharp": ["docs/training.md"],
    "synth": ["docs/synthetic-dp.md"],
    "bench model": ["docs/model.md"],
    "bench ops": ["docs/plugins.md"],
    "bench export": ["docs/export.md"],
    "bench tiling": ["docs/runtime.md"],
    "bench memory": ["docs/runtime.md"],
    "bench train": ["docs/training.md"],
    "bench calibration": ["docs/int8.md"],
}


def _commands(parser: argparse.ArgumentParser, name: str = ""):
    """(name, parser) of every leaf command: `deblur`, `bench model`, ..."""
    choices = next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    if choices is None:
        yield name, parser
        return
    for sub, subparser in choices.items():
        yield from _commands(subparser, f"{name} {sub}".strip())


COMMANDS = dict(_commands(build_parser()))


def test_every_command_has_a_page():
    assert set(COMMANDS) <= set(PAGES)


@pytest.mark.parametrize("name", [n for n in COMMANDS if n in PAGES])
def test_every_option_is_on_the_commands_page(name):
    text = "".join((ROOT / page).read_text() for page in PAGES[name])
    missing = [
        action.option_strings
        for action in COMMANDS[name]._actions
        if action.option_strings
        and "--help" not in action.option_strings
        and not any(re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text) for o in action.option_strings)
    ]
    assert not missing, f"dpanet {name}: {missing} not in {', '.join(PAGES[name])}"
