"""Training losses on N x C x H x W tensors."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def charbonnier(output: Tensor, target: Tensor, eps: float = 1e-3) -> Tensor:
    """The paper's Charbonnier loss (eq. 6), sqrt((x - y)^2 + eps^2), averaged over every element
    (a relaxed L1 per pixel, as deblurring code commonly applies it)."""
    return ((output - target).square() + eps * eps).sqrt().mean()


def mse(output: Tensor, target: Tensor) -> Tensor:
    return F.mse_loss(output, target)
