"""dpanet synth: write synthetic DP scenes to a folder in the DPDD layout (16-bit PNG)."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dpanet.cli.options import (
    add_size_option,
    check_multiple,
    check_square,
    non_negative_int,
    positive_float,
    positive_int,
)
from dpanet.errors import DPANetError
from dpanet.files import describe


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "synth",
        help="write synthetic dual-pixel scenes in the DPDD layout",
        description="Render random synthetic DP scenes (docs/synthetic-dp.md) and write them as "
        "OUT/{split}_c/{source,target}, OUT/{split}_l/source, OUT/{split}_r/source (16-bit PNG), the "
        'layout dpanet evaluate and [data] kind = "dpdd" read. Scene i of a seed is the same scene a '
        "training config's synthetic data with that seed and vary_per_epoch = false gives. The set is "
        "rendered in a hidden folder of OUT and moved into place when complete, so an interrupted run "
        "leaves nothing; a split whose folders exist already is refused.",
    )
    p.add_argument("--out", required=True, type=Path, help="output root")
    p.add_argument("--split", default="test", choices=["train", "val", "test"], help="(default: test)")
    p.add_argument("--count", type=positive_int, default=32, help="number of scenes (default: 32)")
    add_size_option(p, "scene size, square, multiples of 8", (512, 512))
    p.add_argument("--seed", type=non_negative_int, default=0, help="(default: 0)")
    p.add_argument(
        "--photos", choices=["train", "heldout"], default="heldout", help="photograph set (default: heldout)"
    )
    p.add_argument(
        "--max-radius", type=positive_float, default=8.0, help="largest |CoC radius| in pixels (default: 8)"
    )
    p.add_argument(
        "--blurry-only",
        action="store_true",
        help="every scene shows defocus (1 px of blur or more on at least 1%% of its pixels): "
        "a test set of blurry images, like DPDD's",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from dpanet.files import output_folder
    from dpanet.training.data import SyntheticDPDataset
    from dpanet.training.scenes import SceneRecipe

    size = check_square("--size", check_multiple("--size", args.size))
    if args.blurry_only and args.max_radius < 1:
        raise DPANetError("--blurry-only needs --max-radius 1 or more")
    taken = [folder for folder in _set_folders(args.out, args.split) if folder.exists()]
    if taken:
        raise DPANetError(f"{taken[0]}: exists already; remove it or choose another --out or --split")
    recipe = SceneRecipe(
        max_radius=args.max_radius, photos=args.photos, blur_free_scenes=not args.blurry_only
    )
    dataset = SyntheticDPDataset(args.count, size, recipe, args.seed, vary_per_epoch=False)
    with output_folder(args.out) as out, _staging(out, args.split) as staging:
        scenes = tqdm(range(args.count), desc="synth", unit="scene", disable=None)
        _write_scenes(dataset, scenes, staging, args.split, args.seed)
        for folder in _set_folders(staging, args.split):  # the set appears complete, or not at all
            os.replace(folder, out / folder.name)
    print(f"wrote {args.count} scenes to {args.out} ({args.split} split, {size}x{size}, 16-bit)")
    return 0


def _set_folders(root: Path, split: str) -> list[Path]:
    """The top folders of one split's scene set in the DPDD layout."""
    return [root / f"{split}_{view}" for view in ("c", "l", "r")]


@contextlib.contextmanager
def _staging(out: Path, split: str) -> Iterator[Path]:
    """A hidden folder in ``out`` that the set is rendered into, removed afterwards (loaders never
    read it: its name is not the DPDD layout's)."""
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".synth-{split}-", dir=out))
    except OSError as exc:
        raise DPANetError(f"--out {out}: {describe(exc)}") from None
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_scenes(dataset, indices, root: Path, split: str, seed: int) -> None:
    import numpy as np

    from dpanet.runtime.images import write_image
    from dpanet.training.data import dpdd_folders

    folders = dpdd_folders(root, split)
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for i in indices:
        image = dataset.render(i)
        left, right = image.views()
        name = f"synth_{seed}_{i:05d}.png"
        pixels = {
            "left": left,
            "right": right,
            "combined": np.clip(image.combined, 0, 1),
            "target": image.sharp,
        }
        for role, folder in folders.items():
            write_image(folder / name, pixels[role], 16)
