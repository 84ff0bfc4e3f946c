"""Install profiles (issue 23): every command run without the extra it needs says, in one line, which
extra to install, and writes nothing; dpanet/extras.py's table matches pyproject.toml's extras."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from dpanet.extras import BASE_MODULES, EXTRA_MODULES, pip_command

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
# the distributions whose module is not named like them
MODULE_OF = {"opencv-python-headless": "cv2", "scikit-image": "skimage", "nvidia-pytriton": "pytriton"}
# Modules made unimportable in the command's process: `import torch` then raises ModuleNotFoundError,
# as in an environment without the package.
BLOCKED_RUN = (
    "import sys; sys.modules.update(dict.fromkeys({blocked!r})); "
    "from dpanet.cli import main; sys.exit(main({argv!r}))"
)


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def _modules(extra: str, extras: dict[str, list[str]]) -> set[str]:
    """The top-level modules ``extra`` adds to the base install (through the extras it includes)."""
    found = set()
    for requirement in extras[extra]:
        if requirement.startswith("dpanet["):
            for included in requirement[len("dpanet[") : -1].split(","):
                found |= _modules(included, extras)
        else:
            name = _requirement_name(requirement)
            found.add(MODULE_OF.get(name, name.replace("-", "_")))
    return found


def test_the_extras_table_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {
        MODULE_OF.get(name, name.replace("-", "_"))
        for name in map(_requirement_name, project["dependencies"])
        if name != "tomli"  # Python 3.10's tomllib
    }
    assert base == set(BASE_MODULES)
    extras = project["optional-dependencies"]
    assert set(extras) - {"dev"} == set(EXTRA_MODULES)
    for extra, modules in EXTRA_MODULES.items():
        assert _modules(extra, extras) - base == set(modules), extra


@pytest.fixture
def work(tmp_path):
    """A folder with a small pair of views and a training configuration."""
    for name in ("l.png", "r.png"):
        cv2.imwrite(str(tmp_path / name), np.full((16, 24, 3), 128, np.uint8))
    (tmp_path / "c.toml").write_text(
        '[data]\nkind = "synthetic"\ncount = 4\nsize = 16\n[output]\ndir = "run"\n'
    )
    (tmp_path / "pairs").mkdir()
    return tmp_path


PAIR = ["-l", "l.png", "-r", "r.png", "-o", "o.png"]
CASES = [
    # (modules missing, command line, extra named)
    (["torch"], ["demo", "--size", "16"], "torch"),
    (["torch"], ["deblur", *PAIR], "torch"),
    (["torch"], ["deblur", *PAIR, "--checkpoint", "c.pt"], "torch"),
    (["torch"], ["convert-official", "final.pth", "ours.pt"], "torch"),
    (["torch"], ["export", "-o", "m.onnx"], "export"),
    (["onnxscript"], ["export", "-o", "m.onnx"], "export"),
    (["onnx_ir"], ["export", "-o", "m.onnx"], "export"),
    (["torch"], ["calibrate", "--data", "pairs", "-o", "q.onnx"], "calib"),
    (["onnxscript"], ["calibrate", "--data", "pairs", "-o", "q.onnx"], "calib"),
    (["torch"], ["train", "--config", "c.toml"], "train"),
    (["tensorboard"], ["train", "--config", "c.toml"], "train"),
    (["torch"], ["evaluate", "--data", "pairs", "--split", "test"], "torch"),
    (["torch"], ["model-info"], "torch"),
    (["torch"], ["synth", "--out", "s", "--count", "1", "--size", "16"], "torch"),
    (["torch"], ["prepare-patches", "--data", "pairs", "--out", "p"], "torch"),
    (["torch"], ["tune-unsharp", "--data", "pairs"], "torch"),
    (["torch"], ["bench", "model", "--size", "16"], "torch"),
    (["torch"], ["bench", "ops", "--scale", "0.01"], "torch"),
    (["torch"], ["bench", "export", "--size", "16"], "export"),
    (["torch"], ["bench", "train", "--size", "16"], "train"),
    (["onnxruntime"], ["deblur", *PAIR, "--model", "m.onnx"], ""),
    (["polygraphy"], ["parity", "--model", "m.onnx", "--pairs", "pairs", "--load-reference", "r.json"], ""),
]


@pytest.mark.parametrize(
    "blocked, argv, extra", CASES, ids=[f"{' '.join(c[1][:2])}-without-{c[0][0]}" for c in CASES]
)
def test_a_command_without_its_extra_names_it_in_one_line(work, blocked, argv, extra):
    before = sorted(p.name for p in work.iterdir())
    code = BLOCKED_RUN.format(blocked=blocked, argv=argv)
    done = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True, check=False)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"dpanet {argv[0]}: error: ")
    if extra:
        assert f"needs the {extra} extra" in lines[0] or "tensorboard package" in lines[0]
        assert pip_command(extra) in lines[0]
    else:
        assert f"{blocked[0]} is missing, though every dpanet install requires it" in lines[0]
    assert sorted(p.name for p in work.iterdir()) == before


def test_a_module_no_profile_provides_stays_a_bug():
    from dpanet.extras import missing_module_message

    assert missing_module_message(ModuleNotFoundError("No module named 'nosuch'", name="nosuch")) is None
    error = ModuleNotFoundError("No module named 'torch.nn'", name="torch.nn")
    assert missing_module_message(error, "export").endswith(f"export extra ({pip_command('export')})")
