"""Image quality metrics, torch-free: PSNR, SSIM and MAE through scikit-image.

Images are H x W x C float arrays in [0, 1] (any channel order: the metrics treat channels alike).
"""

from __future__ import annotations

import math
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


def reference_peak_psnr(output: np.ndarray, reference: np.ndarray) -> float:
    """PSNR in dB as ``dpanet parity`` judges a deployed model against its reference: Polygraphy's
    ``PsnrCompareFunc``, whose peak is the reference's maximum (1 when that is not positive), so a
    dark image's error weighs as much as a bright one's relative to its content. inf for identical
    arrays. ``calibrate``'s fidelity target uses it too, so that what it searches for is what parity
    checks (a data range of 1 scored a dark held-out frame 10 dB above parity's figure)."""
    reference = np.asarray(reference, dtype=np.float64)
    mse = float(np.mean((np.asarray(output, dtype=np.float64) - reference) ** 2))
    if mse == 0:
        return math.inf
    peak = float(reference.max())
    return 20 * math.log10(peak if peak > 0 else 1.0) - 10 * math.log10(mse)


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
