"""``dpanet bench export``: CPU latency of one network through PyTorch and ONNX Runtime, same run.

Rows (``--backends``, default all but the int8 one): PyTorch eager float32; ONNX Runtime with the
portable float32, plugin float32 (our C++ kernels as custom ops) and portable float16 exports; and
``int8-cpu``, the plugin flavour calibrated for ``--target cpu`` (docs/int8.md; calibrated on two
random pairs: ranges do not change the speed). Every model comes from the same weights, written to
a temporary folder first. Latency is the median of ``repeats`` timed runs after one untimed warm-up
run per size; ratios are against the first row. Every backend uses the same number of threads.
With ``profile``, each ONNX Runtime row is run once more per size under ONNX Runtime's profiler
after a warm-up, and the time of its kernels is summed by operator type (:func:`kernel_seconds_by_op`).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import torch

from dpanet.export.exporter import ExportOptions, export_checkpoint, export_model
from dpanet.runtime.onnxruntime_backend import OnnxRuntimeBackend
from dpanet.training.checkpoint import LoadedCheckpoint, load_checkpoint

EXPORTS = {
    "portable": ("ORT portable float32", ExportOptions(flavor="portable")),
    "plugin": ("ORT plugin float32", ExportOptions(flavor="plugin")),
    "portable-fp16": ("ORT portable float16", ExportOptions(flavor="portable", precision="fp16")),
}
BACKENDS = ("torch", *EXPORTS, "int8-cpu")
DEFAULT_BACKENDS = ("torch", *EXPORTS)
INT8_CALIBRATION_SIZE = (64, 64)


def _median_seconds(run: Callable[[], object], repeats: int) -> float:
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _int8_cpu_model(loaded: LoadedCheckpoint, path: Path) -> None:
    """The plugin flavour with the cpu target's Q/DQ, calibrated on two random pairs."""
    from dpanet.calib.choices import DEFAULT_METHOD
    from dpanet.calib.data import CalibrationPair
    from dpanet.calib.layout import offset_branch_convs
    from dpanet.calib.quantize import calibrate, finish, place_qdq

    graphs = {f: export_model(loaded, ExportOptions(flavor=f)) for f in ("portable", "plugin")}
    rng = np.random.default_rng(1)
    shape = (1, loaded.config.in_channels, *INT8_CALIBRATION_SIZE)
    views = rng.random((2, 2, *shape), dtype=np.float32)
    pairs = [CalibrationPair(f"random{i}", left, right, None) for i, (left, right) in enumerate(views)]
    calibration = calibrate(graphs["portable"], graphs["plugin"], pairs, "cpu", DEFAULT_METHOD, path.parent)
    model = place_qdq(graphs["plugin"], calibration, offset_branch_convs(graphs["plugin"]))
    onnx.save_model(finish(model, calibration, "plugin", []), path)


def kernel_seconds_by_op(trace: str | Path) -> dict[str, float]:
    """Operator type -> seconds its kernels took in ONNX Runtime's profiler ``trace``, for the runs
    after the first (the warm-up: weight pre-packing, arena growth)."""
    events = json.loads(Path(trace).read_text())
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")
    if len(runs) < 2:
        raise ValueError(f"{trace}: needs a warm-up run and a profiled run, found {len(runs)} run(s)")
    after_warm_up = runs[0][1]
    seconds: dict[str, float] = {}
    for event in events:
        kernel = event.get("cat") == "Node" and event["name"].endswith("_kernel_time")
        if kernel and event["ts"] >= after_warm_up:
            op = event["args"]["op_name"]
            seconds[op] = seconds.get(op, 0.0) + event["dur"] * 1e-6 / (len(runs) - 1)
    return seconds


def _profile_table(name: str, size: tuple[int, int], seconds: dict[str, float], top: int = 8) -> list[str]:
    total = sum(seconds.values())
    ranked = sorted(seconds.items(), key=lambda item: -item[1])
    rows = ranked[:top] + ([("other", sum(s for _, s in ranked[top:]))] if len(ranked) > top else [])
    lines = [
        f"{name} at {size[0]}x{size[1]}: {total:.3f} s in kernels per run",
        f"  {'operator':<30}{'s':>9}{'share':>9}",
    ]
    lines += [f"  {op:<30}{s:>9.3f}{100 * s / total:>8.1f}%" for op, s in rows]
    return lines


def run_export_benchmark(
    checkpoint: Path,
    sizes: list[tuple[int, int]],
    repeats: int,
    backends: tuple[str, ...] = DEFAULT_BACKENDS,
    threads: int | None = None,
    log=print,
    profile: bool = False,
) -> str:
    loaded = load_checkpoint(checkpoint)
    model = loaded.model.eval()
    if threads:
        torch.set_num_threads(threads)
    runners: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {}
    paths: dict[str, Path] = {}
    profiles: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        for backend in backends:
            if backend == "torch":

                def torch_backend(left: np.ndarray, right: np.ndarray) -> np.ndarray:
                    with torch.no_grad():
                        return model(torch.from_numpy(left), torch.from_numpy(right)).numpy()

                runners["PyTorch eager float32"] = torch_backend
                continue
            path = Path(folder) / f"{backend}.onnx"
            if backend == "int8-cpu":
                name = "ORT plugin int8 (cpu)"
                log(f"calibrating {name} ...")
                _int8_cpu_model(loaded, path)
            else:
                name, options = EXPORTS[backend]
                log(f"exporting {name} ...")
                export_checkpoint(checkpoint, path, options)
            runners[name] = OnnxRuntimeBackend(path, threads)
            paths[name] = path
        results: dict[tuple[str, tuple[int, int]], float] = {}
        for h, w in sizes:
            rng = np.random.default_rng(0)
            left, right = (
                rng.random((1, loaded.config.in_channels, h, w), dtype=np.float32) for _ in range(2)
            )
            for name, runner in runners.items():
                log(f"timing {name} at {h}x{w} ...")
                results[name, (h, w)] = _median_seconds(lambda b=runner, x=left, y=right: b(x, y), repeats)
            if profile:
                for name, path in paths.items():
                    log(f"profiling {name} at {h}x{w} ...")
                    profiled = OnnxRuntimeBackend(path, threads, profile=Path(folder) / "profile")
                    for _ in range(2):  # the warm-up, then the run kernel_seconds_by_op reads
                        profiled(left, right)
                    profiles += _profile_table(name, (h, w), kernel_seconds_by_op(profiled.end_profiling()))
    first = next(iter(runners))
    header = f"{'backend':<24}" + "".join(f"{f'{h}x{w} s':>14}{'ratio':>10}" for h, w in sizes)
    lines = [
        f"DPANet width {loaded.config.width}, batch 1, {threads or torch.get_num_threads()} threads, "
        f"median of {repeats} after a warm-up; ratio = {first} time / row time",
        header,
    ]
    for name in runners:
        row = f"{name:<24}"
        for size in sizes:
            seconds = results[name, size]
            row += f"{seconds:>14.3f}{results[first, size] / seconds:>9.2f}x"
        lines.append(row)
    return "\n".join(lines + profiles)
