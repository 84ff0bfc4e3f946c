"""dpanet model-info: parameters and MACs of a configuration."""

from __future__ import annotations

import argparse

from dpanet.cli.options import add_size_option, check_multiple, positive_int


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
    p.add_argument("--width", type=positive_int, default=64, help="base width (default: 64, the release)")
    add_size_option(p, "input size", (256, 256))
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dpanet.training.complexity import format_report, measure
    from dpanet.training.config import variant_config

    h, w = check_multiple("--size", args.size)
    config = variant_config(args.variant, width=args.width)
    print(format_report(args.variant, measure(config, h, w)))
    return 0
