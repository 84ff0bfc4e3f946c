"""`pip install dpanet` without extras (issue 23): a fresh virtual environment gets the torch-free
runtime, which deblurs with either ONNX flavour; every command that needs an extra says which.

The environment is built once per run (docs/install.md): the build requirements, then dpanet with
``--no-build-isolation`` and the CPU kernels only, from the pip cache or the package index. Its CMake
build folder (build/install-test, ignored by git) is kept, so a rerun compiles only what changed.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dpanet.cli import main
from dpanet.extras import pip_command
from dpanet.runtime.images import read_image, write_image

from fake_data import random_image
from test_extras import CASES

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(command: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, check=False, **kwargs)


@pytest.fixture(scope="module")
def base_env(tmp_path_factory) -> Path:
    """The bin folder of a fresh virtual environment holding dpanet without extras."""
    venv = tmp_path_factory.mktemp("base-install") / "venv"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    start = time.perf_counter()
    steps = [
        [sys.executable, "-m", "venv", venv],
        [venv / "bin" / "python", "-m", "pip", "install", "-q", *requires],
        [
            *(venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-build-isolation"),
            *("-C", f"build-dir={ROOT / 'build' / 'install-test'}"),
            *("-C", "cmake.define.DPANET_BUILD_CUDA=OFF", "-C", "cmake.define.DPANET_BUILD_TENSORRT=OFF"),
            ROOT,
        ],
    ]
    for step in steps:
        done = _run(step)
        assert done.returncode == 0, f"{shlex.join(map(str, step))}:\n{done.stderr[-3000:]}"
    print(f"base install: {time.perf_counter() - start:.0f} s")
    return venv / "bin"


def test_the_base_install_has_no_torch(base_env):
    for module in ("torch", "onnxscript", "tensorboard"):
        code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is not None)"
        assert _run([base_env / "python", "-c", code]).returncode == 0, f"{module} was installed"


@pytest.fixture(scope="module")
def both_flavours(small_export, tmp_path_factory) -> dict[str, Path]:
    """The small model as the portable and the plugin flavour, exported here (torch is here)."""
    from dpanet.export.exporter import ExportOptions, export_checkpoint

    checkpoint, portable = small_export
    plugin = tmp_path_factory.mktemp("plugin") / "small-plugin.onnx"
    export_checkpoint(checkpoint, plugin, ExportOptions(flavor="plugin"))
    return {"portable": portable, "plugin": plugin}


def test_deblur_with_either_onnx_flavour_without_torch(base_env, both_flavours, tmp_path):
    write_image(tmp_path / "l.png", random_image(0, 40, 56), 8)
    write_image(tmp_path / "r.png", random_image(1, 40, 56), 8)
    outputs = {}
    for flavour, model in both_flavours.items():
        pair = ["-l", tmp_path / "l.png", "-r", tmp_path / "r.png", "--model", model]
        done = _run([base_env / "dpanet", "deblur", *pair, "-o", tmp_path / f"{flavour}.png"], cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert main(["deblur", *map(str, pair), "-o", str(tmp_path / f"{flavour}-here.png")]) == 0
        there = read_image(tmp_path / f"{flavour}.png").pixels
        here = read_image(tmp_path / f"{flavour}-here.png").pixels
        assert np.abs(there - here).max() <= 1 / 255, flavour  # the same model, one rounding step
        outputs[flavour] = there
    assert np.abs(outputs["plugin"] - outputs["portable"]).max() <= 2 / 255  # our kernels vs ONNX ops


NEEDING_AN_EXTRA = {tuple(argv): extra for _, argv, extra in CASES if extra}


@pytest.mark.parametrize(
    "argv, extra", NEEDING_AN_EXTRA.items(), ids=[" ".join(a[:2]) for a in NEEDING_AN_EXTRA]
)
def test_commands_that_need_an_extra_name_it(base_env, tmp_path, argv, extra):
    """As tests/test_extras.py, but in a real environment without the extras: the modules a command
    imports before torch (onnx_ir for export) were found missing here first."""
    for name in ("l.png", "r.png"):
        write_image(tmp_path / name, random_image(0, 16, 24), 8)
    (tmp_path / "c.toml").write_text(
        '[data]\nkind = "synthetic"\ncount = 4\nsize = 16\n[output]\ndir = "run"\n'
    )
    (tmp_path / "pairs").mkdir()
    done = _run([base_env / "dpanet", *argv], cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"dpanet {argv[0]}: error: ") and pip_command(extra) in lines[0]


def test_doctor_without_torch(base_env):
    """Without torch, pycuda or TensorRT: every CPU line ok, every GPU line skipped with its reason."""
    done = _run([base_env / "dpanet", "doctor"])
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stdout + done.stderr
    lines = {}
    for line in done.stdout.splitlines():
        word, check = line.split(None, 1)
        lines[check.split(":", 1)[0]] = word
    assert lines["cpu correlation"] == lines["cpu deform_conv"] == "ok", done.stdout
    assert lines["cuda correlation"] == lines["plugin library"] == "skipped", done.stdout
    assert "FAIL" not in lines.values(), done.stdout


def test_ci_runs_the_readmes_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci.startswith("python3 -m venv .venv && ") and f"\n{ci}\n" in readme
