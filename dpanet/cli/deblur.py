"""dpanet deblur: one DP view pair to a deblurred image."""

from __future__ import annotations

import argparse
from pathlib import Path

from dpanet.errors import DPANetError


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
    p.add_argument("--checkpoint", type=Path, help="our checkpoint (default: the bundled demo model)")
    p.add_argument("--backend", choices=["torch"], default="torch", help="inference backend (default: torch)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="torch device (default: cpu)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dpanet.runtime.images import check_writable, read_image, write_image
    from dpanet.runtime.pipeline import check_pair, deblur_pair

    left = read_image(args.left)
    right = read_image(args.right)
    check_pair(left, right)
    check_writable(args.output, left.bit_depth)
    if args.backend == "torch":
        backend, channel_order = _torch_backend(args.checkpoint, args.device)
    else:  # argparse limits the choices
        raise DPANetError(f"unknown backend {args.backend}")
    result = deblur_pair(left, right, backend, channel_order)
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
