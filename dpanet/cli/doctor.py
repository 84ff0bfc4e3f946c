"""dpanet doctor: can this machine run DPANet? One line per check (torch-free)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "doctor",
        help="check this machine: versions, kernels, plugins, engines, memory",
        description="What to run first on the target machine. One line per check: ok, FAIL with the "
        "reason and the fix, or skipped with why (no GPU, no TensorRT, not a Jetson). Versions; the CPU "
        "kernels against the float64 reference; the CUDA kernels (this GPU's architecture, fp32 and "
        "fp16 against the CPU kernels); the plugin library of this TensorRT (loads twice, creators "
        "registered); one-node plugin engines; with --onnx, each model's engine against ONNX Runtime "
        "within the parity tolerances and the device memory the default profile needs. Exit 1 if a "
        "check failed (docs/engines.md).",
    )
    p.add_argument(
        "--onnx",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="an exported model (dpanet export; plugin or portable) to build at a small profile and "
        "compare with ONNX Runtime; repeat for both flavours",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of lines")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dpanet.errors import DPANetError
    from dpanet.runtime.checks import json_report, run_all

    for path in args.onnx:
        if not path.is_file():
            raise DPANetError(f"{path}: no such file (--onnx)")
    show = (lambda result: None) if args.json else (lambda result: print(result.line(), flush=True))
    results = run_all(args.onnx, show)
    if args.json:
        sys.stdout.write(json_report(results))
    return 1 if any(r.status == "FAIL" for r in results) else 0
