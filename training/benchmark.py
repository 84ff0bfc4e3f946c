"""``dpanet bench model``: forward latency of DPANet on this machine, float32 and bfloat16 autocast.

Prints one table: latency, achieved GFLOP/s (2 x counted MACs / latency) next to the float32 and
bfloat16 matmul rates measured in the same run, and the share of forward time spent inside the
correlation and DCN ops (from the PyTorch profiler).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from dpanet.training.complexity import measure
from dpanet.training.config import DPANetConfig
from dpanet.training.model import DPANet

OP_NAMES = {"correlation": "dpanet::correlation", "dcn": "dpanet::modulated_deform_conv2d"}
# Kineto (the profiler's backend) logs its stages from C++ straight to file descriptor 2, whatever
# KINETO_LOG_LEVEL says: "USDT:2026-12-03 07:27:19 14049:14049 SyncActivityProfilerHandler.cpp:52] ..."
KINETO_LINE = re.compile(rb"^[A-Z]+:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \d+:\d+ \w+\.cpp:\d+\]")


def matmul_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def _autocast(dtype: torch.dtype):
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=dtype)


@dataclass
class ModelTiming:
    precision: str
    seconds: float
    op_share: dict[str, float]


@contextlib.contextmanager
def kineto_quiet() -> Iterator[None]:
    """Hold back the profiler backend's log lines (:data:`KINETO_LINE`) written to stderr in this
    block; other stderr output is passed on when the block ends."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().splitlines(keepends=True) if not KINETO_LINE.match(line)]
            if kept:
                sys.stderr.buffer.write(b"".join(kept))
                sys.stderr.flush()


def op_seconds(events, op: str) -> float:
    """CPU seconds spent inside ``op``, each call counted once: under autocast the op's autocast
    kernel calls the op again, and the profiler records both calls, one inside the other."""
    total = 0.0
    for event in events:
        if event.name != op:
            continue
        parent = event.cpu_parent
        while parent is not None and parent.name != op:
            parent = parent.cpu_parent
        if parent is None:
            total += event.cpu_time_total
    return total / 1e6


def time_model(model: DPANet, views: torch.Tensor, dtype: torch.dtype, repeats: int) -> ModelTiming:
    with torch.no_grad(), _autocast(dtype):
        model(views, views)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            model(views, views)
        seconds = (time.perf_counter() - start) / repeats
        with kineto_quiet(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            model(views, views)
            profiled = time.perf_counter() - start
    events = prof.events()
    share = {name: op_seconds(events, op) / profiled for name, op in OP_NAMES.items()}
    return ModelTiming({torch.float32: "float32", torch.bfloat16: "bfloat16 autocast"}[dtype], seconds, share)


def run_model_benchmark(height: int, width: int, repeats: int, config: DPANetConfig | None = None) -> str:
    config = config or DPANetConfig()
    torch.manual_seed(0)
    model = DPANet(config).eval()
    # Non-trivial offsets: the released offset predictors are zero-initialised, which would make
    # every DCN sample on the pixel grid; real weights do not.
    for module in model.modules():
        if module.__class__.__name__ == "OffsetPredictor":
            torch.nn.init.normal_(module.conv.weight, std=1e-3)
    views = torch.rand(1, config.in_channels, height, width)
    macs = measure(config, height, width).total_macs
    rates = {"float32": matmul_gflops(torch.float32), "bfloat16 autocast": matmul_gflops(torch.bfloat16)}
    rows = [time_model(model, views, dtype, repeats) for dtype in (torch.float32, torch.bfloat16)]
    lines = [
        f"DPANet width {config.width}, {height}x{width}, batch 1, {torch.get_num_threads()} threads, "
        f"{macs / 1e9:.2f} GMAC per forward, torch {torch.__version__}",
        f"{'precision':<20}{'latency s':>10}{'GFLOP/s':>10}{'matmul GFLOP/s':>16}{'model/matmul':>14}"
        f"{'corr %':>8}{'DCN %':>8}{'corr+DCN %':>12}",
    ]
    for r in rows:
        achieved = 2 * macs / r.seconds / 1e9
        peak = rates[r.precision]
        corr, dcn = 100 * r.op_share["correlation"], 100 * r.op_share["dcn"]
        lines.append(
            f"{r.precision:<20}{r.seconds:>10.2f}{achieved:>10.1f}{peak:>16.1f}{achieved / peak:>14.2f}"
            f"{corr:>8.1f}{dcn:>8.1f}{corr + dcn:>12.1f}"
        )
    lines.append("matmul: 2048^3 in the same run; op shares from one profiled forward.")
    return "\n".join(lines)
