"""Small generated datasets for the data, training and evaluation tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dpanet.runtime.images import write_image
from dpanet.training.data import dpdd_folders


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
