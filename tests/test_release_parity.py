"""Done-when of the model issue: a checkpoint in the release's format, converted and run through
``dpanet deblur --backend torch`` on 16-bit inputs, matches an independent implementation of the
release (tests/release_reference.py, float64, grid_sample DCN) within 1e-3."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from dpanet.cli import main

from release_reference import ReleaseReference, synthesize_release_checkpoint

TOLERANCE = 1e-3


def test_converted_release_checkpoint_reproduces_the_release(official_keys, tmp_path):
    release = synthesize_release_checkpoint(official_keys, seed=7)
    torch.save(release, tmp_path / "final.pth")
    assert main(["convert-official", str(tmp_path / "final.pth"), str(tmp_path / "ours.pt")]) == 0

    # 40 x 56: multiples of 8 (no padding involved) with odd 1/8-scale sizes (5 x 7), which
    # exercises the first decoder block's odd centre crop.
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.random((40, 56, 3)), (0, 0), 2.0)
    views = {}
    for name, shift in (("L", -1), ("R", 1)):
        img = np.roll(base, shift, axis=1) + 0.05 * rng.random((40, 56, 3))
        views[name] = np.rint(np.clip(img, 0, 1) * 65535).astype(np.uint16)
        cv2.imwrite(str(tmp_path / f"{name}.png"), views[name])

    code = main(["deblur", "--left", str(tmp_path / "L.png"), "--right", str(tmp_path / "R.png"),
                 "-o", str(tmp_path / "out.png"), "--checkpoint", str(tmp_path / "ours.pt"),
                 "--backend", "torch"])  # fmt: skip
    assert code == 0
    ours = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert ours.dtype == np.uint16 and ours.shape == (40, 56, 3)

    def tensor(img):  # BGR as read by OpenCV, as the release feeds it
        return torch.from_numpy(img.astype(np.float64).transpose(2, 0, 1)[None] / 65535)

    with torch.no_grad():
        expected = ReleaseReference(release)(tensor(views["L"]), tensor(views["R"]))
    expected = expected[0].numpy().transpose(1, 2, 0)
    got = ours.astype(np.float64) / 65535
    assert expected.std() > 0.02, "degenerate reference output: the comparison would prove little"
    assert np.abs(got - expected).max() < TOLERANCE
