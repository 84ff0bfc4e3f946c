"""dpanet deblur: round trips of depth, size and channels, and every bad input."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dpanet.cli import main
from dpanet.training.checkpoint import save_checkpoint
from dpanet.training.config import DPANetConfig
from dpanet.training.model import DPANet


def _write(path: Path, shape, dtype, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    cv2.imwrite(str(path), rng.integers(0, top, size=shape, endpoint=True).astype(dtype))
    return path


def _deblur(tmp_path, left, right, out_name, checkpoint, *extra) -> tuple[int, Path]:
    out = tmp_path / out_name
    code = main(["deblur", "--left", str(left), "--right", str(right), "-o", str(out),
                 "--checkpoint", str(checkpoint), *extra])  # fmt: skip
    return code, out


@pytest.mark.parametrize(
    "shape, dtype, suffix",
    [
        ((21, 30, 3), np.uint8, ".png"),
        ((17, 26, 3), np.uint16, ".png"),
        ((19, 23), np.uint8, ".png"),
        ((16, 24), np.uint16, ".tif"),
        ((24, 32, 3), np.uint8, ".jpg"),
    ],
)
def test_round_trip_keeps_depth_size_and_channels(tmp_path, checkpoint, shape, dtype, suffix):
    left = _write(tmp_path / f"l{suffix}", shape, dtype, 1)
    right = _write(tmp_path / f"r{suffix}", shape, dtype, 2)
    code, out = _deblur(tmp_path, left, right, f"out{suffix}", checkpoint)
    assert code == 0
    result = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert result.dtype == dtype
    assert result.shape == shape
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not the 0600 of a temporary file


def test_output_matches_the_model_on_the_padded_input(tmp_path, checkpoint):
    """Pixels go in BGR as read, are divided by 65535, padded at the bottom/right by edge
    replication to a multiple of 8, and the output is cropped back."""
    left = _write(tmp_path / "l.png", (13, 18, 3), np.uint16, 3)
    right = _write(tmp_path / "r.png", (13, 18, 3), np.uint16, 4)
    code, out = _deblur(tmp_path, left, right, "o.png", checkpoint)
    assert code == 0
    from dpanet.training.checkpoint import load_checkpoint

    model = load_checkpoint(checkpoint).model

    def tensor(path):
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.float32) / 65535
        img = np.pad(img, ((0, 3), (0, 6), (0, 0)), mode="edge")
        return torch.from_numpy(img.transpose(2, 0, 1)[None].copy())

    with torch.no_grad():
        expected = model(tensor(left), tensor(right))[0, :, :13, :18].numpy().transpose(1, 2, 0)
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED).astype(np.float32) / 65535
    assert np.abs(got - expected).max() < 1 / 65535


def _assert_failed_cleanly(code, capsys, tmp_path, out: Path, message: str):
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert message in err[0]
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary file left behind"


def test_missing_file(tmp_path, checkpoint, capsys):
    right = _write(tmp_path / "r.png", (8, 8, 3), np.uint8)
    code, out = _deblur(tmp_path, tmp_path / "nope.png", right, "o.png", checkpoint)
    _assert_failed_cleanly(code, capsys, tmp_path, out, "nope.png: no such file")


def test_unreadable_file(tmp_path, checkpoint, capsys):
    left = tmp_path / "l.png"
    left.write_bytes(b"\x89PNG garbage")
    right = _write(tmp_path / "r.png", (8, 8, 3), np.uint8)
    code, out = _deblur(tmp_path, left, right, "o.png", checkpoint)
    _assert_failed_cleanly(code, capsys, tmp_path, out, "l.png: cannot be decoded as an image")


def test_empty_file(tmp_path, checkpoint, capsys):
    left = tmp_path / "l.png"
    left.touch()
    right = _write(tmp_path / "r.png", (8, 8, 3), np.uint8)
    code, out = _deblur(tmp_path, left, right, "o.png", checkpoint)
    _assert_failed_cleanly(code, capsys, tmp_path, out, "l.png: file is empty")


@pytest.mark.parametrize(
    ("right_shape", "right_dtype", "message"),
    [
        ((8, 8, 3), np.uint8, "r.png: size 8x8 differs from"),
        ((8, 16), np.uint8, "r.png: 1 channel(s) but"),
        ((8, 16, 3), np.uint16, "r.png: 16-bit but"),
    ],
    ids=["size", "channels", "depth"],
)
def test_pair_mismatch(tmp_path, checkpoint, capsys, right_shape, right_dtype, message):
    left = _write(tmp_path / "l.png", (8, 16, 3), np.uint8)
    right = _write(tmp_path / "r.png", right_shape, right_dtype)
    code, out = _deblur(tmp_path, left, right, "o.png", checkpoint)
    _assert_failed_cleanly(code, capsys, tmp_path, out, message)


def test_sixteen_bit_into_jpeg_is_refused_before_work(tmp_path, checkpoint, capsys):
    left = _write(tmp_path / "l.png", (8, 8, 3), np.uint16)
    right = _write(tmp_path / "r.png", (8, 8, 3), np.uint16)
    code, out = _deblur(tmp_path, left, right, "o.jpg", checkpoint)
    _assert_failed_cleanly(code, capsys, tmp_path, out, ".jpg cannot hold 16-bit pixels")


def test_release_checkpoint_is_refused(tmp_path, capsys):
    release = tmp_path / "final.pth"
    torch.save({"G_state_dict": {"module.out.0.weight": torch.zeros(1)}}, release)
    left = _write(tmp_path / "l.png", (8, 8, 3), np.uint8)
    right = _write(tmp_path / "r.png", (8, 8, 3), np.uint8)
    code, out = _deblur(tmp_path, left, right, "o.png", release)
    _assert_failed_cleanly(code, capsys, tmp_path, out, "not a DPANet checkpoint of this project")


def test_checkpoint_with_foreign_weights_is_refused(tmp_path, capsys):
    path = tmp_path / "m.pt"
    save_checkpoint(path, DPANet(DPANetConfig(width=4)), "BGR")
    payload = torch.load(path, weights_only=True)
    payload["config"]["eam"] = False
    torch.save(payload, path)
    left = _write(tmp_path / "l.png", (8, 8, 3), np.uint8)
    right = _write(tmp_path / "r.png", (8, 8, 3), np.uint8)
    code, out = _deblur(tmp_path, left, right, "o.png", path)
    _assert_failed_cleanly(code, capsys, tmp_path, out, "weights do not fit its configuration")
