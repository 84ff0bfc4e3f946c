"""dpanet build-engine: an exported ONNX model to a TensorRT engine and its sidecar."""

from __future__ import annotations

import argparse
from pathlib import Path

from dpanet.cli.options import add_profile_options, profile_sizes


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "build-engine",
        help="build a TensorRT engine from an exported ONNX model",
        description="Build a TensorRT engine (TensorRT 10.3+ or 11.x, on the GPU that will run it) from a "
        "model written by dpanet export or dpanet calibrate, with one optimization profile for left and "
        "right. Precision comes from the file: fp32, fp16, or int8 Q/DQ (strongly typed on 10.x too). "
        "Writes the engine and a sidecar OUTPUT.json (TensorRT version, GPU, the ONNX file's sha256 and "
        "metadata, plugin library, precision, typing, profile) and prints the equivalent trtexec "
        "command (docs/engines.md).",
    )
    p.add_argument("--onnx", required=True, type=Path, help="the exported .onnx model")
    p.add_argument("-o", "--output", required=True, type=Path, help="the engine to write (e.g. model.plan)")
    p.add_argument(
        "--plugins",
        type=Path,
        help="plugin library (default for plugin-flavour models: the installed "
        "libdpanet_trt<major>_plugins.so of the running TensorRT)",
    )
    add_profile_options(p)
    p.add_argument("--batch", type=int, default=1, help="batch size of the profile (default: 1)")
    p.add_argument(
        "--workspace", type=float, default=4.0, metavar="GiB", help="builder workspace (default: 4)"
    )
    p.add_argument(
        "--timing-cache",
        type=Path,
        metavar="FILE",
        help="timing cache to read and update (one from another GPU or TensorRT version is replaced)",
    )
    p.add_argument(
        "--weakly-typed",
        action="store_true",
        help="TensorRT 10.x only: a weakly typed network with the FP16 (and INT8) builder flags, TensorRT "
        "choosing each layer's precision; default: strongly typed, each layer in the file's types, as "
        "on 11.x (NVIDIA's guidance for Q/DQ files; docs/engines.md)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dpanet.runtime.tensorrt_engine import BuildRequest, build, sidecar_path

    profile_min, profile_opt, profile_max = profile_sizes(args)
    request = BuildRequest(
        onnx=args.onnx,
        output=args.output,
        plugins=args.plugins,
        profile_min=profile_min,
        profile_opt=profile_opt,
        profile_max=profile_max,
        batch=args.batch,
        workspace_gib=args.workspace,
        timing_cache=args.timing_cache,
        weakly_typed=args.weakly_typed,
    )
    sidecar = build(request)
    print(
        f"wrote {args.output} and {sidecar_path(args.output)} (TensorRT {sidecar.tensorrt_version}, "
        f"{sidecar.gpu_name}, {sidecar.precision})"
    )
    return 0
