"""Memory-bounded inference: how much memory a run may take, what a tile costs, which tiles fit.

A run's peak memory is modelled as ``base + ACTIVATION_MARGIN * per_pixel * tile pixels +
IMAGE_BYTES_PER_PIXEL * image pixels``: ``base`` (weights, runtime) and ``per_pixel`` (the
network's activations per pixel of the tile it runs) are measured per backend and precision with
``dpanet bench memory`` on the released architecture (width 64) and listed in
:data:`MEASURED_COSTS` (docs/runtime.md holds the same table with the command). Activations scale
with the network's width, so another width's ``per_pixel`` is scaled by ``width / 64``. The image
term is the arrays the pipeline itself holds for the whole frame (counted, below).

The budget (``--max-memory``) defaults to :data:`DEFAULT_FRACTION` of the memory available when
the run starts: RAM for ONNX Runtime and PyTorch on the CPU, free device memory for TensorRT and
PyTorch on CUDA. A frame whose estimate exceeds the budget is tiled with the fewest, largest tiles
that fit (:func:`choose_tile`); a backend that still runs out of memory is retried with smaller
tiles (:func:`smaller_tile`, used by :mod:`dpanet.runtime.pipeline`). Torch-free.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from dpanet.contract import SIZE_MULTIPLE
from dpanet.errors import DPANetError
from dpanet.runtime.tiling import tile_starts

GIB = 2**30

DEFAULT_FRACTION = 0.75
"""Share of the available memory a run may take by default: the measured costs are peaks of one
process on a quiet machine, and the rest is headroom for the estimate's error and for other
programs."""

REFERENCE_WIDTH = 64
"""The released architecture's width, at which :data:`MEASURED_COSTS` were measured."""

IMAGE_BYTES_PER_PIXEL = 112
"""Bytes the pipeline holds per image pixel besides the network (counted, not measured): both
views as float32 file pixels and network arrays (2 x 12 + 2 x 12), the tiled sum (float64, 24) and
weight sum (8), the float32 output (12) and its file-order copy (12), and the written image (<= 6)."""

ACTIVATION_MARGIN = 1.5
"""Factor on the per-pixel part of every estimate. ONNX Runtime's CPU arena grows in steps (powers
of two), so a peak is not a line in the tile size: the 1680x1120 frame in six 592x608 tiles
peaked at 5.81 GiB where the plain line said 3.94 (docs/runtime.md, "Memory")."""

MIN_TILE_PIXELS = 128 * 128
"""No automatic tile is smaller: below it the network's context is lost to the borders."""


@dataclass(frozen=True)
class MemoryCost:
    """A backend's peak memory: ``base`` bytes plus ``per_pixel`` bytes per pixel of the tile it runs."""

    base: float
    per_pixel: float

    def scaled(self, width: int) -> MemoryCost:
        """The cost of a network of another width (activations scale with the channel count)."""
        return MemoryCost(self.base, self.per_pixel * width / REFERENCE_WIDTH)

    def estimate(self, tile_pixels: int, image_pixels: int) -> float:
        activations = ACTIVATION_MARGIN * self.per_pixel * tile_pixels
        return self.base + activations + IMAGE_BYTES_PER_PIXEL * image_pixels


MEASURED_COSTS: dict[tuple[str, str], MemoryCost] = {
    ("onnxruntime", "fp32"): MemoryCost(base=0.95 * GIB, per_pixel=7726.0),
    ("onnxruntime", "int8"): MemoryCost(base=0.51 * GIB, per_pixel=8303.0),
    ("onnxruntime", "fp16"): MemoryCost(base=0.66 * GIB, per_pixel=5281.0),
    ("torch", "fp32"): MemoryCost(base=0.63 * GIB, per_pixel=5338.0),
}
"""(backend, precision) -> cost at width 64; docs/runtime.md "Memory" (``dpanet bench memory``)."""


def measured_cost(backend: str, precision: str, width: int) -> MemoryCost | None:
    """The measured cost of ``backend`` at ``precision`` for a network of ``width``, or None if
    not measured (then no bound applies). A precision without its own figure uses fp32's."""
    cost = MEASURED_COSTS.get((backend, precision)) or MEASURED_COSTS.get((backend, "fp32"))
    return None if cost is None else cost.scaled(width)


_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": GIB, "T": 2**40}


