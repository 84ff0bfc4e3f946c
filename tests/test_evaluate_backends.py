"""dpanet evaluate through ONNX Runtime, with the PyTorch row beside it, and a missing TensorRT."""

from __future__ import annotations

import csv
import importlib.util

import pytest

from dpanet.cli import main

from fake_data import make_dpdd


def test_onnx_row_beside_the_pytorch_row_scores_the_same(small_export, tmp_path, capsys):
    checkpoint, model = small_export
    make_dpdd(tmp_path / "dpdd", "test", count=2, size=(21, 30))
    out = tmp_path / "eval"
    code = main(["evaluate", "--data", str(tmp_path / "dpdd"), "--checkpoint", str(checkpoint), "--model",
                 str(model), "--protocol", "16bit", "--out", str(out)])  # fmt: skip
    assert code == 0
    with open(out / "per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    methods = [r["method"] for r in rows]
    assert methods.count("model (PyTorch)") == 2 and methods.count("model (ONNX Runtime, fp32)") == 2
    assert methods.count("combined input") == 2  # scored once, not per backend
    for image in ("scene0", "scene1"):
        torch_row, onnx_row = (
            next(r for r in rows if r["image"] == image and r["method"] == m)
            for m in ("model (PyTorch)", "model (ONNX Runtime, fp32)")
        )
        assert float(onnx_row["psnr"]) == pytest.approx(float(torch_row["psnr"]), abs=0.01)
    assert "model (ONNX Runtime, fp32)" in capsys.readouterr().out


@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None,
    reason="the tensorrt package is installed: this checks the message without it",
)
def test_engine_without_tensorrt_is_one_line(tmp_path, capsys):
    make_dpdd(tmp_path / "dpdd", "test", count=1)
    engine = tmp_path / "m.plan"
    engine.write_bytes(b"engine")
    code = main(["evaluate", "--data", str(tmp_path / "dpdd"), "--engine", str(engine), "--out",
                 str(tmp_path / "eval")])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dpanet evaluate: error:") and "m.plan" in err[0]
    assert not (tmp_path / "eval").exists()
