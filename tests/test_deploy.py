"""dpanet deploy on the CPU: export, the engine step stopping with the trtexec line (no TensorRT
here), parity on held-out pairs, the manifest, resuming, and a failing parity that exits 1."""

from __future__ import annotations

import json

import pytest

from dpanet.cli import main

from runtime_cases import write_pair


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pairs")
    write_pair(folder, "a", 40, 48, seed=1)
    write_pair(folder, "b", 32, 56, seed=2, bit_depth=16)
    return folder


def deploy(checkpoint, out, pairs, *extra) -> int:
    args = ["deploy", "--checkpoint", checkpoint, "-o", out, "--pairs", pairs, "--flavor", "portable", *extra]
    return main([str(a) for a in args])


def test_deploy_resume_and_failing_parity(checkpoint, pairs, tmp_path, capsys, monkeypatch):
    out = tmp_path / "deployment"
    assert deploy(checkpoint, out, pairs) == 0
    err = capsys.readouterr().err
    for step in ("export", "engine", "parity"):
        assert f"deploy: {step}: " in err and " s)" in err
    manifest = json.loads((out / "deploy.json").read_text())
    assert manifest["passed"] is True
    engine = manifest["steps"]["engine"]
    assert engine["built"] is False and engine["trtexec"].startswith(f"trtexec --onnx={out}/model.onnx")
    assert "TensorRT is needed" in engine["why"]
    assert set(manifest["steps"]["export"]["outputs"]) == {"model.onnx"}
    report = manifest["steps"]["parity"]["report"]
    assert json.loads((out / "parity.json").read_text()) == report
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "deploy.json",
        "model.onnx",
        "parity-1-model.png",
        "parity.json",
        "parity.md",
    ]
    assert "dpanet build-engine --onnx" in (out / "README.md").read_text()

    assert deploy(checkpoint, out, pairs) == 0  # nothing changed: every step kept
    err = capsys.readouterr().err
    assert err.count("unchanged, kept") == 3

    from dpanet.runtime import parity

    monkeypatch.setitem(parity.TOLERANCES, "fp32", parity.Tolerance(atol=1e-12, min_psnr=400.0))
    assert deploy(checkpoint, out, pairs) == 1  # tolerances are parity's inputs: redone, and failing
    err = capsys.readouterr().err
    assert "deploy: export: unchanged, kept" in err and "parity: FAILED" in err
    manifest = json.loads((out / "deploy.json").read_text())
    assert manifest["passed"] is False and "FAIL" in (out / "parity.md").read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--precision", "int8"], "--precision int8 needs --calibration"),
        (["--calibration", "PAIRS"], "--calibration is for --precision int8"),
        (["--precision", "int8", "--calibration", "PAIRS"], "the calibration pairs cannot check"),
        (["--target", "cpu", "--max", "256x256"], "--min/--opt/--max are the engine's profile"),
    ],
)
def test_deploy_refuses(checkpoint, pairs, tmp_path, capsys, extra, message):
    extra = [str(pairs) if e == "PAIRS" else e for e in extra]
    assert deploy(checkpoint, tmp_path / "d", pairs, *extra) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "d").exists()


def test_documented_commands_parse():
    """Every dpanet command in docs/serving.md's bash blocks is one the CLI accepts."""
    import re
    import shlex
    from pathlib import Path

    from dpanet.cli import build_parser

    text = (Path(__file__).resolve().parents[1] / "docs" / "serving.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split("#")[0].strip()
            if line.startswith("dpanet "):
                commands.append(shlex.split(line)[1:])
    assert len(commands) >= 6
    parser = build_parser()
    for argv in commands:
        parser.parse_args(argv)
