"""Image quality metrics: PSNR, SSIM and MAE through scikit-image, LPIPS when available offline.

Images are H x W x C float arrays in [0, 1] (any channel order: the metrics treat channels alike).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ALEXNET_WEIGHTS = "alexnet-owt-7be5be79.pth"
"""torchvision's AlexNet weights, which LPIPS (net='alex') loads from torch's hub cache."""


@dataclass(frozen=True)
class Scores:
    psnr: float
    ssim: float
    mae: float


def psnr(output: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB with a data range of 1 (scikit-image's); inf for identical images."""
    from skimage.metrics import peak_signal_noise_ratio

    with np.errstate(divide="ignore"):
        return float(peak_signal_noise_ratio(target, output, data_range=1.0))


def scores(output: np.ndarray, target: np.ndarray) -> Scores:
    """PSNR (dB) and SSIM with a data range of 1, and the mean absolute error."""
    from skimage.metrics import structural_similarity

    output = np.asarray(output, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if output.shape != target.shape:
        raise ValueError(f"output {output.shape} and target {target.shape} differ in shape")
    return Scores(
        psnr=psnr(output, target),
        ssim=float(structural_similarity(target, output, data_range=1.0, channel_axis=2)),
        mae=float(np.mean(np.abs(output - target))),
    )


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
