"""dpanet bench: speed measurements that print tables (never assertions)."""

from __future__ import annotations

import argparse

from dpanet.errors import DPANetError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("bench", help="benchmarks (tables with peers measured in the same run)")
    targets = p.add_subparsers(dest="target", required=True, metavar="TARGET")
    m = targets.add_parser("model", help="forward latency of DPANet on the CPU, float32 and bfloat16")
    m.add_argument(
        "--size",
        type=int,
        nargs="+",
        default=[256],
        metavar="N",
        help="square size, or height and width (default: 256)",
    )
    m.add_argument("--width", type=int, default=64, help="base width (default: 64, the release)")
    m.add_argument("--repeats", type=int, default=3, help="timed forwards per precision (default: 3)")
    m.set_defaults(run=run_model)


def run_model(args: argparse.Namespace) -> int:
    from dpanet.training.benchmark import run_model_benchmark
    from dpanet.training.config import DPANetConfig

    if len(args.size) > 2:
        raise DPANetError("--size takes one or two numbers")
    h, w = (args.size * 2)[:2]
    if h % 8 or w % 8 or h <= 0 or w <= 0:
        raise DPANetError(f"--size {h} {w}: height and width must be positive multiples of 8")
    print(run_model_benchmark(h, w, args.repeats, DPANetConfig(width=args.width)))
    return 0
