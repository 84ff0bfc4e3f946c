"""``dpanet bench memory``: the per-pixel memory cost of a backend and precision, measured.

For each size, a fresh Python process loads the model (:class:`~dpanet.runtime.deblurrer.Deblurrer`,
so any backend) and runs the network on random N x 3 x H x W inputs ``RUNS`` times, as a tiled
frame runs one tile after another (an allocator that keeps or grows its pool shows up); its peak
resident set (``ru_maxrss``) is the figure. A line through (pixels, peak) gives the
:class:`~dpanet.runtime.memory.MemoryCost` (:func:`fit`): ``base`` (the intercept) and
``per_pixel`` (the slope), the latter normalised to the released width (64) for the table in
:data:`dpanet.runtime.memory.MEASURED_COSTS`. Torch-free unless the model is a checkpoint.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

from dpanet.errors import DPANetError
from dpanet.runtime.memory import GIB, REFERENCE_WIDTH, MemoryCost

RUNS = 2


def measure_peak(model: str, size: tuple[int, int], threads: int | None = None) -> dict:
    """Peak RSS and seconds per forward of ``RUNS`` forwards at ``size`` in this process (call it
    in a fresh one), with the model's backend, precision and width."""
    import resource

    from dpanet.runtime.deblurrer import Deblurrer

    deblurrer = Deblurrer(model, threads=threads, max_memory=1 << 50)
    backend = deblurrer.backend
    rng = np.random.default_rng(0)
    left, right = (rng.random((1, 3, *size), dtype=np.float32) for _ in range(2))
    start = time.perf_counter()
    for _ in range(RUNS):
        backend(left, right)
    seconds = (time.perf_counter() - start) / RUNS
    info = getattr(backend, "info", None)
    return {
        "backend": deblurrer.backend_name,
        "precision": info.precision if info is not None else "fp32",
        "width": info.config.get("width", REFERENCE_WIDTH)
        if info is not None
        else backend.model.config.width,
        "seconds": seconds,
        "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def in_fresh_process(module: str, function: str, *args) -> tuple[dict | None, str]:
    """``module.function(*args)`` (returning a JSON-able dict) in a fresh Python process, so its
    peak resident set is its own: (the result, "") or (None, the last line of its errors)."""
    code = f"import json; from {module} import {function}; print(json.dumps({function}(*{args!r})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if done.returncode:
        return None, (done.stderr.strip().splitlines() or ["?"])[-1]
    return json.loads(done.stdout.strip().splitlines()[-1]), ""


def fit(points: list[tuple[int, float]], width: int) -> MemoryCost:
    """The least-squares slope through (pixels, peak bytes), raised to lie on or above every
    point (an allocator that grows in steps is not a line; the estimate must not undercut a
    measured peak), its slope normalised to width 64."""
    pixels = np.array([p for p, _ in points], dtype=np.float64)
    peaks = np.array([b for _, b in points], dtype=np.float64)
    slope = max(float(np.polyfit(pixels, peaks, 1)[0]), 0.0)
    base = float(np.max(peaks - slope * pixels))
    return MemoryCost(base=base, per_pixel=slope * REFERENCE_WIDTH / width)


def memory_cost_table(models: list[str], sizes: list[tuple[int, int]], threads: int | None = None) -> str:
    """One fresh process per model and size; prints each measurement as it comes (minutes each)."""
    if len(sizes) < 2:
        raise DPANetError("--sizes: give at least two sizes to fit a line")
    rows = []
    for model in models:
        points, result = [], None
        for size in sizes:
            result, error = in_fresh_process(__name__, "measure_peak", model, tuple(size), threads)
            if result is None:
                raise DPANetError(f"{model} at {size[0]}x{size[1]}: the measurement failed ({error})")
            points.append((size[0] * size[1], result["peak_bytes"]))
            print(
                f"{model}: {size[0]}x{size[1]}: peak {result['peak_bytes'] / GIB:.3f} GiB, "
                f"{result['seconds']:.1f} s per forward",
                flush=True,
            )
        cost = fit(points, result["width"])
        rows.append(
            f"| {result['backend']} | {result['precision']} | {cost.base / GIB:.2f} | "
            f"{cost.per_pixel:.0f} | {result['width']} | {model} |"
        )
    header = [
        "| backend | precision | base (GiB) | bytes per pixel (width 64) | width measured | model |",
        "|---|---|---|---|---|---|",
    ]
    return "\n".join(header + rows)
