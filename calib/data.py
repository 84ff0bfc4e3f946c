"""Calibration pairs: the first ``count`` scenes of a folder, centre crops of one size (deterministic).

The folder is read with the project's loaders (:mod:`dpanet.training.data`): the DPDD layout
(``dpanet synth`` writes it; the first of the train, val and test splits present is used) or a folder
of ``NAME_L.ext`` / ``NAME_R.ext`` pairs (``NAME_S.ext``, the sharp image, optional). Scenes are
taken in name order and centre-cropped, so the same folder and options give the same pairs. The
scenes after the first ``count`` (at most :data:`MAX_HELD_OUT` of them, cropped the same way) are
held out: the fidelity printed on them tells how the file does on pairs it was not calibrated on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from dpanet.errors import DPANetError
from dpanet.runtime.model_info import INPUT_NAMES
from dpanet.runtime.pipeline import to_network
from dpanet.training.data import SPLITS, PairFiles, list_dpdd, list_triplets, load_scene

MAX_HELD_OUT = 16
"""Held-out pairs measured at most: enough for a mean and a minimum, bounded so that a large
DPDD folder does not turn the check into a full evaluation (``dpanet evaluate`` does that)."""


@dataclass(frozen=True)
class CalibrationPair:
    """One crop, network layout: 1 x 3 x H x W float32 views; ``target`` None without a sharp image."""

    name: str
    left: np.ndarray
    right: np.ndarray
    target: np.ndarray | None

    def feeds(self) -> dict[str, np.ndarray]:
        return dict(zip(INPUT_NAMES, (self.left, self.right), strict=True))


@dataclass(frozen=True)
class CalibrationSet:
    pairs: list[CalibrationPair]
    source: str  # what was read, for messages: "DPDD split train" or "L/R pairs"
    held_out: list[CalibrationPair] = field(default_factory=list)  # scenes after the first count

    @property
    def has_targets(self) -> bool:
        return all(p.target is not None for p in self.pairs)


def list_scenes(folder: Path) -> tuple[list[PairFiles], str]:
    """The scenes of a DPDD-layout folder (first split present) or of an L/R pair folder."""
    if not folder.is_dir():
        raise DPANetError(f"{folder}: no such folder")
    for split in SPLITS:
        if (folder / f"{split}_l").is_dir():
            return list_dpdd(folder, split), f"DPDD split {split}"
    return list_triplets(folder, require_target=False), "L/R pairs"


def load_calibration_set(
    folder: str | Path, count: int, size: tuple[int, int], channel_order: str
) -> CalibrationSet:
    """``count`` centre crops of ``size`` (H, W) from the first ``count`` scenes in name order, and
    the next scenes (up to :data:`MAX_HELD_OUT`, those at least ``size``) as held-out pairs."""
    folder = Path(folder)
    if count < 1:
        raise DPANetError(f"--count must be at least 1, got {count}")
    scenes, source = list_scenes(folder)
    if len(scenes) < count:
        raise DPANetError(f"{folder}: {len(scenes)} pair(s) ({source}), fewer than --count {count}")
    pairs = [_crop(files, size, channel_order, required=True) for files in scenes[:count]]
    held_out = [_crop(files, size, channel_order) for files in scenes[count : count + MAX_HELD_OUT]]
    return CalibrationSet(pairs, source, [p for p in held_out if p is not None])


def _crop(files: PairFiles, size: tuple[int, int], channel_order: str, required: bool = False):
    """The centre crop of one scene; None for a held-out scene smaller than ``size``."""
    images = load_scene(files)
    h, w = images["left"].shape[:2]
    if h < size[0] or w < size[1]:
        if not required:
            return None
        raise DPANetError(
            f"{files.left}: {h}x{w} is smaller than the calibration crop {size[0]}x{size[1]} (--size)"
        )
    cropped = {role: _centre(image, size) for role, image in images.items()}
    target = to_network(cropped["target"], channel_order) if files.target is not None else None
    return CalibrationPair(
        files.name,
        to_network(cropped["left"], channel_order),
        to_network(cropped["right"], channel_order),
        target,
    )


def _centre(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = image.shape[:2]
    y, x = (h - size[0]) // 2, (w - size[1]) // 2
    return image[y : y + size[0], x : x + size[1]]


class PairReader(CalibrationDataReader):
    """ONNX Runtime's calibration reader over calibration pairs, with a progress callback."""

    def __init__(self, pairs: list[CalibrationPair], progress=None) -> None:
        self.pairs = pairs
        self.progress = progress or (lambda: None)
        self._iterator: Iterator[CalibrationPair] = iter(pairs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        pair = next(self._iterator, None)
        if pair is None:
            return None
        self.progress()
        return pair.feeds()

    def rewind(self) -> None:
        self._iterator = iter(self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)