def parse_memory(text: str) -> int:
    """``4G``, ``1.5G``, ``512M``, ``800000K`` or bytes -> bytes (binary units; ``GiB``/``GB`` too)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if not match:
        raise DPANetError(f"memory size must look like 4G, 1.5G or 512M, got {text!r}")
    value = float(match.group(1)) * _UNITS[match.group(2)]
    if not math.isfinite(value) or value < 1:
        raise DPANetError(f"memory size must be positive, got {text!r}")
    return int(value)


def format_memory(size: float) -> str:
    return f"{size / GIB:.2f} GiB" if size >= GIB / 4 else f"{size / 2**20:.0f} MiB"


def available_ram() -> int:
    """Memory a new allocation can get now: the kernel's MemAvailable, capped by this process's
    cgroup limit (a container's ``--memory``) where one is set."""
    available = None
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if available is None:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    limit = _cgroup_room()
    return available if limit is None else min(available, limit)


def default_budget(backend) -> int | None:
    """:data:`DEFAULT_FRACTION` of what ``backend`` can still allocate (its ``available_memory()``),
    or None (unbounded) for a backend that cannot say."""
    available = getattr(backend, "available_memory", None)
    return None if available is None else int(DEFAULT_FRACTION * available())


def _cgroup_room() -> int | None:
    """What the cgroup (v2) limit leaves, or None without a limit."""
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            current = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(int(limit) - current, 0)


def _fitting_tile(length: int, count: int, overlap: int) -> int | None:
    """The smallest tile (a multiple of 8) covering ``length`` in at most ``count`` tiles that share
    ``overlap`` pixels, or None when ``count`` tiles cannot be valid (a tile must exceed 2 x overlap)."""
    if count == 1:
        return length
    tile = -(-(length + (count - 1) * overlap) // count)
    tile = max(-(-tile // SIZE_MULTIPLE) * SIZE_MULTIPLE, 2 * overlap + SIZE_MULTIPLE)
    while len(tile_starts(length, tile, overlap)) > count:
        tile += SIZE_MULTIPLE
    return tile if tile < length else None


def choose_tile(
    size: tuple[int, int], max_pixels: float, overlap: int, limit: tuple[int, int] | None = None
) -> tuple[int, int] | None:
    """The tile (H, W) whose layout over the padded ``size`` runs the fewest pixels in total (the
    tiling overhead), with at most ``max_pixels`` per tile and within ``limit``; fewer tiles win
    ties. None when no tile fits. Tries every number of rows; for each, the widest tile that fits."""
    height, width = size
    best = None
    for rows in range(1, height // SIZE_MULTIPLE + 1):
        th = _fitting_tile(height, rows, overlap)
        if th is None:
            break
        if len(tile_starts(height, th, overlap)) < rows:  # rounded up to 8, fewer rows suffice
            if th <= 2 * overlap + SIZE_MULTIPLE:
                break  # the shortest tiles: no more rows
            continue
        if limit and th > limit[0]:
            continue
        widest = min(int(max_pixels // th), width, limit[1] if limit else width)
        widest = widest // SIZE_MULTIPLE * SIZE_MULTIPLE if widest < width else width
        if widest <= 2 * overlap and widest < width:
            continue
        tw = _fitting_tile(width, len(tile_starts(width, widest, overlap)), overlap)
        if tw is None or tw > widest:
            continue
        count = len(tile_starts(height, th, overlap)) * len(tile_starts(width, tw, overlap))
        key = (count * th * tw, count)
        if best is None or key < best[0]:
            best = (key, (th, tw))
    return None if best is None else best[1]


def smaller_tile(tile: tuple[int, int], overlap: int) -> tuple[int, int] | None:
    """About half the area of ``tile`` (its longer side halved, on multiples of 8), or None when
    that would go below :data:`MIN_TILE_PIXELS` or not exceed twice the overlap."""
    h, w = tile
    if h >= w:
        h = max(h // 2 // SIZE_MULTIPLE * SIZE_MULTIPLE, SIZE_MULTIPLE)
    else:
        w = max(w // 2 // SIZE_MULTIPLE * SIZE_MULTIPLE, SIZE_MULTIPLE)
    if h * w < MIN_TILE_PIXELS or min(h, w) <= 2 * overlap:
        return None
    return h, w


_OUT_OF_MEMORY = ("out of memory", "failed to allocate memory", "bad_alloc", "bad allocation")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a backend running out of memory: MemoryError (numpy, our CPU kernels) or
    a backend's own error saying so (ONNX Runtime's allocator, torch.OutOfMemoryError, pycuda)."""
    return isinstance(exc, MemoryError) or any(text in str(exc).lower() for text in _OUT_OF_MEMORY)
