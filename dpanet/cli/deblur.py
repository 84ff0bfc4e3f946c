"""dpanet deblur: one DP view pair to a deblurred image."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dpanet.cli.options import check_multiple, parse_size
from dpanet.errors import DPANetError
from dpanet.runtime.tiling import DEFAULT_OVERLAP


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "deblur",
        help="deblur a pair of dual-pixel views",
        description="Deblur a left/right dual-pixel view pair. Reads PNG/TIFF/JPEG, 8- or 16-bit, "
        "3-channel or single-channel; writes the input's bit depth and channel count.",
    )
    p.add_argument("--left", "-l", required=True, type=Path, help="left view")
    p.add_argument("--right", "-r", required=True, type=Path, help="right view")
    p.add_argument("-o", "--output", required=True, type=Path, help="output image (.png, .tif, .jpg)")
    p.add_argument(
        "--checkpoint", type=Path, help="our checkpoint, torch backend (default: the bundled demo model)"
    )
    p.add_argument("--model", type=Path, help="an exported .onnx model, onnxruntime backend")
    p.add_argument(
        "--backend",
        choices=["torch", "onnxruntime"],
        help="inference backend (default: onnxruntime when --model is given, else torch)",
    )
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="torch device (default: cpu)")
    p.add_argument("--threads", type=int, help="onnxruntime intra-op threads (default: all cores)")
    p.add_argument(
        "--tile",
        type=parse_size,
        metavar="HxW",
        help="run in overlapping tiles of this size (multiples of 8) to bound memory; a static-size "
        "model always tiles at its own size (docs/runtime.md)",
    )
    p.add_argument(
        "--overlap",
        type=int,
        metavar="N",
        help="pixels neighbouring tiles share, a multiple of 8 below half the tile "
        f"(default: {DEFAULT_OVERLAP})",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dpanet.runtime.images import check_writable, read_image, write_image
    from dpanet.runtime.pipeline import check_pair, deblur_pair

    if args.tile is not None:
        check_multiple("--tile", args.tile)
    left = read_image(args.left)
    right = read_image(args.right)
    check_pair(left, right)
    check_writable(args.output, left.bit_depth)
    backend_name = args.backend or ("onnxruntime" if args.model else "torch")
    if backend_name == "onnxruntime":
        if args.model is None:
            raise DPANetError("--backend onnxruntime needs --model MODEL.onnx (see `dpanet export`)")
        if args.checkpoint is not None:
            raise DPANetError("--checkpoint is for the torch backend; the onnxruntime backend reads --model")
        from dpanet.runtime.onnxruntime_backend import OnnxRuntimeBackend

        backend = OnnxRuntimeBackend(args.model, args.threads)
        channel_order = backend.channel_order
    else:
        if args.model is not None:
            raise DPANetError("--model is for the onnxruntime backend; the torch backend reads --checkpoint")
        backend, channel_order = _torch_backend(args.checkpoint, args.device)
    result = deblur_pair(left, right, backend, channel_order, args.tile, args.overlap, _note)
    write_image(args.output, result.pixels, result.bit_depth)
    print(
        f"wrote {args.output} ({left.size[1]} x {left.size[0]}, {left.channels} channel(s), "
        f"{left.bit_depth}-bit)"
    )
    return 0


def _torch_backend(checkpoint: Path | None, device: str):
    from dpanet.training.checkpoint import default_checkpoint_path, load_checkpoint
    from dpanet.training.inference import TorchBackend, resolve_device

    loaded = load_checkpoint(checkpoint or default_checkpoint_path())
    return TorchBackend(loaded.model, resolve_device(device)), loaded.channel_order


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)
