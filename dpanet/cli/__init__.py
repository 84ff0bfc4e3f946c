"""The ``dpanet`` command: one subcommand per module of this package.

Each command module defines ``add_parser(subparsers)`` (its options) and ``run(args)`` (a thin
call into the library). Heavy imports (torch, onnx) happen inside ``run`` so that commands that do
not need them, and ``--help``, stay fast and torch-free.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from dpanet import __version__
from dpanet.errors import DPANetError

COMMANDS = [
    "deblur",
    "export",
    "convert_official",
    "model_info",
    "bench",
    "train",
    "evaluate",
    "demo",
    "synth",
    "tune_unsharp",
    "calibrate",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dpanet", description="Dual-pixel defocus deblurring (DPANet).")
    parser.add_argument("--version", action="version", version=f"dpanet {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"dpanet.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except DPANetError as exc:
        print(f"dpanet {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"dpanet {args.command}: interrupted", file=sys.stderr)
        return 130
