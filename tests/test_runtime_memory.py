"""Memory-bounded inference: sizes, the tile chooser against brute force, planning from a
backend's cost, retries after running out of memory, the documented cost table, and the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from dpanet.cli import main
from dpanet.errors import DPANetError
from dpanet.runtime.images import read_image
from dpanet.runtime.memory import (
    GIB,
    MEASURED_COSTS,
    MIN_TILE_PIXELS,
    MemoryCost,
    choose_tile,
    is_out_of_memory,
    measured_cost,
    parse_memory,
)
from dpanet.runtime.onnxruntime_backend import OnnxRuntimeBackend
from dpanet.runtime.pipeline import check_tiling, plan_tiling, run_network
from dpanet.runtime.tiling import tile_starts

from runtime_cases import write_pair

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "text, size",
    [("4G", 4 * GIB), ("1.5G", 3 * GIB // 2), ("512M", 512 * 2**20), ("2GiB", 2 * GIB), ("100", 100)],
)
def test_memory_sizes_parse_in_binary_units(text, size):
    assert parse_memory(text) == size


@pytest.mark.parametrize("text", ["", "4X", "-1G", "0", "G", "1.2.3G", "nan"])
def test_bad_memory_sizes_are_refused(text):
    with pytest.raises(DPANetError, match="memory size"):
        parse_memory(text)


def _total_pixels(size, tile, overlap):
    count = len(tile_starts(size[0], tile[0], overlap)) * len(tile_starts(size[1], tile[1], overlap))
    return count * tile[0] * tile[1], count


def _brute_force(size, max_pixels, overlap):
    """Every valid tile shape (multiples of 8 above twice the overlap, or a whole side)."""
    best = None
    sides = [
        [t for t in range(2 * overlap + 8, length, 8)] + [length] for length in size
    ]  # a tile as long as the side is one tile along it
    for th in sides[0]:
        for tw in sides[1]:
            if th * tw > max_pixels:
                continue
            key = _total_pixels(size, (th, tw), overlap)
            if best is None or key < best:
                best = key
    return best


@pytest.mark.parametrize(
    "size, max_pixels, overlap",
    [
        ((1120, 1680), 1.0e6, 64),
        ((1120, 1680), 0.45e6, 64),
        ((1120, 1680), 0.2e6, 64),
        ((560, 840), 0.1e6, 32),
        ((208, 1000), 30000, 16),
        ((48, 600), 9000, 64),  # a strip lower than twice the overlap: one row
    ],
)
def test_chosen_tiles_fit_and_run_the_fewest_pixels(size, max_pixels, overlap):
    tile = choose_tile(size, max_pixels, overlap)
    assert tile is not None and tile[0] * tile[1] <= max_pixels
    for side, length in zip(tile, size, strict=True):
        assert side == length or (side % 8 == 0 and 2 * overlap < side < length)
    assert _total_pixels(size, tile, overlap) == _brute_force(size, max_pixels, overlap)


def test_a_tile_is_kept_within_the_backends_maximum():
    tile = choose_tile((1120, 1680), 1e6, 64, limit=(512, 640))
    assert tile[0] <= 512 and tile[1] <= 640


def _pointwise(left, right):
    return np.tanh(3 * left - 2 * right)


class Costly:
    """A backend without spatial context that declares a memory cost."""

    memory_cost = MemoryCost(base=100e6, per_pixel=1000.0)

    def __call__(self, left, right):
        return _pointwise(left, right)


def test_a_frame_that_fits_runs_whole_and_one_that_does_not_is_tiled_within_the_bound():
    size = (560, 840)
    whole = Costly.memory_cost.estimate(560 * 840, 560 * 840)
    assert plan_tiling(Costly(), size, max_memory=int(whole) + 1) == (None, None)
    budget = int(whole / 3)
    tiling, note = plan_tiling(Costly(), size, max_memory=budget)
    assert Costly.memory_cost.estimate(tiling.tile[0] * tiling.tile[1], 560 * 840) <= budget
    assert tiling.overlap == 64 and "560x840 needs about" in note and "tiled in" in note
    assert plan_tiling(Costly(), size, max_memory=budget, overlap=32)[0].overlap == 32
    rng = np.random.default_rng(0)
    left, right = (rng.random((1, 3, *size), dtype=np.float32) for _ in range(2))
    out = run_network(Costly(), left, right, max_memory=budget)
    np.testing.assert_allclose(out, _pointwise(left, right), atol=1e-6)


def test_an_explicit_tile_is_honoured_whatever_the_bound():
    tiling, _ = plan_tiling(Costly(), (560, 840), (256, 256), None, max_memory=int(1e12))
    assert tiling.tile == (256, 256)


def test_too_little_memory_for_any_tile_is_one_error():
    with pytest.raises(DPANetError, match="--max-memory 95 MiB: too little for a 560x840 image"):
        plan_tiling(Costly(), (560, 840), max_memory=100_000_000)
    with pytest.raises(DPANetError, match="too little for this model"):
        check_tiling(Costly(), None, None, 100_000_000)
    check_tiling(Costly(), None, None, int(Costly.memory_cost.estimate(MIN_TILE_PIXELS, MIN_TILE_PIXELS)))


class RunsOutAbove:
    """Raises ``error`` for inputs of more than ``pixels`` pixels, as an allocator would."""

    def __init__(self, pixels, error):
        self.pixels, self.error, self.shapes = pixels, error, []

    def __call__(self, left, right):
        self.shapes.append(left.shape[2:])
        if left.shape[2] * left.shape[3] > self.pixels:
            raise self.error
        return _pointwise(left, right)


@pytest.mark.parametrize(
    "error",
    [
        MemoryError(),
        RuntimeError(
            "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Failed to allocate memory for requested buffer"
        ),
        RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    ],
)
def test_a_backend_that_runs_out_of_memory_is_retried_in_smaller_tiles(error):
    rng = np.random.default_rng(1)
    left, right = (rng.random((1, 3, 400, 600), dtype=np.float32) for _ in range(2))
    backend = RunsOutAbove(60_000, error)
    notes = []
    out = run_network(backend, left, right, note=notes.append)
    np.testing.assert_allclose(out, _pointwise(left, right), atol=1e-6)
    assert notes[0].startswith("out of memory untiled: retrying in 400x296 tiles")
    assert all(h * w <= 60_000 for h, w in backend.shapes[len(notes) :])


def test_retries_stop_at_the_smallest_tile_and_other_errors_are_not_retried():
    left = np.zeros((1, 3, 400, 600), dtype=np.float32)
    with pytest.raises(MemoryError, match=r"no room \(also in \d+x\d+ tiles, the smallest tried\)"):
        run_network(RunsOutAbove(1000, MemoryError("no room")), left, left)
    failing = RunsOutAbove(1000, ValueError("a shape the model refuses"))
    with pytest.raises(ValueError, match="refuses"):
        run_network(failing, left, left)
    assert len(failing.shapes) == 1
    assert not is_out_of_memory(ValueError("bad shape"))


def _documented_costs() -> dict[tuple[str, str], tuple[float, float]]:
    text = (REPO / "docs" / "runtime.md").read_text()
    section = text.split("### Memory per pixel", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| (\w+) \| (\w+) \| ([0-9.]+) \| ([0-9]+) \|", section, re.MULTILINE)
    return {(b, p): (float(base), float(px)) for b, p, base, px in rows}


def test_the_cost_table_in_the_docs_is_the_one_the_code_plans_from():
    documented = _documented_costs()
    assert set(documented) == set(MEASURED_COSTS)
    for key, cost in MEASURED_COSTS.items():
        assert documented[key] == (round(cost.base / GIB, 2), round(cost.per_pixel))


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_cli_max_memory_tiles_a_frame_as_an_explicit_tile_would(small_export, tmp_path, capsys, backend):
    """ONNX Runtime and PyTorch (a checkpoint) are both bounded by their measured costs."""
    write_pair(tmp_path, "p", 200, 304, seed=3)
    cost = measured_cost(backend, "fp32", width=4)  # small_export's width
    budget = int(cost.estimate(200 * 304 // 2, 200 * 304))
    common = ["deblur", "-l", str(tmp_path / "p_L.png"), "-r", str(tmp_path / "p_R.png")]
    common += (
        ["--model", str(small_export[1])]
        if backend == "onnxruntime"
        else ["--checkpoint", str(small_export[0])]
    )
    assert main([*common, "-o", str(tmp_path / "bounded.png"), "--max-memory", str(budget)]) == 0
    note = capsys.readouterr().err
    tile = re.search(r"tiled in \d+ (\d+)x(\d+) tiles", note)
    assert tile, note
    explicit = ["--tile", f"{tile.group(1)}x{tile.group(2)}"]
    assert main([*common, "-o", str(tmp_path / "tiled.png"), *explicit]) == 0
    assert main([*common, "-o", str(tmp_path / "whole.png"), "--max-memory", "100G"]) == 0
    bounded, tiled, whole = (read_image(tmp_path / f"{n}.png").pixels for n in ("bounded", "tiled", "whole"))
    np.testing.assert_array_equal(bounded, tiled)
    assert not np.array_equal(bounded, whole)  # the bound did tile


@pytest.mark.parametrize(
    "value, message, code",
    [
        ("4X", "memory size must look like 4G", 2),
        ("1M", "--max-memory 1 MiB: too little for this model", 1),
    ],
)
def test_cli_bad_max_memory_is_one_line(small_export, tmp_path, capsys, value, message, code):
    write_pair(tmp_path, "p", 64, 64, seed=1)
    argv = ["deblur", "-l", str(tmp_path / "p_L.png"), "-r", str(tmp_path / "p_R.png")]
    argv += ["--model", str(small_export[1]), "-o", str(tmp_path / "out.png"), "--max-memory", value]
    if code == 2:
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
    else:
        assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out.png").exists()


def test_parity_runs_every_backend_in_the_same_tiles_the_tightest_needs():
    from dpanet.runtime.parity import BackendRunner, SharedTiling

    class Recording(Costly):
        def __init__(self, per_pixel):
            self.memory_cost = MemoryCost(base=100e6, per_pixel=per_pixel)
            self.shapes = []

        def __call__(self, left, right):
            self.shapes.append(left.shape[2:])
            return _pointwise(left, right)

    light, heavy = Recording(100.0), Recording(1000.0)
    budget = int(heavy.memory_cost.estimate(400 * 600 // 3, 400 * 600))
    assert plan_tiling(light, (400, 600), max_memory=budget) == (None, None)  # alone it runs whole
    notes = []
    tiling = SharedTiling([light, heavy], budget, notes.append)
    rng = np.random.default_rng(2)
    feed = {name: rng.random((1, 3, 400, 600), dtype=np.float32) for name in ("left", "right")}
    outputs = [
        BackendRunner(f"r{i}", b, tiling).infer_impl(feed)["output"] for i, b in enumerate((light, heavy))
    ]
    assert light.shapes == heavy.shapes and len(light.shapes) > 1
    assert light.shapes[0] == plan_tiling(heavy, (400, 600), max_memory=budget)[0].tile
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert len(notes) == 1 and "400x600 needs about" in notes[0]


def test_overlap_without_a_tile_needs_a_bound_that_can_tile():
    plan_tiling(Costly(), (64, 64), None, 16, max_memory=int(1e12))  # applies to the bound's tiles
    with pytest.raises(DPANetError, match="overlap 16: only applies with a tile size"):
        plan_tiling(_pointwise, (64, 64), None, 16, max_memory=int(1e12))  # no cost: never tiles


def test_the_fitted_cost_never_undercuts_a_measured_peak():
    from dpanet.runtime.memory_benchmark import fit

    points = [(36864, 1.16 * GIB), (102400, 1.9 * GIB), (200704, 2.2 * GIB)]  # a step, not a line
    cost = fit(points, width=32)
    for pixels, peak in points:
        assert cost.scaled(32).estimate(pixels, 0) >= peak - 1
    assert cost.per_pixel == pytest.approx(2 * cost.scaled(32).per_pixel)  # normalised to width 64


def test_a_measurement_runs_in_a_fresh_process_and_reports_its_error():
    from dpanet.runtime.memory_benchmark import in_fresh_process

    assert in_fresh_process("json", "loads", '{"peak": 1}') == ({"peak": 1}, "")
    result, error = in_fresh_process("dpanet.runtime.memory", "parse_memory", "lots")
    assert result is None and "memory size must look like 4G" in error


def test_parity_under_a_tight_bound_still_passes_an_exact_export(small_export, tmp_path, capsys):
    """Reference and candidate run in the same tiles, so the bound does not show as a difference."""
    write_pair(tmp_path, "p", 200, 304, seed=5)
    cost = OnnxRuntimeBackend(small_export[1]).memory_cost
    budget = int(cost.estimate(200 * 304 // 2, 200 * 304))
    argv = ["parity", "--checkpoint", str(small_export[0]), "--model", str(small_export[1])]
    argv += ["-l", str(tmp_path / "p_L.png"), "-r", str(tmp_path / "p_R.png"), "--max-memory", str(budget)]
    assert main(argv) == 0
    assert "note: 200x304 needs about" in capsys.readouterr().err
    assert main([*argv[:-1], "1M"]) == 1
    assert "--max-memory 1 MiB: too little" in capsys.readouterr().err
