"""Awkward shapes for the ops (float32 numpy arrays), shared by every backend's tests and by the
kernel checks of ``dpanet doctor`` (dpanet.runtime.kernel_checks)."""

from __future__ import annotations

import numpy as np

CORRELATION_CASES = [
    ((1, 1, 1, 1), 0),
    ((2, 3, 5, 7), 1),
    ((1, 8, 9, 6), 4),
    ((2, 5, 4, 11), 3),
    ((1, 2, 3, 3), 5),  # displacement larger than the image
    ((1, 17, 19, 37), 4),  # W not a multiple of the vector width, interior and border blocks
    ((1, 3, 6, 70), 12),  # more than one group of displacements per row
    ((1, 40, 20, 45), 4),  # more than one channel chunk and tile on the GPU
]

# n, c, h, w, o, k, stride, padding, dilation, offset scale
DCN_CASES = [
    (1, 3, 7, 9, 4, 3, (1, 1), (1, 1), (1, 1), 1.5),
    (2, 4, 5, 6, 3, 3, (2, 1), (2, 0), (1, 2), 2.0),
    (1, 2, 9, 8, 5, 3, (1, 2), (0, 3), (2, 1), 0.7),
    (1, 3, 6, 5, 2, 2, (1, 1), (1, 1), (1, 1), 1.0),
    (2, 1, 4, 4, 2, 1, (1, 1), (0, 0), (1, 1), 3.0),
    (1, 5, 3, 7, 3, 3, (1, 1), (1, 1), (1, 1), 12.0),  # far outside the image
    (1, 37, 11, 13, 41, 3, (3, 2), (2, 1), (2, 3), 2.5),  # channels past the vector width and the tiles
    (1, 64, 12, 10, 64, 3, (1, 1), (1, 1), (1, 1), 4.0),  # DPANet's geometry, small image
]


def uniform(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return ((rng.random(shape, dtype=np.float32) - 0.5) * 2 * scale).astype(np.float32)


def correlation_case(shape, d) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(sum(shape) + d)
    return uniform(rng, *shape), uniform(rng, *shape)


def dcn_case(n, c, h, w, o, k, stride, padding, dilation, offset_scale, seed=None):
    """x, offset, mask, weight, bias for one DCN_CASES row."""
    rng = np.random.default_rng(seed if seed is not None else n * 100 + c * 10 + h + w)
    ho = (h + 2 * padding[0] - dilation[0] * (k - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (k - 1) - 1) // stride[1] + 1
    x = uniform(rng, n, c, h, w)
    offset = uniform(rng, n, 2 * k * k, ho, wo, scale=offset_scale)
    mask = rng.random((n, k * k, ho, wo), dtype=np.float32)
    weight = uniform(rng, o, c, k, k, scale=1 / np.sqrt(c * k * k))
    bias = uniform(rng, o)
    return x, offset, mask, weight, bias
