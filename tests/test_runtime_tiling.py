"""Tiled inference: layout, blending, equality where one tile covers the image, the quality bound
at the default overlap on a small DPANet, static-size models served by tiling, and bad options."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from dpanet.cli import main
from dpanet.errors import DPANetError
from dpanet.runtime.images import Image, read_image
from dpanet.runtime.metrics import psnr
from dpanet.runtime.onnxruntime_backend import OnnxRuntimeBackend
from dpanet.runtime.pipeline import deblur_pair, plan_tiling, run_network, to_network
from dpanet.runtime.tiling import (
    DEFAULT_OVERLAP,
    Tiling,
    axis_weights,
    largest_overlap,
    run_tiled,
    tile_starts,
)

from runtime_cases import smooth_views, static_copy, write_pair

DEFAULT_TILE_MIN_PSNR_DB = 55.0
"""docs/runtime.md: the smallest tiles the default overlap allows stay above this PSNR against
untiled output on the small test model (measured: 68.4 dB; without overlap 39.7 dB)."""


@pytest.mark.parametrize(
    "length, tile, overlap", [(120, 64, 16), (1120, 512, 64), (72, 64, 16), (200, 64, 0)]
)
def test_tiles_cover_the_axis_on_multiples_of_8_and_weights_sum_to_one(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] == length - tile
    assert all(s % 8 == 0 for s in starts)
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:], strict=False))
    assert len(tile_starts(length, tile, overlap)) == max(1, -(-(length - tile) // (tile - overlap)) + 1)
    total = np.zeros(length)
    for start, weight in zip(starts, axis_weights(length, tile, overlap), strict=True):
        assert weight.min() > 0
        total[start : start + tile] += weight
    np.testing.assert_allclose(total, 1.0, atol=1e-3)


def _pointwise(left, right):
    return np.tanh(3 * left - 2 * right)


@pytest.mark.parametrize("tile, overlap", [((64, 64), 16), ((40, 96), 8), ((24, 24), 0)])
def test_a_pointwise_backend_is_reproduced_exactly_by_any_tiling(tile, overlap):
    """Blending only redistributes weight: a backend without spatial context must come out the same."""
    rng = np.random.default_rng(1)
    left, right = (rng.random((1, 3, 120, 200), dtype=np.float32) for _ in range(2))
    tiled = run_network(_pointwise, left, right, tile, overlap)
    np.testing.assert_allclose(tiled, _pointwise(left, right), atol=1e-6)


def _pair(height, width, seed=0):
    left, right = smooth_views(height, width, seed)
    return Image(left, 8), Image(right, 8)


def test_tiled_equals_untiled_where_the_tile_covers_the_image(small_export):
    backend = OnnxRuntimeBackend(small_export[1])
    left, right = _pair(45, 70)  # padded to 48 x 72
    whole = deblur_pair(left, right, backend, "BGR").pixels
    for tile, overlap in (((48, 72), 16), ((256, 256), None)):
        np.testing.assert_array_equal(deblur_pair(left, right, backend, "BGR", tile, overlap).pixels, whole)
    assert plan_tiling(backend, (48, 72), (48, 256), 16)[0] is None


def test_default_overlap_keeps_tiled_output_close_to_untiled(small_export):
    backend = OnnxRuntimeBackend(small_export[1])
    left, right = _pair(205, 270, seed=3)
    whole = deblur_pair(left, right, backend, "BGR").pixels
    tile = (2 * DEFAULT_OVERLAP + 8,) * 2
    tiled = deblur_pair(left, right, backend, "BGR", tile).pixels
    seams = deblur_pair(left, right, backend, "BGR", tile, 0).pixels
    assert psnr(tiled, whole) >= DEFAULT_TILE_MIN_PSNR_DB
    assert psnr(seams, whole) < DEFAULT_TILE_MIN_PSNR_DB  # without overlap the bound would fail


def test_static_model_serves_any_size_by_tiling_at_its_size(small_export, tmp_path):
    static = static_copy(small_export[1], tmp_path / "static.onnx", 64, 64)
    backend = OnnxRuntimeBackend(static)
    assert backend.fixed_size == (64, 64)
    rng = np.random.default_rng(0)
    big = rng.random((1, 3, 96, 136), dtype=np.float32)
    with pytest.raises(ort.capi.onnxruntime_pybind11_state.InvalidArgument):
        backend(big, big)  # what users got before: ONNX Runtime refuses the size
    dynamic = OnnxRuntimeBackend(small_export[1])
    for size in ((40, 56), (96, 136)):  # smaller (padded up to the tile) and larger than its size
        left, right = _pair(*size, seed=5)
        notes = []
        out = deblur_pair(left, right, backend, "BGR", note=notes.append).pixels
        tiling = Tiling((64, 64), largest_overlap((64, 64)))
        expected = run_tiled(dynamic, to_network(left.pixels, "BGR"), to_network(right.pixels, "BGR"), tiling)
        np.testing.assert_allclose(
            out, expected[0].transpose(1, 2, 0)[: size[0], : size[1]].clip(0, 1), atol=1e-5
        )
        assert notes and "static size" in notes[0]


def test_backend_maximum_tiles_larger_images_with_a_note():
    class Limited:
        max_size = (64, 64)

        def __call__(self, left, right):
            assert left.shape[2] <= 64 and left.shape[3] <= 64
            return _pointwise(left, right)

    rng = np.random.default_rng(2)
    left, right = (rng.random((1, 3, 120, 48), dtype=np.float32) for _ in range(2))
    notes = []
    out = run_network(Limited(), left, right, note=notes.append)
    np.testing.assert_allclose(out, _pointwise(left, right), atol=1e-6)
    assert "maximum" in notes[0]
    with pytest.raises(DPANetError, match="larger than the backend's maximum"):
        run_network(Limited(), left, right, (128, 128), 16)


@pytest.mark.parametrize(
    "options, message",
    [
        (["--tile", "100x96"], "--tile 100x96: height and width must be multiples of 8"),
        (["--tile", "128x128", "--overlap", "64"], "--tile 128x128: both sides must exceed twice"),
        (["--tile", "128x128", "--overlap", "12"], "--overlap 12: must be a non-negative multiple of 8"),
        # without --tile, --overlap applies to the tiles --max-memory chooses; checked all the same
        (["--overlap", "20"], "--overlap 20: must be a non-negative multiple of 8"),
        (["--tile", "wide"], None),
    ],
)
def test_bad_tiling_options_are_refused_with_one_line(small_export, tmp_path, capsys, options, message):
    write_pair(tmp_path, "a", 24, 32, seed=1)
    args = ["deblur", "-l", str(tmp_path / "a_L.png"), "-r", str(tmp_path / "a_R.png"), "-o",
            str(tmp_path / "out.png"), "--model", str(small_export[1]), *options]  # fmt: skip
    if message is None:  # argparse's own type error
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == 2
        return
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"dpanet deblur: error: {message}")
    assert not (tmp_path / "out.png").exists()


def test_static_model_refuses_another_tile_size(small_export, tmp_path, capsys):
    static = static_copy(small_export[1], tmp_path / "static.onnx", 64, 64)
    write_pair(tmp_path, "a", 24, 32, seed=1)
    args = ["deblur", "-l", str(tmp_path / "a_L.png"), "-r", str(tmp_path / "a_R.png"), "-o",
            str(tmp_path / "out.png"), "--model", str(static), "--tile", "128x128"]  # fmt: skip
    assert main(args) == 1
    assert "the model has a static size 64x64" in capsys.readouterr().err
    assert main(args[:-2]) == 0  # without --tile it serves the 24 x 32 pair at its own size
    assert read_image(tmp_path / "out.png").size == (24, 32)


def test_tiling_request_validation_is_independent_of_the_image():
    with pytest.raises(DPANetError):
        Tiling((64, 64), 32).check()
    assert Tiling((72, 64), 24).check().tile == (72, 64)
