"""Option types every command shares, so one fact has one spelling on the command line."""

from __future__ import annotations

import argparse
import math

from dpanet.errors import DPANetError


def parse_size(text: str) -> tuple[int, int]:
    """``HxW`` (or a single number for a square) -> (H, W); the one size spelling of every command."""
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 256x256 (HxW), got {text!r}") from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"size must look like 256x256 (HxW), got {text!r}")
    return values[0], values[1]


def check_multiple(option: str, size: tuple[int, int], multiple: int = 8) -> tuple[int, int]:
    """Raise :class:`DPANetError` unless both sides of ``size`` are multiples of ``multiple``."""
    h, w = size
    if h % multiple or w % multiple:
        raise DPANetError(f"{option} {h}x{w}: height and width must be multiples of {multiple}")
    return size


def positive_int(text: str) -> int:
    """An option that counts something (threads, scenes, channels): 1 or more."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number above 0 (``nan`` and ``inf`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text!r}")
    return value
