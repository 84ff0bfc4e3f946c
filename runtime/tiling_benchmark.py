"""``dpanet bench tiling``: what tiling costs in quality, and what it saves in memory and time,
through ONNX Runtime (the deployed CPU path; torch-free).

- Quality: PSNR of tiled against untiled output (the untiled run is the reference, both quantised
  to the files' bit depth) for each tile/overlap over real pairs; use a trained model.
- Memory and time: one forward of an HxW frame per configuration, each in a fresh Python process
  so that its peak resident set (``ru_maxrss``) is its own; random weights are fine here.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dpanet.errors import DPANetError
from dpanet.runtime.images import read_image
from dpanet.runtime.memory_benchmark import in_fresh_process
from dpanet.runtime.metrics import psnr
from dpanet.runtime.onnxruntime_backend import OnnxRuntimeBackend
from dpanet.runtime.pairs import find_pairs
from dpanet.runtime.pipeline import check_pair, deblur_pair, padded_size, run_network
from dpanet.runtime.tiling import Tiling, tile_starts

Config = tuple[tuple[int, int], int] | None  # (tile, overlap), None: untiled


def describe(config: Config) -> str:
    return "untiled" if config is None else str(Tiling(*config))


def layout(size: tuple[int, int], config: Config) -> tuple[int, int | None]:
    """(tiles, smallest overlap actually used) for a padded H x W image; tiles are spread evenly,
    so neighbours often share more than the overlap asked for."""
    if config is None:
        return 1, None
    (th, tw), overlap = config
    shared = []
    count = 1
    for length, tile in zip(size, (th, tw), strict=True):
        starts = tile_starts(length, tile, overlap)
        count *= len(starts)
        shared += [a + tile - b for a, b in zip(starts, starts[1:], strict=False)]
    return count, min(shared) if shared else None


def quality_table(pairs_dir: Path, model: Path, configs: list[Config], limit: int) -> str:
    """PSNR (dB) of tiled against untiled output over the first ``limit`` pairs: of the float
    outputs (mean, worst) and of the files written (quantised to their bit depth, mean)."""
    backend = OnnxRuntimeBackend(model)
    pairs = find_pairs(pairs_dir).pairs[: limit or None]
    if not pairs:
        raise DPANetError(f"--pairs {pairs_dir}: no complete pair")
    for pair in pairs:  # every input checked before the progress bar (docs/cli.md)
        check_pair(read_image(pair.left), read_image(pair.right))
    floats: dict[str, list[float]] = {describe(c): [] for c in configs}
    files: dict[str, list[float]] = {describe(c): [] for c in configs}
    layouts = {}
    for pair in tqdm(pairs, desc="bench tiling", unit="pair", disable=None):  # on a terminal only
        left, right = read_image(pair.left), read_image(pair.right)
        reference = deblur_pair(left, right, backend, backend.channel_order)
        scale = 2**reference.bit_depth - 1
        for config in configs:
            layouts.setdefault(describe(config), layout(padded_size(*left.size), config))
            tiled = deblur_pair(left, right, backend, backend.channel_order, *config)
            floats[describe(config)].append(psnr(tiled.pixels, reference.pixels))
            files[describe(config)].append(
                psnr(np.rint(tiled.pixels * scale) / scale, np.rint(reference.pixels * scale) / scale)
            )
    first = pairs[0].left.name
    lines = [
        f"PSNR (dB) of tiled against untiled output, {len(pairs)} pair(s); tiles and smallest shared "
        f"width for the first pair ({first})",
        f"{'tiling':<28}{'tiles':>6}{'shared':>8}{'float mean':>12}{'worst':>8}{'file mean':>11}",
    ]
    for name in floats:
        count, shared = layouts[name]
        lines.append(
            f"{name:<28}{count:>6}{shared if shared is not None else '-':>8}{np.mean(floats[name]):>12.2f}"
            f"{np.min(floats[name]):>8.2f}{np.mean(files[name]):>11.2f}"
        )
    return "\n".join(lines)


def measure_one(model: str, size: tuple[int, int], config: Config) -> dict:
    """Time and peak RSS of one forward in this process (call it in a fresh one)."""
    import resource

    backend = OnnxRuntimeBackend(model)
    rng = np.random.default_rng(0)
    left, right = (rng.random((1, 3, *size), dtype=np.float32) for _ in range(2))
    start = time.perf_counter()
    run_network(backend, left, right, *(config or (None, None)))
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "peak_rss_gib": peak_kib / 2**20}


def memory_table(model: Path, size: tuple[int, int], configs: list[Config]) -> str:
    """One fresh process per configuration; prints as it goes (each may take minutes)."""
    lines = [f"{'tiling':<28}{'time (s)':>10}{'peak RSS (GiB)':>16}  ({size[0]}x{size[1]}, {model.name})"]
    print(lines[0], flush=True)
    for config in configs:
        result, error = in_fresh_process(__name__, "measure_one", str(model), tuple(size), config)
        if result is None:
            line = f"{describe(config):<28}failed: {error}"
        else:
            line = f"{describe(config):<28}{result['seconds']:>10.1f}{result['peak_rss_gib']:>16.2f}"
        print(line, flush=True)
        lines.append(line)
    return "\n".join(lines)
