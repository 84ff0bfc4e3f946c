"""dpanet triton-repo: a Triton model repository for an engine or a portable ONNX model."""

from __future__ import annotations

import argparse
from pathlib import Path

from dpanet.cli.options import non_negative_int, positive_int
from dpanet.errors import DPANetError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "triton-repo",
        help="write a Triton Inference Server model repository",
        description="Write REPO/NAME/config.pbtxt and REPO/NAME/1/model.plan (platform tensorrt_plan, "
        "from an engine and its sidecar: dynamic H and W from its profile) or model.onnx (platform "
        "onnxruntime_onnx, portable flavour only). The configuration is checked by parsing it with "
        "tritonclient's ModelConfig protobuf against the model's own inputs and outputs. Prints the "
        "tritonserver command (plugin library through LD_PRELOAD). Clients: dpanet deblur --server "
        "(docs/serving.md).",
    )
    p.add_argument("--engine", type=Path, help="a TensorRT engine from dpanet build-engine (with its .json)")
    p.add_argument("--model", type=Path, help="a portable-flavour .onnx model")
    p.add_argument("-o", "--output", required=True, type=Path, help="the repository folder (REPO)")
    p.add_argument("--name", default="dpanet", help="the model's name and folder (default: dpanet)")
    p.add_argument("--instances", type=positive_int, default=1, help="instances per GPU (default: 1)")
    p.add_argument(
        "--gpus",
        type=non_negative_int,
        nargs="+",
        metavar="ID",
        help="engine: one instance group per listed GPU (default: one group, every GPU)",
    )
    p.add_argument(
        "--plugins",
        metavar="PATH",
        help="engine: the plugin library's path on the server (default: the sidecar's)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dpanet.runtime.triton_config import describe_engine, describe_onnx, launch_line, write_repository

    if (args.engine is None) == (args.model is None):
        raise DPANetError("give --engine MODEL.plan or --model MODEL.onnx")
    if args.engine is None and (args.gpus or args.plugins):
        raise DPANetError("--gpus and --plugins are for an engine; ONNX Runtime serves on the CPU")
    if args.engine is not None:
        model = describe_engine(args.engine, args.plugins)
    else:
        model = describe_onnx(args.model)
    folder = write_repository(model, args.output, args.name, args.instances, args.gpus)
    print(f"wrote {folder} ({model.platform}); serve it with:\n  {launch_line(model, args.output)}")
    return 0
