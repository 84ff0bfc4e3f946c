"""dpanet prepare-patches: cut DPDD frames into the training patches the release trained on."""

from __future__ import annotations

import argparse
from pathlib import Path

from dpanet.cli.options import check_multiple, parse_size
from dpanet.errors import DPANetError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "prepare-patches",
        help="cut DPDD frames into the release's 512x512 training patches",
        description="Reproduce DPDNet's image_to_patch_filter.py, whose patches the release trained "
        "on: a stride grid with edge patches (overlap 0.6 for train, 0.01 for val) and, for the "
        "training split, the 30% least sharp patches of each frame dropped (Sobel energy of the "
        "all-in-focus image at kernel sizes 3, 7, 11, 15). Reads DPDD's own naming (NAME_L / NAME_R "
        "views) or the renamed one; writes OUT/{split}_c/{source,target}, OUT/{split}_l/source, "
        "OUT/{split}_r/source with one name per patch (00000.png, ...) at the files' bit depth "
        "(docs/training.md).",
    )
    p.add_argument("--data", required=True, type=Path, help="DPDD root ({split}_{c,l,r}/... folders)")
    p.add_argument("--out", required=True, type=Path, help="output root (its split folders must not exist)")
    p.add_argument(
        "--split",
        action="append",
        choices=["train", "val"],
        help="split to cut (repeatable; default: train and val, as DPDNet does)",
    )
    p.add_argument(
        "--patch",
        type=parse_size,
        default=(512, 512),
        metavar="HxW",
        help="patch size, multiples of 8 (default: 512x512)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dpanet.training.patches import prepare_patches

    patch = check_multiple("--patch", args.patch)
    splits = args.split or ["train", "val"]
    if args.out.resolve() == args.data.resolve():
        raise DPANetError(f"--out {args.out}: is the --data folder; write the patches elsewhere")
    counts = prepare_patches(args.data, args.out, splits, patch)
    for split, count in counts.items():
        print(f"{split}: {count} patches in {args.out}/{split}_{{c,l,r}}")
    return 0
