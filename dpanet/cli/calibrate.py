"""dpanet calibrate: a checkpoint to an INT8 (Q/DQ) ONNX model for TensorRT or the CPU."""

from __future__ import annotations

import argparse
from pathlib import Path

from dpanet.calib.choices import (
    CPU_ARCHES,
    DEFAULT_METHOD,
    DEFAULT_MIN_PSNR,
    METHOD_NAMES,
    TARGETS,
    this_cpu_arch,
)
from dpanet.cli.options import check_multiple, parse_size


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="INT8 ONNX (Q/DQ) for TensorRT or ONNX Runtime's CPU, with a sensitivity report",
        description="Calibrate a checkpoint on dual-pixel pairs and write an INT8 ONNX model with "
        "QuantizeLinear/DequantizeLinear pairs (docs/int8.md). --target tensorrt: the layout TensorRT "
        "fuses (symmetric int8, float16 elsewhere; TensorRT 11 builds it as typed, 10.x with --int8 "
        "--fp16; convs under 16 channels stay float16). --target cpu: the layout ONNX Runtime's CPU "
        "kernels run fast (U8S8 on x86, S8S8 on ARM). Correlation, DCN, their offset/mask branches and "
        "the output stay in high precision, and so do the most sensitive blocks until --min-psnr is met.",
    )
    p.add_argument("--checkpoint", type=Path, help="our checkpoint (default: the bundled demo model)")
    p.add_argument(
        "--data",
        required=True,
        type=Path,
        help="calibration pairs: a DPDD-layout folder (as dpanet synth writes) or NAME_L/NAME_R files",
    )
    p.add_argument("-o", "--output", required=True, type=Path, help="the .onnx file to write")
    p.add_argument("--target", choices=list(TARGETS), default="tensorrt", help="default: tensorrt")
    p.add_argument("--flavor", choices=["plugin", "portable"], default="plugin", help="default: plugin")
    p.add_argument(
        "--cpu-arch",
        choices=list(CPU_ARCHES),
        default=this_cpu_arch(),
        help=f"--target cpu: the machine it will run on; S8S8 for arm, U8S8 for x86 (default: this "
        f"machine, {this_cpu_arch()})",
    )
    p.add_argument(
        "--method",
        choices=list(METHOD_NAMES),
        default=DEFAULT_METHOD,
        help=f"ONNX Runtime calibration method (default: {DEFAULT_METHOD}, see docs/int8.md)",
    )
    p.add_argument(
        "--count", type=int, default=16, help="calibration pairs, first in name order (default: 16)"
    )
    p.add_argument(
        "--size", type=parse_size, default=(256, 256), metavar="HxW", help="centre crop (default: 256x256)"
    )
    p.add_argument(
        "--exclude",
        nargs="+",
        default=[],
        metavar="NAME",
        help="layers kept in high precision: a layer (head.2), a prefix (encoder.0) or a node name",
    )
    p.add_argument(
        "--min-psnr",
        type=float,
        default=DEFAULT_MIN_PSNR,
        metavar="DB",
        help="keep the most sensitive blocks in high precision until every calibration pair's output "
        f"is at least DB against the float model's output (default: {DEFAULT_MIN_PSNR:g}; 0: no target)",
    )
    p.add_argument(
        "--max-loss",
        type=float,
        metavar="DB",
        help="also keep blocks in high precision until the task PSNR loss on the calibration pairs is "
        "at most DB (needs sharp images)",
    )
    p.add_argument(
        "--report", type=Path, metavar="FILE", help="write the sensitivity report as FILE.md and FILE.json"
    )
    p.add_argument("--threads", type=int, help="onnxruntime intra-op threads (default: all cores)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from dpanet.calib.pipeline import CalibrateOptions, calibrate_checkpoint
    from dpanet.training.checkpoint import default_checkpoint_path

    options = CalibrateOptions(
        target=args.target,
        flavor=args.flavor,
        method=args.method,
        count=args.count,
        size=check_multiple("--size", args.size),
        exclude=args.exclude,
        min_psnr=args.min_psnr,
        max_loss=args.max_loss,
        cpu_arch=args.cpu_arch,
        report=args.report,
        threads=args.threads,
    )

    def bar(total: int, description: str):
        unit = "pair" if "calib" in description else "block"
        return tqdm(total=total, desc=description, unit=unit, leave=False, disable=None)  # terminal only

    report = calibrate_checkpoint(
        args.checkpoint or default_checkpoint_path(), args.data, args.output, options, bar=bar
    )
    layout = options.target + (f" ({options.cpu_arch})" if options.target == "cpu" else "")
    print(
        f"wrote {args.output} ({layout} target, {options.flavor} flavour, {options.method}); "
        f"{100 * report.high_precision_macs:.1f} % of the conv MACs kept in high precision"
    )
    measured = [("calibration", report.count, report.whole)]
    measured.append(("held-out", report.held_out_count, report.held_out))
    for name, n, f in measured:
        if f is not None:
            task = "" if f.task_loss is None else f", task PSNR loss {f.task_loss:.3f} dB"
            print(
                f"  {n} {name} pairs: PSNR vs float32 {f.vs_float32:.2f} dB mean, "
                f"{f.worst_vs_float32:.2f} dB worst pair{task}"
            )
    if args.report:
        print(f"wrote {args.report.with_suffix('.md')} and {args.report.with_suffix('.json')}")
    return 0
