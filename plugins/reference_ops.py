"""Slow, obviously-correct float64 references for the ops in docs/ops.md (loops over numpy; torch-free).

The tests check every kernel against them, and ``dpanet doctor`` checks the installed CPU kernels."""

from __future__ import annotations

import math

import numpy as np


def correlation_reference(first: np.ndarray, second: np.ndarray, d: int) -> np.ndarray:
    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    n, c, h, w = first.shape
    size = 2 * d + 1
    out = np.zeros((n, size * size, h, w))
    for b in range(n):
        for dy in range(-d, d + 1):
            for dx in range(-d, d + 1):
                k = (dy + d) * size + (dx + d)
                for y in range(h):
                    for x in range(w):
                        yy, xx = y + dy, x + dx
                        if 0 <= yy < h and 0 <= xx < w:
                            out[b, k, y, x] = first[b, :, y, x] @ second[b, :, yy, xx] / c
    return out


def bilinear_zero(img: np.ndarray, y: float, x: float) -> np.ndarray:
    """Bilinear sample of a C x H x W image at (y, x); neighbours outside the image are zero."""
    c, h, w = img.shape
    y0 = math.floor(y)
    x0 = math.floor(x)
    ly, lx = y - y0, x - x0
    out = np.zeros(c)
    for yy, xx, wt in (
        (y0, x0, (1 - ly) * (1 - lx)),
        (y0, x0 + 1, (1 - ly) * lx),
        (y0 + 1, x0, ly * (1 - lx)),
        (y0 + 1, x0 + 1, ly * lx),
    ):
        if 0 <= yy < h and 0 <= xx < w:
            out += wt * img[:, yy, xx]
    return out


def deform_conv_reference(x, offset, mask, weight, bias, stride=(1, 1), padding=(1, 1), dilation=(1, 1)):
    x, offset, mask, weight = (np.asarray(a, dtype=np.float64) for a in (x, offset, mask, weight))
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    sy, sx = stride
    py, px = padding
    dy, dx = dilation
    ho = (h + 2 * py - dy * (kh - 1) - 1) // sy + 1
    wo = (w + 2 * px - dx * (kw - 1) - 1) // sx + 1
    out = np.zeros((n, o, ho, wo))
    for b in range(n):
        for oy in range(ho):
            for ox in range(wo):
                acc = np.zeros(o)
                for ky in range(kh):
                    for kx in range(kw):
                        t = ky * kw + kx
                        sample_y = oy * sy - py + ky * dy + offset[b, 2 * t, oy, ox]
                        sample_x = ox * sx - px + kx * dx + offset[b, 2 * t + 1, oy, ox]
                        v = bilinear_zero(x[b], sample_y, sample_x) * mask[b, t, oy, ox]
                        acc += weight[:, :, ky, kx] @ v
                out[b, :, oy, ox] = acc
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return out
