"""dpanet export: a checkpoint to ONNX (plugin or portable flavour, fp32 or fp16)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dpanet.cli.options import add_size_option, check_multiple


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a checkpoint to ONNX",
        description="Export a checkpoint to ONNX. The plugin flavour has one node per correlation and DCN "
        "for our TensorRT plugins; the portable flavour uses standard ONNX only (DeformConv, opset 19+). "
        "Height and width are dynamic (multiples of 8) unless --size is given. An existing output is "
        "replaced (keeping its permissions; a symlink keeps pointing at the replaced file); an output "
        "that is the checkpoint is refused.",
    )
    p.add_argument("--checkpoint", type=Path, help="our checkpoint (default: the bundled demo model)")
    p.add_argument("-o", "--output", required=True, type=Path, help="the .onnx file to write")
    p.add_argument("--flavor", choices=["plugin", "portable"], default="plugin", help="default: plugin")
    p.add_argument("--precision", choices=["fp32", "fp16"], default="fp32", help="default: fp32")
    p.add_argument("--opset", type=int, default=19, help="ONNX opset (default: 19)")
    add_size_option(p, "static size, multiples of 8", None, shown="dynamic")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from dpanet.export.exporter import ExportOptions, export_checkpoint
    from dpanet.export.summary import summarize
    from dpanet.training.checkpoint import default_checkpoint_path

    height, width = check_multiple("--size", args.size) if args.size else (None, None)
    options = ExportOptions(args.flavor, args.precision, args.opset, height, width)
    options.validate()
    stages = 4 if args.precision == "fp16" else 3
    bars = []  # the bar starts with the first stage, after the inputs were checked and loaded

    def progress(step: str) -> None:
        if bars:
            bars[0].update()
        else:
            bars.append(
                tqdm(total=stages, bar_format="export [{n}/{total}] {desc}", leave=False, disable=None)
            )
        bars[0].set_description_str(step)

    try:
        model = export_checkpoint(
            args.checkpoint or default_checkpoint_path(), args.output, options, progress
        )
    finally:
        for bar in bars:
            bar.close()
    print(summarize(model, args.output))
    return 0
