"""dpanet model-info: parameters and MACs of a configuration."""

from __future__ import annotations

import argparse

from dpanet.errors import DPANetError


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' (or a single number for a square) -> (H, W)."""
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 256x256, got {text!r}") from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"size must look like 256x256, got {text!r}")
    return values[0], values[1]


def add_parser(subparsers) -> None:
    from dpanet.training.config import VARIANTS

    p = subparsers.add_parser(
        "model-info",
        help="parameters and MACs of a DPANet configuration",
        description="Parameters and multiply-accumulates, in total and the nn.Conv2d-only figure "
        "the paper reports.",
    )
    p.add_argument(
        "--variant", choices=list(VARIANTS), default="dpanet", help="network variant (default: dpanet)"
    )
    p.add_argument("--width", type=int, default=64, help="base width (default: 64, the release)")
    p.add_argument(
        "--size", type=parse_size, default=(256, 256), metavar="HxW", help="input size (default: 256x256)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dpanet.training.complexity import format_report, measure
    from dpanet.training.config import variant_config

    h, w = args.size
    if h % 8 or w % 8:
        raise DPANetError(f"--size {h}x{w}: height and width must be multiples of 8")
    config = variant_config(args.variant, width=args.width)
    print(format_report(args.variant, measure(config, h, w)))
    return 0
