"""Image quality metrics: PSNR, SSIM and MAE (torch-free, :mod:`dpanet.runtime.metrics`) and LPIPS
when its weights are available offline.

Images are H x W x C float arrays in [0, 1] (any channel order: the metrics treat channels alike).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dpanet.runtime.metrics import Scores, psnr, scores

__all__ = ["LpipsFn", "Scores", "load_lpips", "psnr", "scores"]

ALEXNET_WEIGHTS = "alexnet-owt-7be5be79.pth"
"""torchvision's AlexNet weights, which LPIPS (net='alex') loads from torch's hub cache."""


LpipsFn = Callable[[np.ndarray, np.ndarray], float]


def load_lpips() -> tuple[LpipsFn | None, str]:
    """LPIPS (AlexNet) if the ``lpips`` package and its weights are on this machine, else
    (None, why). Never downloads."""
    if importlib.util.find_spec("lpips") is None:
        return None, "the lpips package is not installed (pip install lpips)"
    import torch

    cached = Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_WEIGHTS
    if not cached.is_file():
        return None, f"the AlexNet weights LPIPS needs are not in torch's hub cache ({cached})"
    import lpips

    net = lpips.LPIPS(net="alex", verbose=False).eval()

    def distance(output: np.ndarray, target: np.ndarray) -> float:
        """LPIPS of two BGR (or single-channel) images; the network expects RGB in [-1, 1]."""

        def tensor(x: np.ndarray) -> torch.Tensor:
            rgb = np.repeat(x, 3, axis=2) if x.shape[2] == 1 else x[:, :, ::-1]
            return (
                torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32)) * 2 - 1
            )

        with torch.no_grad():
            return float(net(tensor(output), tensor(target)))

    return distance, "LPIPS (AlexNet)"
