"""dpanet deblur: one DP view pair to a deblurred image."""

from __future__ import annotations

import argparse
from pathlib import Path

from dpanet.cli.options import positive_int
from dpanet.errors import DPANetError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "deblur",
        help="deblur a pair of dual-pixel views",
        description="Deblur a left/right dual-pixel view pair. Reads PNG/TIFF/JPEG, 8- or 16-bit, "
        "3-channel or single-channel; writes the input's bit depth and channel count. An existing "
        "output is replaced (keeping its permissions; a symlink keeps pointing at the replaced file); "
        "an output that is one of the inputs is refused.",
    )
    p.add_argument("--left", "-l", required=True, type=Path, help="left view")
    p.add_argument("--right", "-r", required=True, type=Path, help="right view")
    p.add_argument("-o", "--output", required=True, type=Path, help="output image (.png, .tif, .jpg)")
    p.add_argument(
        "--checkpoint", type=Path, help="our checkpoint, torch backend (default: the bundled demo model)"
    )
    p.add_argument("--model", type=Path, help="an exported .onnx model, onnxruntime backend")
    p.add_argument("--engine", type=Path, help="a TensorRT engine from dpanet build-engine, tensorrt backend")
    p.add_argument("--plugins", type=Path, help="tensorrt backend: plugin library (default: the sidecar's)")
    p.add_argument(
        "--backend",
        choices=["torch", "onnxruntime", "tensorrt"],
        help="inference backend (default: tensorrt with --engine, onnxruntime with --model, else torch)",
    )
    p.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        help="torch device (default: cpu); the onnxruntime backend runs on the CPU only",
    )
    p.add_argument("--threads", type=positive_int, help="CPU threads of either backend (default: all cores)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dpanet.files import check_not_input
    from dpanet.runtime.images import check_writable, read_image, write_image
    from dpanet.runtime.pipeline import check_pair, deblur_pair

    inputs = (args.left, args.right, args.checkpoint, args.model, args.engine, args.plugins)
    check_not_input(args.output, *inputs)
    left = read_image(args.left)
    right = read_image(args.right)
    check_pair(left, right)
    check_writable(args.output, left.bit_depth)
    backend_name = args.backend or ("tensorrt" if args.engine else "onnxruntime" if args.model else "torch")
    if (backend_name == "tensorrt") != (args.engine is not None):
        raise DPANetError(
            "the tensorrt backend and --engine ENGINE.plan go together (see `dpanet build-engine`)"
        )
    if args.plugins is not None and backend_name != "tensorrt":
        raise DPANetError("--plugins is for the tensorrt backend (--engine)")
    if backend_name == "tensorrt":
        if any(v is not None for v in (args.model, args.checkpoint, args.threads, args.device)):
            raise DPANetError(
                "--engine runs a TensorRT engine on the GPU; --model, --checkpoint, --threads and --device "
                "are for other backends"
            )
        from dpanet.runtime.tensorrt_backend import TensorRTBackend

        backend = TensorRTBackend(args.engine, args.plugins)
        channel_order = backend.channel_order
    elif backend_name == "onnxruntime":
        if args.model is None:
            raise DPANetError("--backend onnxruntime needs --model MODEL.onnx (see `dpanet export`)")
        if args.checkpoint is not None:
            raise DPANetError("--checkpoint is for the torch backend; the onnxruntime backend reads --model")
        if args.device == "cuda":
            raise DPANetError("--device cuda: the onnxruntime backend runs on the CPU (use --backend torch)")
        from dpanet.runtime.onnxruntime_backend import OnnxRuntimeBackend

        backend = OnnxRuntimeBackend(args.model, args.threads)
        channel_order = backend.channel_order
    else:
        if args.model is not None:
            raise DPANetError("--model is for the onnxruntime backend; the torch backend reads --checkpoint")
        backend, channel_order = _torch_backend(args.checkpoint, args.device or "cpu", args.threads)
    result = deblur_pair(left, right, backend, channel_order)
    write_image(args.output, result.pixels, result.bit_depth)
    print(
        f"wrote {args.output} ({left.size[1]} x {left.size[0]}, {left.channels} channel(s), "
        f"{left.bit_depth}-bit)"
    )
    return 0


def _torch_backend(checkpoint: Path | None, device: str, threads: int | None):
    import torch

    from dpanet.training.checkpoint import default_checkpoint_path, load_checkpoint
    from dpanet.training.inference import TorchBackend, resolve_device

    if threads:
        torch.set_num_threads(threads)
    loaded = load_checkpoint(checkpoint or default_checkpoint_path())
    return TorchBackend(loaded.model, resolve_device(device)), loaded.channel_order
