"""Training and evaluation data: DPDD, folders of L/R(/sharp) triplets, and synthetic DP scenes.

- **DPDD** (official layout, 16-bit PNG) and **triplets** (``NAME_{L,R,S,C}.ext``, the sharp
  ``S`` needed for training, the combined ``C`` optional: without it the combined image is the mean
  of the two views): the layouts (DPDD as the release renamed it, or DPDD's own ``NAME_L`` /
  ``NAME_R`` naming) and their discovery are in :mod:`dpanet.runtime.pairs` (torch-free, shared
  with ``dpanet deblur --pairs``).
- **Synthetic**: scenes of :mod:`dpanet.training.scenes` rendered on the fly.

Every dataset yields dicts of 3 x H x W float32 tensors ``left``, ``right``, ``combined`` and
``target`` in the network's channel order, plus ``name``. Randomness (augmentation, synthetic
scenes) comes from a generator seeded with (seed, epoch, index): results do not depend on the
number of loader workers or processes, and :meth:`set_epoch` gives each epoch new draws.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from dpanet.contract import SIZE_MULTIPLE
from dpanet.runtime.images import Image, read_image, to_integer
from dpanet.runtime.pairs import (
    SPLITS,
    VIEWS,
    DatasetError,
    PairFiles,
    dpdd_folders,
    list_dpdd,
    list_triplets,
)
from dpanet.runtime.pipeline import to_network
from dpanet.training.scenes import SceneRecipe, render_random_scene
from dpanet.training.synth import DPImage

__all__ = [  # discovery lives in the torch-free dpanet.runtime.pairs; re-exported for the loaders' users
    "AUGMENTATIONS",
    "SPLITS",
    "DatasetError",
    "PairDataset",
    "PairFiles",
    "SyntheticDPDataset",
    "Transform",
    "center_crop",
    "dpdd_folders",
    "list_dpdd",
    "list_triplets",
    "load_scene",
    "random_crop",
    "release_augment",
]

_LISTED = 5  # scenes named in an error message


def read_eight_bit(path: Path) -> Image:
    """An image read as 8-bit, the way OpenCV's ``imread`` (default flags) reads a 16-bit PNG:
    value >> 8 (the release's reads, for training and testing)."""
    image = read_image(path)
    if image.bit_depth == 8:
        return image
    values = np.rint(image.pixels * 65535.0)
    return Image((np.floor(values / 256) / 255).astype(np.float32), 8, image.path)


def read_scene(files: PairFiles, eight_bit: bool = False) -> dict[str, Image]:
    """A scene's images (8-bit reads if asked), checked to have one size and channel count."""
    paths = {"left": files.left, "right": files.right, "target": files.target, "combined": files.combined}
    read = read_eight_bit if eight_bit else read_image
    images = {role: read(path) for role, path in paths.items() if path is not None}
    reference = images["left"]
    for image in images.values():
        if image.size != reference.size or image.channels != reference.channels:
            (h, w), (rh, rw) = image.size, reference.size
            raise DatasetError(
                f"{image.path}: {h}x{w} with {image.channels} channel(s) does not match the left view "
                f"{files.left} ({rh}x{rw}, {reference.channels} channel(s)) of scene {files.name}"
            )
    return images


def load_scene(files: PairFiles, eight_bit: bool = False) -> dict[str, np.ndarray]:
    """Read a scene's images (H x W x C float32 in [0, 1], file order) and check they match."""
    pixels = {role: image.pixels for role, image in read_scene(files, eight_bit).items()}
    if "combined" not in pixels:
        pixels["combined"] = 0.5 * (pixels["left"] + pixels["right"])
    return pixels


def load_integers(files: PairFiles) -> tuple[dict[str, np.ndarray], int]:
    """A scene's four images as the integers of their files, and their common bit depth."""
    images = read_scene(files)
    depths = {image.bit_depth for image in images.values()}
    if len(images) != len(VIEWS) or len(depths) != 1:
        raise DatasetError(f"scene {files.name}: needs all four images at one bit depth")
    depth = depths.pop()
    return {role: to_integer(image.pixels, depth) for role, image in images.items()}, depth


# --- augmentation: functions of (rng, dict of H x W x C arrays) -> dict of arrays ------------------

Transform = Callable[[np.random.Generator, dict[str, np.ndarray]], dict[str, np.ndarray]]


def release_draw(rng: np.random.Generator, patch: int) -> tuple[int, int, bool]:
    """The release's random draws for one item: the resized size s (even, uniform over patch,
    patch + 2, ..., the largest even number below 1.25 patch: 512 ... 638), one crop offset in
    [0, s - patch] for both axes, and a vertical flip with p = 0.5."""
    high = patch * 5 // 4
    size = 2 * int(rng.integers(patch // 2, max(high // 2, patch // 2 + 1)))
    offset = int(rng.integers(0, size - patch + 1))
    return size, offset, bool(rng.random() < 0.5)


def release_apply(
    images: dict[str, np.ndarray], patch: int, size: int, offset: int, flip: bool
) -> dict[str, np.ndarray]:
    """Resize every image to size x size (bilinear: the release passes its INTER_CUBIC flag in
    OpenCV's ``dst`` slot, so the default INTER_LINEAR applies), crop patch x patch at (offset,
    offset), flip upside down if asked."""
    out = {}
    for role, image in images.items():
        resized = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR).reshape(size, size, -1)
        crop = resized[offset : offset + patch, offset : offset + patch]
        out[role] = crop[::-1] if flip else crop
    return out


def release_augment(patch: int) -> Transform:
    """The release's augmentation (:func:`release_draw`, :func:`release_apply`). It squashes
    whatever it is given to a square: the release gives it 512 x 512 patches (``prepare-patches``)."""

    def transform(rng: np.random.Generator, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return release_apply(images, patch, *release_draw(rng, patch))

    return transform


def random_crop(patch: int) -> Transform:
    """A patch x patch crop at a uniformly random position (no resizing, no flips)."""

    def transform(rng: np.random.Generator, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        h, w = next(iter(images.values())).shape[:2]
        if h < patch or w < patch:
            raise DatasetError(f"image {h}x{w} is smaller than the {patch}x{patch} training patch")
        y, x = int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))
        return {role: image[y : y + patch, x : x + patch] for role, image in images.items()}

    return transform


def center_crop(patch: int | None) -> Transform:
    """A centred patch x patch crop; with None, the largest centred crop whose sides are multiples
    of 8 (what the network takes)."""

    def transform(rng: np.random.Generator, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        h, w = next(iter(images.values())).shape[:2]
        ch, cw = (patch, patch) if patch else (h - h % SIZE_MULTIPLE, w - w % SIZE_MULTIPLE)
        if h < ch or w < cw or ch == 0 or cw == 0:
            raise DatasetError(f"image {h}x{w} is too small for a {ch}x{cw} crop")
        y, x = (h - ch) // 2, (w - cw) // 2
        return {role: image[y : y + ch, x : x + cw] for role, image in images.items()}

    return transform


AUGMENTATIONS = {"release": release_augment, "crop": random_crop, "center": center_crop}


# --- datasets ----------------------------------------------------------------------------------------


class _SeededDataset(Dataset):
    """Per-item generators seeded with (seed, epoch, index)."""

    def __init__(self, seed: int, channel_order: str) -> None:
        self.seed = seed
        self.epoch = 0
        self.channel_order = channel_order

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def _to_tensors(self, name: str, images: dict[str, np.ndarray]) -> dict:
        item = {
            role: torch.from_numpy(to_network(np.ascontiguousarray(images[role]), self.channel_order)[0])
            for role in VIEWS
        }
        item["name"] = name
        return item


class PairDataset(_SeededDataset):
    """Scenes from files (DPDD or triplets) with a transform; every scene needs a target.
    ``eight_bit``: read 16-bit files as 8-bit, as the release does (:func:`read_eight_bit`)."""

    def __init__(
        self,
        files: list[PairFiles],
        transform: Transform,
        seed: int = 0,
        channel_order: str = "BGR",
        eight_bit: bool = False,
    ):
        super().__init__(seed, channel_order)
        self.eight_bit = eight_bit
        no_target = [f.name for f in files if f.target is None]
        if no_target:
            raise DatasetError(
                f"no sharp image for {len(no_target)} scene(s): {', '.join(no_target[:_LISTED])}"
            )
        self.files = files
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        files = self.files[index]
        images = load_scene(files, self.eight_bit)
        return self._to_tensors(files.name, self.transform(self._rng(index), images))


class SyntheticDPDataset(_SeededDataset):
    """``count`` random scenes of ``size`` x ``size`` pixels, rendered when asked for.

    With ``vary_per_epoch`` every epoch draws new scenes; otherwise item i is the same scene in
    every epoch (a fixed set, e.g. for validation).
    """

    def __init__(
        self,
        count: int,
        size: int,
        recipe: SceneRecipe,
        seed: int = 0,
        vary_per_epoch: bool = True,
        channel_order: str = "BGR",
    ) -> None:
        super().__init__(seed, channel_order)
        if count < 1 or size < SIZE_MULTIPLE or size % SIZE_MULTIPLE:
            raise DatasetError(
                f"synthetic data needs count >= 1 and a size that is a multiple of 8, got {count}, {size}"
            )
        self.count, self.size, self.recipe = count, size, recipe
        self.vary_per_epoch = vary_per_epoch

    def __len__(self) -> int:
        return self.count

    def set_epoch(self, epoch: int) -> None:
        if self.vary_per_epoch:
            self.epoch = epoch

    def render(self, index: int) -> DPImage:
        return render_random_scene(self._rng(index), self.size, self.size, self.recipe)

    def __getitem__(self, index: int) -> dict:
        image = self.render(index)
        left, right = image.views()
        images = {
            "left": left,
            "right": right,
            "combined": np.clip(image.combined, 0, 1),
            "target": image.sharp,
        }
        return self._to_tensors(f"synthetic-{self.seed}-{index}", images)
