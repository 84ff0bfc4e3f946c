"""From two view files to a deblurred image, with any backend (torch-free).

A backend is a callable ``(left, right) -> output`` on N x 3 x H x W float32 arrays in [0, 1], in
the channel order the weights expect, H and W multiples of 8. This module does everything around
it: checks the pair, converts channel order and single-channel views, pads to a multiple of 8
(edge replication) and crops back, tiles when asked or when the backend needs it
(:mod:`dpanet.runtime.tiling`), and brings the result to the input's channel count.

A backend may declare the sizes it takes: ``fixed_size`` (H, W) for a static-size model, which
then serves any image by tiling at that size, or ``max_size`` (H, W) for an engine profile's
maximum, above which images are tiled automatically with a note.

Single-channel views (a Pixel phone's DP data is one green channel) are replicated to three
channels for the network and the three output channels are averaged back into one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dpanet.contract import CHANNEL_ORDERS, SIZE_MULTIPLE
from dpanet.errors import DPANetError
from dpanet.runtime.images import Image
from dpanet.runtime.memory import (
    MIN_TILE_PIXELS,
    MemoryCost,
    choose_tile,
    format_memory,
    is_out_of_memory,
    smaller_tile,
)
from dpanet.runtime.tiling import (
    DEFAULT_OVERLAP,
    Backend,
    Tiling,
    largest_overlap,
    run_tiled,
    tile_starts,
)


def check_pair(left: Image, right: Image) -> None:
    lname = left.path or "left view"
    rname = right.path or "right view"
    if left.size != right.size:
        (lh, lw), (rh, rw) = left.size, right.size
        raise DPANetError(f"{rname}: size {rh}x{rw} differs from {lname} ({lh}x{lw})")
    if left.channels != right.channels:
        raise DPANetError(f"{rname}: {right.channels} channel(s) but {lname} has {left.channels}")
    if left.bit_depth != right.bit_depth:
        raise DPANetError(f"{rname}: {right.bit_depth}-bit but {lname} is {left.bit_depth}-bit")


def padded_size(height: int, width: int) -> tuple[int, int]:
    def up(v: int) -> int:
        return -(-v // SIZE_MULTIPLE) * SIZE_MULTIPLE

    return up(height), up(width)


def to_network(pixels: np.ndarray, channel_order: str) -> np.ndarray:
    """H x W x C file-order pixels -> 1 x 3 x H' x W' network input (padded to a multiple of 8)."""
    if channel_order not in CHANNEL_ORDERS:
        raise DPANetError(f"channel order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    elif channel_order == "RGB":
        pixels = pixels[:, :, ::-1]  # files are BGR
    h, w = pixels.shape[:2]
    ph, pw = padded_size(h, w)
    pixels = np.pad(pixels, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    return np.ascontiguousarray(pixels.transpose(2, 0, 1)[None], dtype=np.float32)


def from_network(
    output: np.ndarray, height: int, width: int, channels: int, channel_order: str
) -> np.ndarray:
    """1 x 3 x H' x W' network output -> H x W x channels file-order pixels in [0, 1]."""
    pixels = output[0, :, :height, :width].transpose(1, 2, 0)
    if channels == 1:
        pixels = pixels.mean(axis=2, keepdims=True)
    elif channel_order == "RGB":
        pixels = pixels[:, :, ::-1]
    return np.clip(np.ascontiguousarray(pixels, dtype=np.float32), 0.0, 1.0)


def plan_tiling(
    backend: Backend,
    size: tuple[int, int],
    tile: tuple[int, int] | None = None,
    overlap: int | None = None,
    max_memory: int | None = None,
) -> tuple[Tiling | None, str | None]:
    """How to run ``backend`` on a padded H x W image: (tiling or None for whole, a note or None).

    ``tile``/``overlap`` are the user's request (None: not given); they are honoured or refused,
    never ignored. ``max_memory`` (bytes, None: unbounded) bounds the estimated peak of a backend
    that declares its ``memory_cost`` (:mod:`dpanet.runtime.memory`); without a ``tile``, a frame
    that would exceed it is tiled with the fewest, largest tiles that fit."""
    fixed = getattr(backend, "fixed_size", None)
    limit = getattr(backend, "max_size", None)
    cost = getattr(backend, "memory_cost", None) if max_memory is not None else None
    if tile is None and overlap is not None and fixed is None and limit is None and cost is None:
        raise DPANetError(f"--overlap {overlap}: only applies with a tile size")
    h, w = size
    if fixed is not None:
        fixed = tuple(fixed)
        if tile is not None and tuple(tile) != fixed:
            raise DPANetError(
                f"--tile {tile[0]}x{tile[1]}: the model has a static size {fixed[0]}x{fixed[1]}; "
                "it can only tile at that size"
            )
        tiling = Tiling(fixed, overlap if overlap is not None else largest_overlap(fixed)).check()
        if (h, w) == fixed:
            return None, None
        return tiling, f"the model has a static size: {h}x{w} image served by {tiling}"
    if limit is not None:
        lh, lw = limit
        if tile is not None and (tile[0] > lh or tile[1] > lw):
            raise DPANetError(f"--tile {tile[0]}x{tile[1]}: larger than the backend's maximum {lh}x{lw}")
    if tile is None and cost is not None:
        return _plan_for_memory(cost, size, overlap, max_memory, limit)
    if limit is not None and tile is None and (h > lh or w > lw):
        tile = (min(h, lh), min(w, lw))
        tiling = Tiling(tile, overlap if overlap is not None else largest_overlap(tile)).check()
        return tiling, f"{h}x{w} exceeds the backend's maximum {lh}x{lw}: tiled, {tiling}"
    if tile is None:
        return None, None
    requested = Tiling(tuple(tile), DEFAULT_OVERLAP if overlap is None else overlap).check()
    if tile[0] >= h and tile[1] >= w:
        return None, None  # one tile covers the image: the whole image is exactly that
    return Tiling((min(tile[0], h), min(tile[1], w)), requested.overlap), None  # one tile along a short axis


def _plan_for_memory(
    cost: MemoryCost,
    size: tuple[int, int],
    overlap: int | None,
    max_memory: int,
    limit: tuple[int, int] | None,
) -> tuple[Tiling | None, str | None]:
    """Whole when the estimate fits ``max_memory`` (and ``limit``), else the tiles
    :func:`choose_tile` picks."""
    h, w = size
    pixels = h * w
    whole = cost.estimate(pixels, pixels)
    over_limit = limit is not None and (h > limit[0] or w > limit[1])
    if whole <= max_memory and not over_limit:
        return None, None
    wanted = DEFAULT_OVERLAP if overlap is None else overlap
    per_pixel = cost.estimate(1, 0) - cost.estimate(0, 0)
    room = (max_memory - cost.estimate(0, pixels)) / per_pixel if per_pixel else pixels
    tile = choose_tile(size, min(room, pixels), wanted, limit)
    if tile is None or tile[0] * tile[1] < min(MIN_TILE_PIXELS, pixels):
        smallest = cost.estimate(min(MIN_TILE_PIXELS, pixels), pixels)
        raise DPANetError(
            f"--max-memory {format_memory(max_memory)}: too little for a {h}x{w} image with this model "
            f"(about {format_memory(smallest)} with the smallest tiles)"
        )
    tiling = Tiling(tile, wanted)
    count = len(tile_starts(h, tile[0], wanted)) * len(tile_starts(w, tile[1], wanted))
    reason = (
        f"exceeds the backend's maximum {limit[0]}x{limit[1]}"
        if over_limit
        else f"needs about {format_memory(whole)} untiled, more than {format_memory(max_memory)}"
    )
    return tiling, f"{h}x{w} {reason}: tiled in {count} {tiling}"


def check_tiling(
    backend: Backend, tile: tuple[int, int] | None, overlap: int | None, max_memory: int | None = None
) -> None:
    """Raise :class:`DPANetError` now, before any image is read, if ``tile``/``overlap`` would be
    refused for some image (planning for a huge one makes every check :func:`plan_tiling` makes),
    or if ``max_memory`` is too little for even the smallest tile."""
    cost = getattr(backend, "memory_cost", None) if max_memory is not None else None
    if cost is None or tile is not None or getattr(backend, "fixed_size", None) is not None:
        plan_tiling(backend, (1 << 20, 1 << 20), tile, overlap)
        return
    if overlap is not None:
        Tiling((1 << 20, 1 << 20), overlap).check()
    smallest = cost.estimate(MIN_TILE_PIXELS, MIN_TILE_PIXELS)
    if smallest > max_memory:
        raise DPANetError(
            f"--max-memory {format_memory(max_memory)}: too little for this model "
            f"(about {format_memory(smallest)} with the smallest tiles)"
        )


def run_network(
    backend: Backend,
    left: np.ndarray,
    right: np.ndarray,
    tile: tuple[int, int] | None = None,
    overlap: int | None = None,
    note: Callable[[str], object] | None = None,
    max_memory: int | None = None,
) -> np.ndarray:
    """The backend's output on network arrays, whole or tiled as :func:`plan_tiling` decides. A
    backend that runs out of memory anyway is run again in tiles of about half the area, with a
    note, down to :data:`~dpanet.runtime.memory.MIN_TILE_PIXELS` (a static-size model cannot)."""
    tiling, message = plan_tiling(backend, left.shape[2:], tile, overlap, max_memory)
    if message and note:
        note(message)
    while True:
        try:
            out = backend(left, right) if tiling is None else run_tiled(backend, left, right, tiling)
            break
        except Exception as exc:
            if not is_out_of_memory(exc) or getattr(backend, "fixed_size", None) is not None:
                raise
            tiling = _retry_tiling(tiling, left.shape[2:], overlap, exc, note)
    if tuple(out.shape) != tuple(left.shape):
        raise DPANetError(f"backend returned shape {tuple(out.shape)}, expected {tuple(left.shape)}")
    if not np.isfinite(out).all():  # would be written as black
        raise DPANetError("the network's output has NaN or Inf values; nothing written")
    return out


def _retry_tiling(
    tiling: Tiling | None,
    size: tuple[int, int],
    overlap: int | None,
    exc: BaseException,
    note: Callable[[str], object] | None,
) -> Tiling:
    """The tiling to retry with after ``exc`` (out of memory) ran ``tiling`` (None: whole)."""
    current = tiling.tile if tiling is not None else tuple(size)
    wanted = tiling.overlap if tiling is not None else DEFAULT_OVERLAP if overlap is None else overlap
    smaller = smaller_tile(current, wanted)
    if smaller is None:
        if tiling is None:  # too small to tile
            raise exc
        raise MemoryError(f"{exc} (also in {current[0]}x{current[1]} tiles, the smallest tried)") from exc
    retry = Tiling(smaller, wanted)
    if note:
        where = "untiled" if tiling is None else f"in {current[0]}x{current[1]} tiles"
        note(f"out of memory {where}: retrying in {retry}")
    return retry


@dataclass
class Deblurred:
    pixels: np.ndarray  # H x W x C in [0, 1], file channel order
    bit_depth: int


def deblur_pair(
    left: Image,
    right: Image,
    backend: Backend,
    channel_order: str,
    tile: tuple[int, int] | None = None,
    overlap: int | None = None,
    note: Callable[[str], object] | None = None,
    max_memory: int | None = None,
) -> Deblurred:
    """Deblur a checked pair; ``tile``/``overlap``/``note``/``max_memory`` as in :func:`run_network`."""
    check_pair(left, right)
    h, w = left.size
    out = run_network(
        backend,
        to_network(left.pixels, channel_order),
        to_network(right.pixels, channel_order),
        tile,
        overlap,
        note,
        max_memory,
    )
    return Deblurred(from_network(out, h, w, left.channels, channel_order), left.bit_depth)
