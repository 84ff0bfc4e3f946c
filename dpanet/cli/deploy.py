"""dpanet deploy: a checkpoint to a checked deployment folder (export, calibrate, engine, parity)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dpanet.calib.choices import TARGETS
from dpanet.cli.options import add_profile_options, profile_sizes


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "deploy",
        help="checkpoint -> ONNX (int8: calibrated) -> engine -> parity, in one checked folder",
        description="Export the checkpoint (or calibrate it, --precision int8), build a TensorRT engine "
        "where TensorRT is present (elsewhere stop after the ONNX model with the trtexec line and why), "
        "check every model made against the PyTorch reference on held-out --pairs, and write DIR: the "
        "models, sidecars, parity.md/json with heat maps, deploy.json (versions, hashes, precision, "
        "profile, tolerances, pass/fail) and a README. A step whose inputs are unchanged since the last "
        "run into DIR is kept (--force redoes all). Exit 1 when parity fails; DIR shows why "
        "(docs/serving.md).",
    )
    p.add_argument("--checkpoint", type=Path, help="our checkpoint (default: the bundled demo model)")
    p.add_argument("-o", "--output", required=True, type=Path, help="the deployment folder (DIR)")
    p.add_argument(
        "--pairs",
        required=True,
        type=Path,
        metavar="DIR",
        help="held-out pairs for parity (as dpanet deblur --pairs), never the calibration pairs",
    )
    p.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="fp32", help="default: fp32")
    p.add_argument("--flavor", choices=["plugin", "portable"], default="plugin", help="default: plugin")
    p.add_argument("--target", choices=list(TARGETS), default="tensorrt", help="default: tensorrt (engine)")
    p.add_argument("--calibration", type=Path, metavar="DIR", help="int8: the calibration pairs")
    add_profile_options(p)
    p.add_argument("--force", action="store_true", help="redo every step")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import sys
    import time

    from dpanet.export.deploy import DeployOptions, deploy
    from dpanet.training.checkpoint import default_checkpoint_path

    profile_min, profile_opt, profile_max = profile_sizes(args)
    options = DeployOptions(
        precision=args.precision,
        flavor=args.flavor,
        target=args.target,
        calibration=args.calibration,
        profile_min=profile_min,
        profile_opt=profile_opt,
        profile_max=profile_max,
        force=args.force,
    )
    start = time.monotonic()
    manifest = deploy(
        args.checkpoint or default_checkpoint_path(),
        args.output,
        args.pairs,
        options,
        log=lambda line: print(f"deploy: {line}", file=sys.stderr, flush=True),
    )
    verdict = "passed" if manifest["passed"] else "FAILED parity (see parity.md)"
    print(f"wrote {args.output} ({verdict}, {time.monotonic() - start:.1f} s)")
    return 0 if manifest["passed"] else 1
