"""Training losses on N x C x H x W tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

PSNR_LOSS_FLOOR = 1e-4
"""Added to every image's MSE in :func:`psnr_loss`: an image counts less and less past 40 dB, so
nearly exact images (MSE near 0) cannot take over the gradient."""


def charbonnier(output: Tensor, target: Tensor, eps: float = 1e-3) -> Tensor:
    """The paper's Charbonnier loss (eq. 6), sqrt((x - y)^2 + eps^2), averaged over every element
    (a relaxed L1 per pixel, as deblurring code commonly applies it)."""
    return ((output - target).square() + eps * eps).sqrt().mean()


def mse(output: Tensor, target: Tensor) -> Tensor:
    return F.mse_loss(output, target)


def psnr_loss(output: Tensor, target: Tensor) -> Tensor:
    """Minus the mean PSNR of the batch's images (data range 1), in dB: 10 log10(MSE_i + floor)
    averaged over images. MSE over a batch weights images by their error, so nearly sharp scenes
    barely count; this loss weights every image by its share of the mean PSNR, the score that
    evaluation reports (HINet's "PSNR loss")."""
    per_image = (output - target).square().flatten(1).mean(1)
    return 10 * torch.log10(per_image + PSNR_LOSS_FLOOR).mean()
