"""From two view files to a deblurred image, with any backend (torch-free).

A backend is a callable ``(left, right) -> output`` on N x 3 x H x W float32 arrays in [0, 1], in
the channel order the weights expect, H and W multiples of 8. This module does everything around
it: checks the pair, converts channel order and single-channel views, pads to a multiple of 8
(edge replication) and crops back, and brings the result to the input's channel count.

Single-channel views (a Pixel phone's DP data is one green channel) are replicated to three
channels for the network and the three output channels are averaged back into one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dpanet.errors import DPANetError
from dpanet.runtime.images import Image

Backend = Callable[[np.ndarray, np.ndarray], np.ndarray]
SIZE_MULTIPLE = 8
CHANNEL_ORDERS = ("BGR", "RGB")


def check_pair(left: Image, right: Image) -> None:
    lname = left.path or "left view"
    rname = right.path or "right view"
    if left.size != right.size:
        (lh, lw), (rh, rw) = left.size, right.size
        raise DPANetError(f"{rname}: size {rw} x {rh} differs from {lname} ({lw} x {lh})")
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


@dataclass
class Deblurred:
    pixels: np.ndarray  # H x W x C in [0, 1], file channel order
    bit_depth: int


def deblur_pair(left: Image, right: Image, backend: Backend, channel_order: str) -> Deblurred:
    check_pair(left, right)
    h, w = left.size
    out = backend(to_network(left.pixels, channel_order), to_network(right.pixels, channel_order))
    expected = (1, 3, *padded_size(h, w))
    if tuple(out.shape) != expected:
        raise DPANetError(f"backend returned shape {tuple(out.shape)}, expected {expected}")
    if not np.isfinite(out).all():  # would be written as black
        raise DPANetError("the network's output has NaN or Inf values; nothing written")
    return Deblurred(from_network(out, h, w, left.channels, channel_order), left.bit_depth)
