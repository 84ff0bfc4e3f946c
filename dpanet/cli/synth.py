"""dpanet synth: write synthetic DP scenes to a folder in the DPDD layout (16-bit PNG)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dpanet.errors import DPANetError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "synth",
        help="write synthetic dual-pixel scenes in the DPDD layout",
        description="Render random synthetic DP scenes (docs/synthetic-dp.md) and write them as "
        "OUT/{split}_c/{source,target}, OUT/{split}_l/source, OUT/{split}_r/source (16-bit PNG), the "
        'layout dpanet evaluate and [data] kind = "dpdd" read. Scene i of a seed is the same scene a '
        "training config's synthetic data with that seed and vary_per_epoch = false gives.",
    )
    p.add_argument("--out", required=True, type=Path, help="output root")
    p.add_argument("--split", default="test", choices=["train", "val", "test"], help="(default: test)")
    p.add_argument("--count", type=int, default=32, help="number of scenes (default: 32)")
    p.add_argument(
        "--size", type=int, default=512, help="square size in pixels, multiple of 8 (default: 512)"
    )
    p.add_argument("--seed", type=int, default=0, help="(default: 0)")
    p.add_argument(
        "--photos", choices=["train", "heldout"], default="heldout", help="photograph set (default: heldout)"
    )
    p.add_argument(
        "--max-radius", type=float, default=8.0, help="largest |CoC radius| in pixels (default: 8)"
    )
    p.add_argument(
        "--blurry-only",
        action="store_true",
        help="every scene shows defocus (1 px of blur or more on at least 1%% of its pixels): "
        "a test set of blurry images, like DPDD's",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from dpanet.runtime.images import write_image
    from dpanet.training.data import SyntheticDPDataset, dpdd_folders
    from dpanet.training.scenes import SceneRecipe

    if args.count < 1:
        raise DPANetError("--count must be at least 1")
    if args.size < 8 or args.size % 8:
        raise DPANetError(f"--size must be a positive multiple of 8, got {args.size}")
    if args.max_radius <= 0:
        raise DPANetError("--max-radius must be positive")
    if args.blurry_only and args.max_radius < 1:
        raise DPANetError("--blurry-only needs --max-radius 1 or more")
    recipe = SceneRecipe(
        max_radius=args.max_radius, photos=args.photos, blur_free_scenes=not args.blurry_only
    )
    dataset = SyntheticDPDataset(args.count, args.size, recipe, args.seed, vary_per_epoch=False)
    folders = dpdd_folders(args.out, args.split)
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for i in tqdm(range(args.count), desc="synth", unit="scene", disable=None):
        image = dataset.render(i)
        left, right = image.views()
        name = f"synth_{args.seed}_{i:05d}.png"
        pixels = {
            "left": left,
            "right": right,
            "combined": np.clip(image.combined, 0, 1),
            "target": image.sharp,
        }
        for role, folder in folders.items():
            write_image(folder / name, pixels[role], 16)
    print(f"wrote {args.count} scenes to {args.out} ({args.split} split, {args.size} x {args.size}, 16-bit)")
    return 0
