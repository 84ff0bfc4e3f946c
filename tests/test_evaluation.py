"""Metrics against hand computations, the evaluation protocols, the CLI and the unsharp baseline."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from dpanet.cli import main
from dpanet.runtime.images import read_image, write_image
from dpanet.training.baseline import UnsharpMask, tune_unsharp
from dpanet.training.checkpoint import save_checkpoint
from dpanet.training.data import list_dpdd
from dpanet.training.evaluation import evaluate_split, read_as_protocol, summary_table
from dpanet.training.inference import float32_mode
from dpanet.training.metrics import load_lpips, scores
from dpanet.training.model import DPANet, DPANetConfig

from fake_data import make_dpdd


def test_scores_of_a_known_pair_match_a_hand_computation():
    target = np.zeros((16, 16, 3))
    output = np.full((16, 16, 3), 0.1)
    s = scores(output, target)
    assert s.psnr == pytest.approx(10 * math.log10(1 / 0.01))  # MSE 0.01: 20 dB
    assert s.mae == pytest.approx(0.1)
    c1 = (0.01 * 1.0) ** 2  # constant images: SSIM = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)
    assert s.ssim == pytest.approx(c1 / (0.1**2 + c1), rel=1e-6)


def test_release_protocol_reads_16_bit_files_as_opencv_does(tmp_path):
    values = np.array([0, 255, 256, 383, 384, 65407, 65408, 65535], np.uint16)
    pixels = np.repeat((values / 65535.0).reshape(1, -1, 1), 3, axis=2)
    write_image(tmp_path / "v.png", pixels, 16)
    image = read_as_protocol(tmp_path / "v.png", "release")
    assert image.bit_depth == 8
    np.testing.assert_array_equal(np.rint(image.pixels[0, :, 0] * 255), values >> 8)
    assert read_as_protocol(tmp_path / "v.png", "16bit").bit_depth == 16


def left_view_backend(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """A 'model' whose output is its left input."""
    return left


def test_evaluation_of_a_known_backend_matches_a_hand_computation(tmp_path):
    make_dpdd(tmp_path, "test", count=2, size=(16, 24))
    scenes = list_dpdd(tmp_path, "test")
    result = evaluate_split(
        scenes, left_view_backend, "BGR", "release", {"identity": lambda c: c}, progress=False
    )
    for scene in scenes:
        left = np.floor(np.rint(read_image(scene.left).pixels * 65535) / 256) / 255  # 8-bit as OpenCV reads
        target = np.floor(np.rint(read_image(scene.target).pixels * 65535) / 256) / 255
        mse = np.mean((left - target) ** 2)
        row = next(r for r in result.rows if r["image"] == scene.name and r["method"] == "model")
        assert row["psnr"] == pytest.approx(10 * np.log10(1 / mse), rel=1e-5)
        assert row["mae"] == pytest.approx(np.mean(np.abs(left - target)), rel=1e-5)
    assert result.methods == ["model", "combined input", "identity"]
    assert result.means("identity") == pytest.approx(result.means("combined input"))
    table = summary_table([result], len(scenes), "skipped: no weights")
    assert "DPANet, Table I" in table and "26.80" in table and "LPIPS: skipped: no weights" in table


def test_release_protocol_truncates_the_output_and_the_16_bit_protocol_rounds(tmp_path):
    make_dpdd(tmp_path, "test", count=1, size=(16, 24))
    scenes = list_dpdd(tmp_path, "test")
    noise = np.random.default_rng(7).normal(0, 0.003, (16, 24, 3))
    output = np.clip(read_image(scenes[0].target).pixels + noise, 0, 1).astype(np.float32)  # a near miss

    def backend(left: np.ndarray, right: np.ndarray) -> np.ndarray:
        return output.transpose(2, 0, 1)[None]

    def psnr(a, b):
        return 10 * np.log10(1 / np.mean((np.float64(a) - np.float64(b)) ** 2))

    release = evaluate_split(scenes, backend, "BGR", "release", progress=False).rows[0]
    sixteen = evaluate_split(scenes, backend, "BGR", "16bit", progress=False).rows[0]
    # the release's test code: np.uint8(output * 255) on a float32 array, target read 8-bit
    truncated = np.uint8(output * 255) / 255.0
    target8 = (np.rint(read_image(scenes[0].target).pixels * 65535).astype(np.uint16) >> 8) / 255.0
    assert release["psnr"] == pytest.approx(psnr(truncated, target8), rel=1e-6)
    assert release["mae"] == pytest.approx(np.mean(np.abs(truncated - target8)), rel=1e-6)
    rounded8 = np.rint(output * 255) / 255.0
    assert psnr(rounded8, target8) - release["psnr"] > 1  # rounding would score clearly higher
    rounded16 = np.rint(output.astype(np.float64) * 65535) / 65535
    target16 = read_image(scenes[0].target).pixels
    assert sixteen["psnr"] == pytest.approx(psnr(rounded16, target16), rel=1e-6)


def test_float32_mode_sets_tf32_off_or_on_and_restores_the_settings():
    settings = (torch.backends.cuda.matmul, torch.backends.cudnn.conv)
    saved = [s.fp32_precision for s in settings]
    try:
        for s in settings:
            s.fp32_precision = "tf32"
        with float32_mode("ieee"):
            assert [s.fp32_precision for s in settings] == ["ieee", "ieee"]
        assert [s.fp32_precision for s in settings] == ["tf32", "tf32"]
        for s in settings:
            s.fp32_precision = "ieee"
        with float32_mode("tf32"):
            assert [s.fp32_precision for s in settings] == ["tf32", "tf32"]
        assert [s.fp32_precision for s in settings] == ["ieee", "ieee"]
        with pytest.raises(ValueError, match="float32 mode"), float32_mode("fp16"):
            pass
    finally:
        for s, value in zip(settings, saved, strict=True):
            s.fp32_precision = value


def test_evaluate_command_on_a_generated_dpdd_folder(tmp_path, capsys):
    make_dpdd(tmp_path / "dpdd", "test", count=2, size=(20, 28))
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "tiny.pt", DPANet(DPANetConfig(width=2)), "BGR")
    args = ["evaluate", "--data", str(tmp_path / "dpdd"), "--checkpoint", str(tmp_path / "tiny.pt")]
    assert main([*args, "--out", str(tmp_path / "eval"), "--unsharp", "1.0,0.5"]) == 0
    out = capsys.readouterr().out
    assert "release" in out and "16bit" in out and "paper" in out and "per-image scores" in out
    with open(tmp_path / "eval" / "per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 3  # protocols x images x (model, combined input, unsharp)
    assert {r["method"] for r in rows} == {"model", "combined input", "unsharp mask (sigma 1, amount 0.5)"}
    assert (tmp_path / "eval" / "summary.txt").read_text().startswith("protocol")
    assert main([*args, "--unsharp", "1.0"]) == 1
    assert "SIGMA,AMOUNT" in capsys.readouterr().err


def test_lpips_is_skipped_with_a_reason_when_unavailable():
    distance, note = load_lpips()
    if distance is not None:
        pytest.skip("lpips and its weights are installed here: nothing to skip")
    assert "lpips" in note.lower() or "weights" in note


def test_unsharp_baseline_tuning():
    rng = np.random.default_rng(0)
    sharp = rng.random((32, 32, 3)).astype(np.float32)
    best, psnr = tune_unsharp([(sharp, sharp)])
    assert best.amount == 0 and psnr > 100  # nothing to sharpen: amount 0 is exact
    blurred = UnsharpMask(1.0, -0.5)(sharp)  # amount -0.5: a blur
    best, _ = tune_unsharp([(blurred, sharp)])
    assert best.amount > 0
    assert UnsharpMask.parse("1.5,2") == UnsharpMask(1.5, 2.0)
    with pytest.raises(ValueError, match="SIGMA,AMOUNT"):
        UnsharpMask.parse("fast")


def test_tune_unsharp_command(tmp_path, capsys):
    make_dpdd(tmp_path, "train", count=2, size=(16, 24))
    assert main(["tune-unsharp", "--data", str(tmp_path), "--samples", "2"]) == 0
    assert "use: dpanet evaluate ... --unsharp" in capsys.readouterr().out
    assert main(["tune-unsharp", "--data", str(tmp_path), "--split", "test"]) == 1
    assert "test_c/source" in capsys.readouterr().err
