"""Option types every command shares, so one fact has one spelling on the command line."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

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


def add_size_option(
    parser: argparse.ArgumentParser, purpose: str, default: tuple[int, int] | None, shown: str = ""
) -> None:
    """Add ``--size HxW`` to ``parser``; its help is ``purpose`` and the default (``shown`` if given)."""
    shown = shown or f"{default[0]}x{default[1]}"
    parser.add_argument(
        "--size", type=parse_size, default=default, metavar="HxW", help=f"{purpose} (default: {shown})"
    )


def check_multiple(option: str, size: tuple[int, int], multiple: int = 8) -> tuple[int, int]:
    """Raise :class:`DPANetError` unless both sides of ``size`` are multiples of ``multiple``."""
    h, w = size
    if h % multiple or w % multiple:
        raise DPANetError(f"{option} {h}x{w}: height and width must be multiples of {multiple}")
    return size


def at_least(minimum: int) -> Callable[[str], int]:
    """An option type for whole numbers of at least ``minimum`` (threads, scenes, seeds)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text!r}")
        return value

    return parse


positive_int = at_least(1)
non_negative_int = at_least(0)


def check_square(option: str, size: tuple[int, int]) -> int:
    """The side of a square ``size``; raise :class:`DPANetError` for another shape."""
    h, w = size
    if h != w:
        raise DPANetError(f"{option} {h}x{w}: this command renders square images (give one number, or HxH)")
    return h


def positive_float(text: str) -> float:
    """A finite number above 0 (``nan`` and ``inf`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text!r}")
    return value


def add_profile_options(parser: argparse.ArgumentParser) -> None:
    """An engine's optimization profile: --min, --opt, --max HxW (build-engine's defaults)."""
    for name, default in (("min", "256x256, or --opt if smaller"), ("opt", "--max"), ("max", "1120x1680")):
        parser.add_argument(
            f"--{name}",
            type=parse_size,
            metavar="HxW",
            help=f"{name} input size, multiples of 8 (default: {default})",
        )


def profile_sizes(args: argparse.Namespace) -> tuple[tuple[int, int] | None, ...]:
    """(min, opt, max) from :func:`add_profile_options`, each checked to be multiples of 8."""
    return tuple(
        None if getattr(args, name) is None else check_multiple(f"--{name}", getattr(args, name))
        for name in ("min", "opt", "max")
    )


def memory_size(text: str) -> int:
    """``4G``, ``1.5G``, ``512M`` -> bytes (binary units), for ``--max-memory``."""
    from dpanet.runtime.memory import parse_memory

    try:
        return parse_memory(text)
    except DPANetError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_max_memory_option(parser: argparse.ArgumentParser) -> None:
    """``--max-memory SIZE``, the same for every command that runs the network (``%%``: argparse
    formats help strings with ``%``)."""
    from dpanet.runtime.memory import DEFAULT_FRACTION

    parser.add_argument(
        "--max-memory",
        type=memory_size,
        metavar="SIZE",
        help="bound the run's memory (e.g. 4G, 512M): a frame estimated to need more is tiled, few "
        f"large tiles (default: {DEFAULT_FRACTION:.0%}% of the available RAM, of the free GPU memory for "
        "TensorRT; docs/runtime.md)",
    )
