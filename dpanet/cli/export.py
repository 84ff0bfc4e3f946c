"""dpanet export: a checkpoint to ONNX (plugin or portable flavour, fp32 or fp16)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a checkpoint to ONNX",
        description="Export a checkpoint to ONNX. The plugin flavour has one node per correlation and DCN "
        "for our TensorRT plugins; the portable flavour uses standard ONNX only (DeformConv, opset 19+). "
        "Height and width are dynamic (multiples of 8) unless --height and --width are given.",
    )
    p.add_argument("--checkpoint", type=Path, help="our checkpoint (default: the bundled demo model)")
    p.add_argument("-o", "--output", required=True, type=Path, help="the .onnx file to write")
    p.add_argument("--flavor", choices=["plugin", "portable"], default="plugin", help="default: plugin")
    p.add_argument("--precision", choices=["fp32", "fp16"], default="fp32", help="default: fp32")
    p.add_argument("--opset", type=int, default=19, help="ONNX opset (default: 19)")
    p.add_argument("--height", type=int, help="static height (a multiple of 8)")
    p.add_argument("--width", type=int, help="static width (a multiple of 8)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from dpanet.export.exporter import ExportOptions, export_checkpoint
    from dpanet.export.summary import summarize
    from dpanet.training.checkpoint import default_checkpoint_path

    options = ExportOptions(args.flavor, args.precision, args.opset, args.height, args.width)
    options.validate()
    stages = 4 if args.precision == "fp16" else 3
    with tqdm(total=stages, bar_format="export [{n}/{total}] {desc}", leave=False) as bar:

        def progress(step: str) -> None:
            if bar.desc:
                bar.update()
            bar.set_description_str(step)

        model = export_checkpoint(
            args.checkpoint or default_checkpoint_path(), args.output, options, progress
        )
    print(summarize(model, args.output))
    return 0
