"""The bundled demo model on real DP pairs (../shared/data/dp-real). There is no ground truth there,
so the checks are the round trip (size, channels, bit depth, brightness) and parity: the torch
backend and the ONNX Runtime backend (an exported model of each flavour) write the same image."""

from __future__ import annotations

import numpy as np
import pytest

from dpanet.cli import main
from dpanet.runtime.images import read_image
from dpanet.training.checkpoint import DEMO_CHECKPOINT


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("onnx")
    paths = {}
    for flavor in ("portable", "plugin"):
        paths[flavor] = str(folder / f"demo-{flavor}.onnx")
        args = ["export", "--checkpoint", str(DEMO_CHECKPOINT), "-o", paths[flavor], "--flavor", flavor]
        assert main(args) == 0
    return paths


@pytest.mark.parametrize("scene", ["canon_00", "pixel_00"])  # RGB 840 x 560; single-channel 512 x 512
def test_real_pair_round_trip_and_backend_parity(dp_real, tmp_path, onnx_models, scene):
    left, right = dp_real / f"{scene}_L.png", dp_real / f"{scene}_R.png"
    pair = ["--left", str(left), "--right", str(right)]
    assert main(["deblur", *pair, "-o", str(tmp_path / "torch.png")]) == 0
    for flavor, model in onnx_models.items():
        assert main(["deblur", *pair, "-o", str(tmp_path / f"{flavor}.png"), "--model", model]) == 0
    views = [read_image(left), read_image(right)]
    result = read_image(tmp_path / "torch.png")
    assert (result.size, result.channels, result.bit_depth) == (
        views[0].size,
        views[0].channels,
        views[0].bit_depth,
    )
    combined = 0.5 * (views[0].pixels + views[1].pixels)
    assert abs(result.pixels.mean() - combined.mean()) < 0.01  # deblurring moves no brightness
    for flavor in onnx_models:
        other = read_image(tmp_path / f"{flavor}.png").pixels
        levels = np.rint(np.abs(other - result.pixels) * 255)  # 8-bit steps
        assert levels.max() <= 1, flavor  # float32 paths round to the same 8-bit value or a neighbour
        assert np.mean(levels > 0) < 0.01, flavor
