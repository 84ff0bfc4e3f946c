"""Small generated datasets and checkpoints for the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dpanet.runtime.images import write_image
from dpanet.training.checkpoint import ours_to_official
from dpanet.training.data import dpdd_folders
from dpanet.training.model import DPANet, DPANetConfig


def random_image(seed: int, height: int, width: int, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).random((height, width, channels)).astype(np.float32)


def make_dpdd(root: Path, split: str = "test", count: int = 2, size: tuple[int, int] = (24, 32)) -> list[str]:
    """A DPDD-layout split of ``count`` random 16-bit scenes; returns the file names."""
    names = [f"scene{i}.png" for i in range(count)]
    for i, name in enumerate(names):
        for j, folder in enumerate(dpdd_folders(root, split).values()):
            folder.mkdir(parents=True, exist_ok=True)
            write_image(folder / name, random_image(10 * i + j, *size), 16)
    return names


def release_like_state() -> dict:
    """Release-named zeros built from our own network, as a plain state dict (needs no ../shared)."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in DPANet(DPANetConfig()).state_dict().items()}
    return {f"module.{ours_to_official(k)}": torch.zeros(shape) for k, shape in shapes.items()}
