"""Tiled inference for every backend: overlapping tiles, blended with smooth weights, cropped back.

Works on network arrays (N x 3 x H x W, H and W multiples of 8) and any backend callable, so the
same code serves PyTorch, ONNX Runtime and TensorRT. Along each axis the fewest tiles that share
at least ``overlap`` pixels with their neighbours are spread evenly from border to border, starting
on multiples of 8. In the region two
tiles share, each tile's weight rises from about 0 at its inner edge to 1 across the shared region
(raised cosine, two of which sum to 1), so seams fade instead of showing; image borders keep
weight 1. An
image smaller than the tile is padded (edge replication) to the tile, which is how a static-size
model serves small images. docs/runtime.md measures the trade-off and gives the defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from dpanet.contract import SIZE_MULTIPLE
from dpanet.errors import DPANetError

DEFAULT_OVERLAP = 64
"""Overlap when none is given (pixels); chosen from the table in docs/runtime.md."""

Backend = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Tiling:
    tile: tuple[int, int]  # H, W
    overlap: int = DEFAULT_OVERLAP

    def check(self) -> Tiling:
        """Raise :class:`DPANetError` unless this is a valid request; returns itself."""
        h, w = self.tile
        if h <= 0 or w <= 0 or h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
            raise DPANetError(
                f"--tile {h}x{w}: height and width must be positive multiples of {SIZE_MULTIPLE}"
            )
        if self.overlap < 0 or self.overlap % SIZE_MULTIPLE:
            raise DPANetError(f"--overlap {self.overlap}: must be a non-negative multiple of {SIZE_MULTIPLE}")
        if min(h, w) <= 2 * self.overlap:
            raise DPANetError(f"--tile {h}x{w}: both sides must exceed twice the overlap ({self.overlap})")
        return self

    def __str__(self) -> str:
        return f"{self.tile[0]}x{self.tile[1]} tiles, overlap {self.overlap}"


def largest_overlap(tile: tuple[int, int], wanted: int = DEFAULT_OVERLAP) -> int:
    """``wanted``, or the largest valid overlap for ``tile`` if that is smaller."""
    limit = (min(tile) - 1) // 2 // SIZE_MULTIPLE * SIZE_MULTIPLE
    return min(wanted, limit)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets (multiples of 8) of the fewest tiles covering ``length`` with neighbours that
    share at least ``overlap`` pixels, spread evenly from 0 to ``length - tile``."""
    if length <= tile:
        return [0]
    count = -(-(length - tile) // (tile - overlap)) + 1
    units = (length - tile) // SIZE_MULTIPLE
    return [k * units // (count - 1) * SIZE_MULTIPLE for k in range(count)]


def _ramp(overlap: int) -> np.ndarray:
    """Raised cosine from near 0 to near 1 over ``overlap`` samples; a ramp plus its mirror is 1."""
    return 0.5 - 0.5 * np.cos(np.pi * (np.arange(overlap) + 0.5) / overlap)


def axis_weights(length: int, tile: int, overlap: int) -> list[np.ndarray]:
    """1-D blending weights of each tile along one axis (ramps only on sides facing a neighbour)."""
    starts = tile_starts(length, tile, overlap)
    weights = []
    for i, start in enumerate(starts):
        w = np.ones(tile, dtype=np.float64)
        if i > 0:  # the ramp spans the whole shared region, which may exceed ``overlap``
            shared = starts[i - 1] + tile - start
            w[:shared] *= _ramp(shared)
        if i < len(starts) - 1:
            shared = start + tile - starts[i + 1]
            w[tile - shared :] *= _ramp(shared)[::-1]
        weights.append(w)
    return weights


def run_tiled(
    backend: Backend, left: np.ndarray, right: np.ndarray, tiling: Tiling, progress: bool = True
) -> np.ndarray:
    """The backend's output for the whole N x 3 x H x W pair, computed tile by tile. Along an axis
    the image fits in, one tile covers it; along the others the tile must exceed the overlap."""
    n, c, h, w = left.shape
    th, tw = tiling.tile
    ph, pw = max(h, th), max(w, tw)
    if (ph, pw) != (h, w):
        pad = ((0, 0), (0, 0), (0, ph - h), (0, pw - w))
        left, right = np.pad(left, pad, mode="edge"), np.pad(right, pad, mode="edge")
    rows = tile_starts(ph, th, tiling.overlap)
    cols = tile_starts(pw, tw, tiling.overlap)
    row_weights = axis_weights(ph, th, tiling.overlap)
    col_weights = axis_weights(pw, tw, tiling.overlap)
    total = np.zeros((n, c, ph, pw), dtype=np.float64)
    weight_sum = np.zeros((ph, pw), dtype=np.float64)
    places = [(i, j) for i in range(len(rows)) for j in range(len(cols))]
    hidden = None if progress and len(places) > 1 else True  # None: on a terminal only
    for i, j in tqdm(places, desc="tiles", unit="tile", leave=False, disable=hidden):
        y, x = rows[i], cols[j]
        window = (slice(None), slice(None), slice(y, y + th), slice(x, x + tw))
        out = backend(np.ascontiguousarray(left[window]), np.ascontiguousarray(right[window]))
        if out.shape != (n, c, th, tw):
            raise DPANetError(f"backend returned shape {tuple(out.shape)} for a {(n, c, th, tw)} tile")
        weight = np.outer(row_weights[i], col_weights[j])
        total[window] += out * weight
        weight_sum[y : y + th, x : x + tw] += weight
    return (total / weight_sum)[:, :, :h, :w].astype(np.float32)
