"""``dpanet bench export``: CPU latency of one network through PyTorch and ONNX Runtime, same run.

Rows: PyTorch eager float32; ONNX Runtime with the portable float32, plugin float32 (our C++
kernels as custom ops) and portable float16 exports. Every model is exported from the same
weights into a temporary folder first. Latency is the median of ``repeats`` timed runs after one
untimed warm-up run per size.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from dpanet.export.exporter import ExportOptions, export_checkpoint
from dpanet.runtime.onnxruntime_backend import OnnxRuntimeBackend
from dpanet.training.checkpoint import load_checkpoint

VARIANTS = (
    ("ORT portable float32", ExportOptions(flavor="portable")),
    ("ORT plugin float32", ExportOptions(flavor="plugin")),
    ("ORT portable float16", ExportOptions(flavor="portable", precision="fp16")),
)


def _median_seconds(run: Callable[[], object], repeats: int) -> float:
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_export_benchmark(checkpoint: Path, sizes: list[tuple[int, int]], repeats: int, log=print) -> str:
    loaded = load_checkpoint(checkpoint)
    model = loaded.model.eval()
    backends: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {}

    def torch_backend(left: np.ndarray, right: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(left), torch.from_numpy(right)).numpy()

    backends["PyTorch eager float32"] = torch_backend
    with tempfile.TemporaryDirectory() as folder:
        for name, options in VARIANTS:
            log(f"exporting {name} ...")
            path = Path(folder) / f"{options.flavor}-{options.precision}.onnx"
            export_checkpoint(checkpoint, path, options)
            backends[name] = OnnxRuntimeBackend(path)
        results: dict[tuple[str, tuple[int, int]], float] = {}
        for h, w in sizes:
            rng = np.random.default_rng(0)
            left, right = (
                rng.random((1, loaded.config.in_channels, h, w), dtype=np.float32) for _ in range(2)
            )
            for name, backend in backends.items():
                log(f"timing {name} at {h} x {w} ...")
                results[name, (h, w)] = _median_seconds(lambda b=backend, x=left, y=right: b(x, y), repeats)
    header = f"{'backend':<24}" + "".join(f"{f'{h}x{w} s':>14}{'vs torch':>10}" for h, w in sizes)
    lines = [
        f"DPANet width {loaded.config.width}, batch 1, torch threads {torch.get_num_threads()}, "
        f"median of {repeats} after a warm-up",
        header,
    ]
    for name in backends:
        row = f"{name:<24}"
        for size in sizes:
            seconds = results[name, size]
            row += f"{seconds:>14.3f}{results['PyTorch eager float32', size] / seconds:>9.2f}x"
        lines.append(row)
    return "\n".join(lines)
