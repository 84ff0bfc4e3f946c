"""dpanet tune-unsharp: the unsharp-mask baseline's best (sigma, amount) on a set of scenes."""

from __future__ import annotations

import argparse
from pathlib import Path

from dpanet.errors import DPANetError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "tune-unsharp",
        help="tune the unsharp-masking baseline on training data",
        description="Grid-search unsharp masking of the combined image (sigma, amount) for the best mean "
        "PSNR on the scenes of a training configuration's [data] (its first epoch's draws) or of a "
        "DPDD-layout split. Pass the result to dpanet evaluate --unsharp SIGMA,AMOUNT.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, help="training configuration (.toml): its [data]")
    source.add_argument("--data", type=Path, help="DPDD-layout root")
    p.add_argument(
        "--split", default="train", choices=["train", "val", "test"], help="with --data (default: train)"
    )
    p.add_argument("--samples", type=int, default=200, help="at most this many scenes (default: 200)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from dpanet.training.baseline import tune_unsharp
    from dpanet.training.data import PairDataset, center_crop, list_dpdd
    from dpanet.training.train_config import load_config
    from dpanet.training.trainer import build_dataset

    if args.samples < 1:
        raise DPANetError("--samples must be at least 1")
    if args.config is not None:
        config = load_config(args.config)
        dataset = build_dataset(config.data, config.model.channel_order)
    else:
        dataset = PairDataset(list_dpdd(args.data, args.split), center_crop(None))
    count = min(args.samples, len(dataset))

    def pairs():
        for i in tqdm(range(count), desc="tune", unit="scene", disable=None):
            item = dataset[i]
            yield item["combined"].numpy().transpose(1, 2, 0), item["target"].numpy().transpose(1, 2, 0)

    best, psnr = tune_unsharp(pairs())
    print(f"best on {count} scenes: {best} -> mean PSNR {psnr:.2f} dB")
    print(f"use: dpanet evaluate ... --unsharp {best.sigma:g},{best.amount:g}")
    return 0
