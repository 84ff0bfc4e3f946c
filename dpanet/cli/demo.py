"""dpanet demo: deblur a DP pair with the bundled demo model on the CPU; write the result and a figure."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dpanet.cli.options import add_size_option, check_multiple, check_square
from dpanet.errors import DPANetError

OUTPUTS = ("combined.png", "deblurred.png", "side_by_side.png")
SYNTHETIC = ("left.png", "right.png", "sharp.png")
"""Written besides :data:`OUTPUTS` without --left/--right: the rendered views and the all-in-focus image."""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="deblur a synthetic (or your) DP pair with the demo model and show the result",
        description="Without --left/--right: render a synthetic dual-pixel pair of a photograph the demo "
        "model never saw (docs/synthetic-dp.md), deblur it on the CPU and print PSNR/SSIM before and "
        "after against the all-in-focus image. With --left/--right: deblur that pair (no ground truth). "
        f"Writes into OUT: {', '.join(SYNTHETIC)} (the synthetic pair and its all-in-focus image, "
        f"without --left/--right) and {', '.join(OUTPUTS)} (the views' mean, the result, and a figure of "
        "them side by side). Files in OUT are replaced (keeping their permissions); a view of yours "
        "named like an output in OUT is refused.",
    )
    p.add_argument("--left", "-l", type=Path, help="your left view (with --right)")
    p.add_argument("--right", "-r", type=Path, help="your right view (with --left)")
    p.add_argument("--checkpoint", type=Path, help="our checkpoint (default: the bundled demo model)")
    add_size_option(p, "synthetic pair size, square, multiples of 8", (512, 512))
    p.add_argument(
        "--out", type=Path, default=Path("dpanet-demo"), help="output folder (default: dpanet-demo)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dpanet.files import check_not_input, output_folder

    if (args.left is None) != (args.right is None):
        raise DPANetError("give both --left and --right, or neither (synthetic pair)")
    size = check_square("--size", check_multiple("--size", args.size))
    for name in OUTPUTS:
        check_not_input(args.out / name, args.left, args.right, args.checkpoint)
    with output_folder(args.out):
        _demo(args, size)
    return 0


def _demo(args: argparse.Namespace, size: int) -> None:
    from dpanet.runtime.images import read_image, write_image
    from dpanet.runtime.pipeline import check_pair, deblur_pair
    from dpanet.training.checkpoint import default_checkpoint_path, load_checkpoint
    from dpanet.training.demo import demo_scene, side_by_side
    from dpanet.training.inference import TorchBackend, resolve_device
    from dpanet.training.metrics import scores

    start = time.perf_counter()
    loaded = load_checkpoint(args.checkpoint or default_checkpoint_path())  # before writing anything
    backend = TorchBackend(loaded.model, resolve_device("cpu"))
    sharp = None
    if args.left is None:  # make a pair, write it, and read it back like any other
        scene = demo_scene(size)
        args.left, args.right = args.out / "left.png", args.out / "right.png"
        for path, pixels in zip((args.left, args.right), scene.views(), strict=True):
            write_image(path, pixels, 8)
        sharp = read_image(write_image(args.out / "sharp.png", scene.sharp, 8)).pixels
    left, right = read_image(args.left), read_image(args.right)
    check_pair(left, right)
    combined = 0.5 * (left.pixels + right.pixels)  # views at full brightness: their mean
    write_image(args.out / "combined.png", combined, left.bit_depth)
    h, w = left.size
    deblur_start = time.perf_counter()
    result = deblur_pair(left, right, backend, loaded.channel_order)
    deblur_seconds = time.perf_counter() - deblur_start
    write_image(args.out / "deblurred.png", result.pixels, result.bit_depth)
    panels = [("combined view (input)", combined), ("deblurred", result.pixels)]
    panels += [("all-in-focus", sharp)] if sharp is not None else []
    write_image(args.out / "side_by_side.png", side_by_side(panels), 8)
    print(f"deblurred {h}x{w} on the CPU in {deblur_seconds:.1f} s")
    if sharp is not None:
        before = scores(combined, sharp)
        after = scores(result.pixels, sharp)
        print(f"PSNR before (combined view): {before.psnr:.2f} dB   SSIM {before.ssim:.3f}")
        print(f"PSNR after  (deblurred):     {after.psnr:.2f} dB   SSIM {after.ssim:.3f}")
    else:
        print("no all-in-focus image for a real pair: look at the figure")
    total = time.perf_counter() - start
    written = (SYNTHETIC if sharp is not None else ()) + OUTPUTS
    print(f"wrote {args.out}/: {', '.join(written)} ({total:.1f} s in all)")
