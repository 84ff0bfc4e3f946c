"""The training patches the release trained on: DPDNet's patch grid and its sharpness filter.

DPANet's release trains on 512 x 512 patches cut beforehand by DPDNet's ``image_to_patch_filter.py``
(Abuolaim and Brown, ECCV 2020). Its semantics, which :func:`prepare_patches` reproduces:

- **Grid** (:func:`patch_grid`): row starts 0, s, 2s, ... below the frame height and column starts
  likewise (s = int((1 - overlap) * patch): overlap 0.6 for ``train``, 204 px for 512 patches;
  0.01 for ``val``, 506 px), visited row by row. A start that fits is a patch. One that does not is
  moved to the frame's edge: to the right edge if its row fits, else to the bottom edge if its
  column fits, else to the bottom-right corner, each edge position taken at most once; when the
  first choice was already taken the next one is tried (so the corner can come early). A DPDD frame
  (1680 x 1120) gives 28 training patches and 12 validation patches.
- **Sharpness filter** (training split only, frame by frame): each patch's all-in-focus image,
  in grey (OpenCV's BGR2GRAY), gets the Sobel energy sum(sqrt(gx^2 + gy^2)) at kernel sizes 3, 7,
  11 and 15; each measure is min-max normalised over the frame's patches, the four are multiplied,
  and the int(0.3 n) lowest of the n patches are dropped (ties: the first in grid order goes first).
  DPDD's 350 training frames keep 20 patches each: 7,000.
- Patches are numbered 00000, 00001, ... over the split in frame order and written in the
  renamed DPDD layout (one name in all four folders), at the files' bit depth.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from dpanet.errors import DPANetError
from dpanet.runtime.images import write_image
from dpanet.training.data import VIEWS, dpdd_folders, list_dpdd, load_integers

OVERLAP = {"train": 0.6, "val": 0.01}
"""DPDNet's patch overlap per split (it cuts no test patches: the test runs on full frames)."""
SOBEL_SIZES = (3, 7, 11, 15)
DROP_RATIO = 0.3


def patch_stride(patch: tuple[int, int], split: str) -> tuple[int, int]:
    overlap = OVERLAP[split]
    return int((1 - overlap) * patch[0]), int((1 - overlap) * patch[1])


def patch_grid(
    height: int, width: int, patch: tuple[int, int], stride: tuple[int, int]
) -> list[tuple[int, int]]:
    """Top-left corners (y, x) of DPDNet's patches of a height x width frame, in its order."""
    bottom, right = height - patch[0], width - patch[1]
    if bottom < 0 or right < 0:
        raise DPANetError(f"a {height}x{width} frame is smaller than the {patch[0]}x{patch[1]} patch")
    corners: list[tuple[int, int]] = []
    taken: set[tuple[int, int]] = set()  # edge positions; grid positions are not recorded
    for y in range(0, height, stride[0]):
        for x in range(0, width, stride[1]):
            if y <= bottom and x <= right:
                corners.append((y, x))
                continue
            options = [(y, right)] if y <= bottom else []
            options += [(bottom, x)] if x <= right else []
            chosen = next((o for o in [*options, (bottom, right)] if o not in taken), None)
            if chosen is not None:
                corners.append(chosen)
                taken.add(chosen)
    return corners


def sobel_energy(gray: np.ndarray, ksize: int) -> float:
    """sum(sqrt(gx^2 + gy^2)) of OpenCV's Sobel derivatives (float64, default border)."""
    gx = cv2.Sobel(gray, cv2.CV_64F, 1, 0, ksize=ksize)
    gy = cv2.Sobel(gray, cv2.CV_64F, 0, 1, ksize=ksize)
    return float(np.sqrt(gx * gx + gy * gy).sum())


def sharpness_scores(targets: Sequence[np.ndarray]) -> np.ndarray:
    """Product over the Sobel sizes of each patch's min-max normalised energy (integer H x W x C
    patches of all-in-focus images, BGR). NaN where a measure is the same for every patch."""
    grays = [cv2.cvtColor(t, cv2.COLOR_BGR2GRAY) if t.shape[2] == 3 else t[:, :, 0] for t in targets]
    energy = np.array([[sobel_energy(g, k) for k in SOBEL_SIZES] for g in grays])
    shifted = energy - energy.min(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (shifted / shifted.max(axis=0)).prod(axis=1)


def kept_patches(scores: np.ndarray, ratio: float = DROP_RATIO) -> list[int]:
    """Indices (in grid order) left after dropping the int(ratio n) least sharp patches; ties and
    NaN scores (which DPDNet's argmin takes first) drop in grid order."""
    order = sorted(range(len(scores)), key=lambda i: (not np.isnan(scores[i]), scores[i], i))
    dropped = set(order[: int(ratio * len(scores))])
    return [i for i in range(len(scores)) if i not in dropped]


def frame_patches(images: dict[str, np.ndarray], patch: tuple[int, int], split: str) -> list[tuple[int, int]]:
    """The corners of the patches kept from one frame (all four images of a scene, integers)."""
    h, w = images["target"].shape[:2]
    corners = patch_grid(h, w, patch, patch_stride(patch, split))
    if split != "train":
        return corners
    targets = [images["target"][y : y + patch[0], x : x + patch[1]] for y, x in corners]
    return [corners[i] for i in kept_patches(sharpness_scores(targets))]


def prepare_patches(
    root: str | Path, out: str | Path, splits: Iterable[str], patch: tuple[int, int], progress: bool = True
) -> dict[str, int]:
    """Cut the patches of each DPDD split of ``root`` into ``out`` (renamed DPDD layout); returns
    the number of patches per split. Existing split folders are refused before any work; all
    splits are built in a temporary folder inside ``out`` and moved into place once all are
    complete, so a failure or an interruption leaves nothing behind."""
    root, out = Path(root), Path(out)
    splits = list(dict.fromkeys(splits))
    unknown = [split for split in splits if split not in OVERLAP]
    if unknown:
        raise DPANetError(f"no patches for split(s) {', '.join(unknown)} (DPDNet cuts {', '.join(OVERLAP)})")
    scenes = {split: list_dpdd(root, split) for split in splits}
    outputs = sorted({f.parent.name for split in splits for f in dpdd_folders(out, split).values()})
    for name in outputs:
        if (out / name).exists():
            raise DPANetError(f"{out / name}: already exists; remove it or choose another --out")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".prepare-patches-", dir=out))
    except OSError as exc:
        raise DPANetError(f"--out {out}: {exc.strerror}") from None
    try:
        counts = {split: _write_split(scenes[split], work, split, patch, progress) for split in splits}
        for name in outputs:
            (work / name).rename(out / name)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    work.rmdir()
    return counts


def _write_split(scenes, work: Path, split: str, patch: tuple[int, int], progress: bool) -> int:
    folders = dpdd_folders(work, split)
    for folder in folders.values():
        folder.mkdir(parents=True)
    count = 0
    for scene in tqdm(scenes, desc=f"patches ({split})", unit="frame", disable=not progress or None):
        images, bit_depth = load_integers(scene)
        try:
            corners = frame_patches(images, patch, split)
        except DPANetError as exc:
            raise DPANetError(f"{scene.target}: {exc}") from None
        for y, x in corners:
            name = f"{count:05d}.png"
            for role in VIEWS:
                crop = images[role][y : y + patch[0], x : x + patch[1]]
                write_image(folders[role] / name, crop / float(2**bit_depth - 1), bit_depth)
            count += 1
    return count
