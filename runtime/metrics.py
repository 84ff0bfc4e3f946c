"""Image quality metrics, torch-free: PSNR, SSIM and MAE through scikit-image.

Images are H x W x C float arrays in [0, 1] (any channel order: the metrics treat channels alike).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
