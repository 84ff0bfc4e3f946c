"""dpanet evaluate: PSNR / SSIM / MAE (LPIPS when available) of a checkpoint on a DPDD-layout split."""

from __future__ import annotations

import argparse
from pathlib import Path

from dpanet.cli.options import non_negative_int
from dpanet.errors import DPANetError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score a checkpoint on a DPDD-layout split",
        description="Deblur every scene of a DPDD-layout split and score it against the all-in-focus "
        "image, beside the blurry combined input and the paper's Table I. Writes a per-image CSV and a "
        "summary (docs/training.md) into OUT, replacing those files if present (keeping their "
        "permissions); a folder this run created is removed again if it fails.",
    )
    p.add_argument("--data", required=True, type=Path, help="DPDD root ({split}_{c,l,r}/... folders)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"], help="(default: test)")
    p.add_argument("--checkpoint", type=Path, help="our checkpoint (default: the bundled demo model)")
    p.add_argument(
        "--protocol",
        choices=["release", "16bit", "both"],
        default="both",
        help="release: 8-bit reads, output truncated to uint8 (the paper's protocol); 16bit: the "
        "files' precision, output rounded (default: both)",
    )
    p.add_argument(
        "--unsharp",
        metavar="SIGMA,AMOUNT",
        action="append",
        default=[],
        help="also score unsharp masking of the combined image (repeatable)",
    )
    p.add_argument("--limit", type=non_negative_int, default=0, help="only the first N scenes (default: all)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="torch device (default: cpu)")
    p.add_argument(
        "--out", type=Path, default=Path("dpanet-eval"), help="output folder (default: dpanet-eval)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dpanet.files import output_folder, write_text_atomic
    from dpanet.training.baseline import UnsharpMask
    from dpanet.training.checkpoint import default_checkpoint_path, load_checkpoint
    from dpanet.training.data import list_dpdd
    from dpanet.training.evaluation import PROTOCOLS, evaluate_split, summary_table, write_csv
    from dpanet.training.inference import TorchBackend, float32_mode, resolve_device
    from dpanet.training.metrics import load_lpips

    baselines = {}
    for text in args.unsharp:
        try:
            method = UnsharpMask.parse(text)
        except ValueError as exc:
            raise DPANetError(f"--unsharp: {exc}") from None
        baselines[str(method)] = method
    scenes = list_dpdd(args.data, args.split)
    scenes = scenes[: args.limit] if args.limit else scenes
    loaded = load_checkpoint(args.checkpoint or default_checkpoint_path())
    backend = TorchBackend(loaded.model, resolve_device(args.device), progress=False)
    with output_folder(args.out):  # before the long part, so a bad --out fails at once
        lpips, lpips_note = load_lpips()
        if lpips is None:
            lpips_note = f"skipped: {lpips_note}"
        protocols = PROTOCOLS if args.protocol == "both" else (args.protocol,)
        with float32_mode("ieee"):  # the release's GPU had no TF32
            evaluations = [
                evaluate_split(scenes, backend, loaded.channel_order, protocol, baselines, lpips)
                for protocol in protocols
            ]
        csv_path = write_csv(args.out / "per_image.csv", evaluations)
        summary = summary_table(evaluations, len(scenes), lpips_note)
        write_text_atomic(args.out / "summary.txt", summary + "\n")
    print(summary)
    print(f"per-image scores: {csv_path}")
    return 0
