"""``dpanet bench ops``: the C++/CUDA kernels against their peers at DPANet's shapes, one table.

Shapes are those of one 1680 x 1120 DPDD frame: 64 channels at full size, 128 at 1/2, 256 at 1/4
and 512 at 1/8 (``scale`` shrinks H and W for a quick run). DCN is 3x3, stride 1, padding 1;
correlation has max_displacement 4 and runs where DPANet computes cost volumes (the first three
levels). Every peer is measured in the same run on the same inputs and threads:

- CPU: our DCN vs ONNX Runtime's own DeformConv (a one-node opset-19 model) and vs the PyTorch op;
  our correlation vs the PyTorch op.
- GPU (when CUDA is available): our CUDA kernels in float32 and float16 vs the PyTorch ops and
  torchvision's deform_conv2d where installed, with the achieved fraction of the GPU's float
  matmul rate (DCN) or copy bandwidth (correlation), both measured in the same run.

Times are medians of ``repeats`` runs after one warm-up. "max |diff|" compares each peer's output
with ours.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dpanet.plugins._library import LibraryNotBuilt, library_path

FRAME_H, FRAME_W = 1120, 1680
LEVELS = [(64, 1), (128, 2), (256, 4), (512, 8)]  # channels, downscale of the frame
CORRELATION_LEVELS = LEVELS[:3]
MAX_DISPLACEMENT = 4


@dataclass
class Row:
    device: str
    op: str
    shape: str
    impl: str
    seconds: float
    ours_seconds: float
    work: float  # FLOPs for the GFLOP/s column
    max_diff: float | None = None
    note: str = ""


def median_seconds(fn: Callable[[], object], repeats: int, sync: Callable[[], None] = lambda: None):
    """(median seconds, last result) over `repeats` runs after one warm-up."""
    result = fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def level_shapes(levels, scale: float) -> list[tuple[int, int, int]]:
    return [
        (c, max(1, round(FRAME_H / down * scale)), max(1, round(FRAME_W / down * scale)))
        for c, down in levels
    ]


def dcn_inputs(c: int, h: int, w: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.random((1, c, h, w), dtype=np.float32)
    offset = ((rng.random((1, 18, h, w), dtype=np.float32) - 0.5) * 6).astype(np.float32)
    mask = rng.random((1, 9, h, w), dtype=np.float32)
    weight = ((rng.random((c, c, 3, 3), dtype=np.float32) - 0.5) / np.float32(np.sqrt(9 * c))).astype(
        np.float32
    )
    bias = rng.random(c, dtype=np.float32)
    return x, offset, mask, weight, bias


def dcn_flop(c: int, h: int, w: int) -> float:
    return 2.0 * h * w * c * c * 9


def correlation_flop(c: int, h: int, w: int) -> float:
    return 2.0 * h * w * c * (2 * MAX_DISPLACEMENT + 1) ** 2


def deform_conv_session(c: int, h: int, w: int, threads: int):
    """ONNX Runtime session of one standard DeformConv node (opset 19) with DPANet's geometry."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    def value(name, shape):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    node = helper.make_node(
        "DeformConv",
        ["x", "weight", "offset", "bias", "mask"],
        ["y"],
        kernel_shape=[3, 3],
        pads=[1, 1, 1, 1],
        strides=[1, 1],
        dilations=[1, 1],
        group=1,
        offset_group=1,
    )
    inputs = [
        value("x", [1, c, h, w]),
        value("weight", [c, c, 3, 3]),
        value("offset", [1, 18, h, w]),
        value("bias", [c]),
        value("mask", [1, 9, h, w]),
    ]
    graph = helper.make_graph([node], "deform_conv", inputs, [value("y", [1, c, h, w])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def _other_build_rows(
    fn, y, repeats: int, ours: float, device_op_shape: tuple, flop: float, library
) -> list[Row]:
    """The same call through another build of libdpanet_cpu (``--cpu-library``), e.g. -march=native."""
    if library is None:
        return []
    from dpanet.plugins import cpu

    seconds, y_other = median_seconds(lambda: fn(library), repeats)
    name = f"ours, {cpu.kernels_isa(library)} build"
    return [Row(*device_op_shape, name, seconds, ours, flop, _max_diff(y_other, y))]


def _cpu_dcn_rows(c: int, h: int, w: int, repeats: int, threads: int, library=None) -> list[Row]:
    import torch

    from dpanet.plugins import cpu
    from dpanet.training.ops import modulated_deform_conv2d

    x, offset, mask, weight, bias = inputs = dcn_inputs(c, h, w)

    def run(lib=None):
        return cpu.modulated_deform_conv2d(*inputs, 1, 1, 1, threads=threads, library=lib)

    ours, y = median_seconds(run, repeats)
    other = _other_build_rows(
        run, y, repeats, ours, ("CPU", "DCN", f"{c}x{h}x{w}"), dcn_flop(c, h, w), library
    )
    session = deform_conv_session(c, h, w, threads)
    feed = {"x": x, "weight": weight, "offset": offset, "bias": bias, "mask": mask}
    ort_seconds, y_ort = median_seconds(lambda: session.run(None, feed)[0], repeats)
    tensors = [torch.from_numpy(a) for a in inputs]
    with torch.no_grad():
        torch_seconds, y_torch = median_seconds(lambda: modulated_deform_conv2d(*tensors, 1, 1, 1), repeats)
    shape, flop = f"{c}x{h}x{w}", dcn_flop(c, h, w)
    workspace = cpu.deform_conv_workspace_bytes(x.shape, weight.shape, threads=threads)
    return [
        Row(
            "CPU",
            "DCN",
            shape,
            "ours (C++)",
            ours,
            ours,
            flop,
            note=f"workspace {workspace / 2**20:.0f} MiB",
        ),
        *other,
        Row("CPU", "DCN", shape, "ONNX Runtime DeformConv", ort_seconds, ours, flop, _max_diff(y_ort, y)),
        Row("CPU", "DCN", shape, "PyTorch op", torch_seconds, ours, flop, _max_diff(y_torch.numpy(), y)),
    ]


def _cpu_correlation_rows(c: int, h: int, w: int, repeats: int, threads: int, library=None) -> list[Row]:
    import torch

    from dpanet.plugins import cpu
    from dpanet.training.ops import correlation

    rng = np.random.default_rng(1)
    first, second = (rng.random((1, c, h, w), dtype=np.float32) for _ in range(2))

    def run(lib=None):
        return cpu.correlation(first, second, MAX_DISPLACEMENT, threads=threads, library=lib)

    ours, y = median_seconds(run, repeats)
    shape_key = ("CPU", "correlation", f"{c}x{h}x{w}")
    other = _other_build_rows(run, y, repeats, ours, shape_key, correlation_flop(c, h, w), library)
    pair = torch.from_numpy(first), torch.from_numpy(second)
    with torch.no_grad():
        torch_seconds, y_torch = median_seconds(lambda: correlation(*pair, MAX_DISPLACEMENT), repeats)
    shape, flop = f"{c}x{h}x{w}", correlation_flop(c, h, w)
    diff = _max_diff(y_torch.numpy(), y)
    return [
        Row("CPU", "correlation", shape, "ours (C++)", ours, ours, flop),
        *other,
        Row("CPU", "correlation", shape, "PyTorch op", torch_seconds, ours, flop, diff),
    ]


def cpu_rows(scale: float, repeats: int, threads: int, library=None) -> list[Row]:
    import torch

    torch.set_num_threads(threads)
    rows = []
    for c, h, w in level_shapes(LEVELS, scale):
        rows += _cpu_dcn_rows(c, h, w, repeats, threads, library)
    for c, h, w in level_shapes(CORRELATION_LEVELS, scale):
        rows += _cpu_correlation_rows(c, h, w, repeats, threads, library)
    return rows


def _matmul_rate(dtype, n: int = 8192, repeats: int = 10) -> float:
    """FLOP/s of a large square matmul in `dtype` on the GPU (the reference for DCN)."""
    import torch

    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    seconds, _ = median_seconds(lambda: a @ b, repeats, torch.cuda.synchronize)
    return 2.0 * n**3 / seconds


def _copy_bandwidth(size: int = 1 << 30, repeats: int = 10) -> float:
    """Bytes/s read + written by a device-to-device copy (the reference for correlation)."""
    import torch

    src = torch.empty(size, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    seconds, _ = median_seconds(lambda: dst.copy_(src), repeats, torch.cuda.synchronize)
    return 2.0 * size / seconds


def _gpu_dcn_rows(c: int, h: int, w: int, dtype, repeats: int, matmul_rate: float) -> list[Row]:
    import torch

    from dpanet.plugins import cuda
    from dpanet.training.ops import modulated_deform_conv2d

    x, offset, mask, weight, bias = (torch.from_numpy(a).to("cuda", dtype) for a in dcn_inputs(c, h, w))
    peers = {"PyTorch op": lambda: modulated_deform_conv2d(x, offset, mask, weight, bias, 1, 1, 1)}
    try:
        from torchvision.ops import deform_conv2d

        peers["torchvision deform_conv2d"] = lambda: deform_conv2d(
            x, offset, weight, bias, padding=1, mask=mask
        )
    except (ImportError, RuntimeError):  # absent, or built for another torch
        pass
    sync, name = torch.cuda.synchronize, str(dtype).removeprefix("torch.")
    shape, flop = f"{c}x{h}x{w}", dcn_flop(c, h, w)
    with torch.no_grad():
        ours, y = median_seconds(
            lambda: cuda.modulated_deform_conv2d(x, offset, mask, weight, bias), repeats, sync
        )
        fraction = f"{flop / ours / matmul_rate:.0%} of {name} matmul"
        rows = [Row("GPU", f"DCN {name}", shape, "ours (CUDA)", ours, ours, flop, note=fraction)]
        for peer, fn in peers.items():
            seconds, y_peer = median_seconds(fn, repeats, sync)
            diff = (y_peer.float() - y.float()).abs().max().item()
            rows.append(Row("GPU", f"DCN {name}", shape, peer, seconds, ours, flop, diff))
    return rows


def _gpu_correlation_rows(c: int, h: int, w: int, dtype, repeats: int, bandwidth: float) -> list[Row]:
    import torch

    from dpanet.plugins import cuda
    from dpanet.training.ops import correlation

    first, second = (torch.rand(1, c, h, w, device="cuda", dtype=dtype) for _ in range(2))
    sync, name = torch.cuda.synchronize, str(dtype).removeprefix("torch.")
    shape, flop = f"{c}x{h}x{w}", correlation_flop(c, h, w)
    moved = first.element_size() * h * w * (2 * c + (2 * MAX_DISPLACEMENT + 1) ** 2)
    with torch.no_grad():
        ours, y = median_seconds(lambda: cuda.correlation(first, second, MAX_DISPLACEMENT), repeats, sync)
        seconds, y_peer = median_seconds(lambda: correlation(first, second, MAX_DISPLACEMENT), repeats, sync)
    fraction = f"{moved / ours / bandwidth:.0%} of copy bandwidth"
    diff = (y_peer.float() - y.float()).abs().max().item()
    return [
        Row("GPU", f"correlation {name}", shape, "ours (CUDA)", ours, ours, flop, note=fraction),
        Row("GPU", f"correlation {name}", shape, "PyTorch op", seconds, ours, flop, diff),
    ]


def gpu_rows(scale: float, repeats: int) -> list[Row]:
    import torch

    bandwidth = _copy_bandwidth()
    rows = []
    for dtype in (torch.float32, torch.float16):
        rate = _matmul_rate(dtype)
        for c, h, w in level_shapes(LEVELS, scale):
            rows += _gpu_dcn_rows(c, h, w, dtype, repeats, rate)
        for c, h, w in level_shapes(CORRELATION_LEVELS, scale):
            rows += _gpu_correlation_rows(c, h, w, dtype, repeats, bandwidth)
    return rows


def with_totals(rows: list[Row]) -> list[Row]:
    """Adds, after each op's levels, one row per implementation summed over the levels."""
    out: list[Row] = []
    for i, row in enumerate(rows):
        out.append(row)
        if i + 1 < len(rows) and (rows[i + 1].device, rows[i + 1].op) == (row.device, row.op):
            continue
        group = [r for r in rows if (r.device, r.op) == (row.device, row.op)]
        ours = sum(r.seconds for r in group if r.impl == group[0].impl)
        for impl in dict.fromkeys(r.impl for r in group):
            members = [r for r in group if r.impl == impl]
            diffs = [r.max_diff for r in members if r.max_diff is not None]
            seconds = sum(r.seconds for r in members)
            work = sum(r.work for r in members)
            out.append(
                Row(row.device, row.op, "all levels", impl, seconds, ours, work, max(diffs, default=None))
            )
    return out


def format_table(rows: list[Row]) -> str:
    header = (
        f"{'device':<7}{'op':<20}{'C x H x W':<15}{'implementation':<27}{'ms':>10}{'peer/ours':>11}"
        f"{'GFLOP/s':>10}{'max |diff|':>12}  note"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        ratio = "" if r.impl.startswith("ours") else f"{r.seconds / r.ours_seconds:.2f}x"
        diff = "" if r.max_diff is None else f"{r.max_diff:.1e}"
        lines.append(
            f"{r.device:<7}{r.op:<20}{r.shape:<15}{r.impl:<27}{r.seconds * 1e3:>10.1f}{ratio:>11}"
            f"{r.work / r.seconds / 1e9:>10.1f}{diff:>12}  {r.note}".rstrip()
        )
    return "\n".join(lines)


def run_ops_benchmark(scale: float = 1.0, repeats: int = 3, threads: int = 0, cpu_library=None) -> str:
    """``cpu_library``: another build's libdpanet_cpu.so, timed beside the installed one (rows
    "ours, <isa> build"), e.g. a -march=native build against the portable install (docs/plugins.md)."""
    import os

    import onnxruntime
    import torch

    from dpanet.plugins import cpu

    threads = threads if threads > 0 else os.cpu_count() or 1
    rows = cpu_rows(scale, repeats, threads, cpu_library)
    gpu, skipped = "", "CUDA is not available to torch on this machine"
    if torch.cuda.is_available():
        try:
            library_path("cuda")
            rows += gpu_rows(scale, repeats)
            gpu = f", GPU {torch.cuda.get_device_name()}"
        except LibraryNotBuilt as exc:
            skipped = str(exc)
    size = f"{round(FRAME_H * scale)}x{round(FRAME_W * scale)} (scale {scale} of 1120x1680)"
    notes = [
        "peer/ours: the peer's time over ours (above 1: ours is faster). DCN 3x3, stride 1, padding 1, "
        "random offsets in [-3, 3]; correlation d = 4 at the levels where DPANet computes cost volumes.",
    ]
    if not gpu:
        notes.append(f"GPU section: skipped, {skipped}.")
    return "\n".join(
        [
            f"DPANet op shapes for a {size} frame, {threads} CPU threads, median of {repeats}, "
            f"CPU kernels {cpu.kernels_isa()}, torch {torch.__version__}, "
            f"onnxruntime {onnxruntime.__version__}{gpu}",
            format_table(with_totals(rows)),
            *notes,
        ]
    )
