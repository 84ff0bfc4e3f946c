"""``dpanet bench tiling``: what tiling costs in quality, and what it saves in memory and time.

- Quality: PSNR of tiled against untiled output (the untiled run is the reference, both quantised
  to the files' bit depth) for each tile/overlap, over real pairs, with a trained checkpoint.
- Memory and time: one forward of a size x size frame per configuration, each in its own Python
  process so that its peak resident set (``ru_maxrss``) is its own; weights are random (fine for
  memory and time, not for quality).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dpanet.runtime.images import read_image
from dpanet.runtime.metrics import psnr
from dpanet.runtime.pairs import find_pairs
from dpanet.runtime.pipeline import deblur_pair
from dpanet.runtime.tiling import Tiling

Config = tuple[tuple[int, int], int] | None  # (tile, overlap), None: untiled


def describe(config: Config) -> str:
    return "untiled" if config is None else str(Tiling(*config))


def quality_table(pairs_dir: Path, checkpoint: Path, configs: list[Config], limit: int) -> str:
    """Mean and worst PSNR (dB) of tiled against untiled output over the first ``limit`` pairs."""
    from dpanet.training.checkpoint import load_checkpoint
    from dpanet.training.inference import TorchBackend, resolve_device

    loaded = load_checkpoint(checkpoint)
    backend = TorchBackend(loaded.model, resolve_device("cpu"), progress=False)
    pairs = find_pairs(pairs_dir).pairs[: limit or None]
    values: dict[str, list[float]] = {describe(c): [] for c in configs}
    for pair in tqdm(pairs, desc="bench tiling", unit="pair"):
        left, right = read_image(pair.left), read_image(pair.right)
        reference = deblur_pair(left, right, backend, loaded.channel_order)
        scale = 2**reference.bit_depth - 1
        whole = np.rint(reference.pixels * scale) / scale
        for config in configs:
            tiled = deblur_pair(left, right, backend, loaded.channel_order, *config)
            values[describe(config)].append(psnr(np.rint(tiled.pixels * scale) / scale, whole))
    lines = [f"{'tiling':<28}{'mean PSNR':>10}{'worst':>8}  (dB against untiled, {len(pairs)} pair(s))"]
    for name, psnrs in values.items():
        lines.append(f"{name:<28}{np.mean(psnrs):>10.2f}{np.min(psnrs):>8.2f}")
    return "\n".join(lines)


def measure_one(size: tuple[int, int], width: int, config: Config) -> dict:
    """Time and peak RSS of one forward in this process (call it in a fresh one)."""
    import resource

    import torch

    from dpanet.training.config import DPANetConfig
    from dpanet.training.inference import TorchBackend
    from dpanet.training.model import DPANet

    torch.manual_seed(0)
    backend = TorchBackend(DPANet(DPANetConfig(width=width)), torch.device("cpu"), progress=False)
    rng = np.random.default_rng(0)
    left, right = (rng.random((1, 3, *size), dtype=np.float32) for _ in range(2))
    from dpanet.runtime.pipeline import run_network

    start = time.perf_counter()
    run_network(backend, left, right, *(config or (None, None)))
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "peak_rss_gib": peak_kib / 2**20}


def memory_table(size: tuple[int, int], width: int, configs: list[Config]) -> str:
    """One fresh process per configuration; prints as it goes (each may take minutes)."""
    lines = [f"{'tiling':<28}{'time (s)':>10}{'peak RSS (GiB)':>16}  ({size[1]} x {size[0]}, width {width})"]
    print(lines[0], flush=True)
    for config in configs:
        code = (
            "import json, sys; from dpanet.training.tiling_benchmark import measure_one; "
            f"print(json.dumps(measure_one({tuple(size)}, {width}, {config!r})))"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        if done.returncode:
            line = f"{describe(config):<28}{'failed: ' + (done.stderr.strip().splitlines() or ['?'])[-1]}"
        else:
            result = json.loads(done.stdout.strip().splitlines()[-1])
            line = f"{describe(config):<28}{result['seconds']:>10.1f}{result['peak_rss_gib']:>16.2f}"
        print(line, flush=True)
        lines.append(line)
    return "\n".join(lines)
