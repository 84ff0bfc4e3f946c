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
from dpanet.extras import missing_module_message

COMMANDS = [
    "deblur",
    "export",
    "build_engine",
    "convert_official",
    "model_info",
    "bench",
    "train",
    "evaluate",
    "demo",
    "synth",
    "tune_unsharp",
    "prepare_patches",
    "parity",
    "calibrate",
    "doctor",
    "triton_repo",
    "serve",
    "deploy",
]


class Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (exit 2), like every other error of the CLI (docs/cli.md);
    subcommand parsers are of the same class."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# What bounds a command's memory, said after an out-of-memory error.
_MEMORY_HINT = " (a lower --max-memory, or --tile HxW, bounds what a large image needs: docs/runtime.md)"
MEMORY_HINTS = {"deblur": _MEMORY_HINT, "evaluate": _MEMORY_HINT, "parity": _MEMORY_HINT}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="dpanet", description="Dual-pixel defocus deblurring (DPANet).")
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
        print(f"dpanet {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"dpanet {args.command}: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:
        # an install profile without this command's extra (dpanet/extras.py); unknown modules are bugs
        message = missing_module_message(exc, _command_name(args))
        if message is None:
            raise
        print(f"dpanet {args.command}: error: {message}", file=sys.stderr)
        return 1
    except MemoryError as exc:
        detail = f": {exc}" if str(exc) else ""
        hint = MEMORY_HINTS.get(args.command, "")
        print(f"dpanet {args.command}: error: out of memory{detail}{hint}", file=sys.stderr)
        return 1
    except Exception as exc:
        if not _caused_by_interrupt(exc):
            raise
        print(f"dpanet {args.command}: interrupted", file=sys.stderr)
        return 130


def _command_name(args: argparse.Namespace) -> str:
    """``bench model`` for a command with a target, else the command: the keys of
    :data:`dpanet.extras.COMMAND_EXTRAS`."""
    benchmark = getattr(args, "benchmark", None)  # dpanet bench's targets
    return f"{args.command} {benchmark}" if benchmark else args.command


def _one_line(exc: DPANetError) -> str:
    """The error's message. A DataLoader worker's error comes back as its type with the worker's
    whole traceback for a message; the original message is its last line, after the type's name."""
    lines = str(exc).strip().splitlines()
    if len(lines) <= 1:
        return str(exc)
    return lines[-1].removeprefix(f"{type(exc).__module__}.{type(exc).__qualname__}: ")


def _caused_by_interrupt(exc: BaseException) -> bool:
    """Whether Ctrl-C is behind ``exc``: some libraries (the ONNX exporter's tracing) wrap the
    KeyboardInterrupt raised inside them in an error of their own."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False
