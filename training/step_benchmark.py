"""``dpanet bench train``: the cost of a training step (forward, backward, Adam) on this machine,
float32 and bfloat16 autocast measured in the same run, and what it makes of the paper's recipe.

A step is what :class:`dpanet.training.trainer.Trainer` runs: the network from the release's
initialisation, Charbonnier loss, Adam at 2e-5, on random views of the given size. Each step is
timed by the wall clock and by the process's CPU time (all its threads): on a shared machine the
CPU time is the steadier measure of the work. GFLOP per CPU second counts 3 x the forward's
multiply-accumulates x 2 (the usual estimate: the backward costs about twice the forward); the
recipe's CPU-hours are its 450 epochs of 1,750 steps of 4 patches (``configs/dpdd-paper-mse.toml``
then ``dpdd-paper.toml``) at the measured CPU time per patch.
"""

from __future__ import annotations

import contextlib
import statistics
import time

import torch

from dpanet.training.complexity import measure
from dpanet.training.config import DPANetConfig
from dpanet.training.initialisation import initialise
from dpanet.training.losses import charbonnier
from dpanet.training.model import DPANet

RECIPE_PATCHES = (300 + 150) * 1750 * 4
"""Patches the paper's recipe trains on: 300 + 150 epochs of 1,750 steps of batch 4."""
PRECISIONS = {"float32": None, "bfloat16 autocast": torch.bfloat16}


def time_steps(
    config: DPANetConfig, batch: int, size: tuple[int, int], dtype, steps: int
) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of each of ``steps`` training steps after one untimed warm-up step."""
    torch.manual_seed(0)
    model = DPANet(config).train()
    initialise(model, "release")
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-5)
    left, right, target = (torch.rand(batch, 3, *size) for _ in range(3))
    autocast = torch.autocast("cpu", dtype=dtype) if dtype is not None else contextlib.nullcontext()
    seconds = []
    for _ in range(steps + 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        with autocast:
            output = model(left, right)
        loss = charbonnier(output.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seconds.append((time.perf_counter() - start, time.process_time() - cpu_start))
    return seconds[1:]


def run_step_benchmark(width: int, batch: int, size: tuple[int, int], steps: int) -> str:
    config = DPANetConfig(width=width)
    macs = measure(config, *size).total_macs * batch
    rows = {}
    for name, dtype in PRECISIONS.items():
        timed = time_steps(config, batch, size, dtype, steps)
        rows[name] = (statistics.median(t[0] for t in timed), statistics.median(t[1] for t in timed))
    base = rows["float32"][1]
    lines = [
        f"DPANet width {width}, training step on batch {batch} of {size[0]}x{size[1]}, "
        f"{torch.get_num_threads()} threads, median of {steps} step(s) after a warm-up, "
        f"torch {torch.__version__}",
        f"{'precision':<20}{'wall s':>8}{'CPU s':>8}{'CPU vs float32':>16}{'GFLOP/CPU s':>13}"
        f"{'recipe, CPU-hours':>19}",
    ]
    for name, (wall, cpu) in rows.items():
        hours = cpu / batch * RECIPE_PATCHES / 3600
        rate = 6 * macs / cpu / 1e9
        lines.append(f"{name:<20}{wall:>8.2f}{cpu:>8.2f}{cpu / base:>16.2f}{rate:>13.1f}{hours:>19.0f}")
    lines.append(
        f"recipe: {RECIPE_PATCHES:,} patches (450 epochs x 1,750 steps x 4) at this CPU time per patch; "
        f"forward {macs / batch / 1e9:.1f} GMAC per patch"
    )
    return "\n".join(lines)
