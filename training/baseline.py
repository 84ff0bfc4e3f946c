"""A non-learned baseline: unsharp masking of the combined image, tuned on training data.

``sharpened = combined + amount * (combined - gaussian(combined, sigma))``, clipped to [0, 1].
:func:`tune_unsharp` picks ``(sigma, amount)`` with the best mean PSNR over (combined, sharp)
pairs from a grid; the demo model must beat the tuned baseline on held-out pairs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from dpanet.training.metrics import psnr

SIGMAS = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
# Fine steps near 0: on scenes with in-focus layers, any stronger sharpening loses PSNR.
AMOUNTS = (0.0, 0.05, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)


@dataclass(frozen=True)
class UnsharpMask:
    sigma: float
    amount: float

    def __call__(self, image: np.ndarray) -> np.ndarray:
        blurred = cv2.GaussianBlur(image, (0, 0), self.sigma, borderType=cv2.BORDER_REFLECT_101)
        return np.clip(image + self.amount * (image - blurred.reshape(image.shape)), 0, 1)

    def __str__(self) -> str:
        return f"unsharp mask (sigma {self.sigma:g}, amount {self.amount:g})"

    @classmethod
    def parse(cls, text: str) -> UnsharpMask:
        """From ``SIGMA,AMOUNT``."""
        try:
            sigma, amount = (float(v) for v in text.split(","))
        except ValueError:
            raise ValueError(f"expected SIGMA,AMOUNT (e.g. 1.5,1.0), got {text!r}") from None
        if sigma <= 0 or amount < 0:
            raise ValueError(f"sigma must be positive and amount non-negative, got {text!r}")
        return cls(sigma, amount)


def tune_unsharp(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    sigmas: Iterable[float] = SIGMAS,
    amounts: Iterable[float] = AMOUNTS,
) -> tuple[UnsharpMask, float]:
    """The grid point with the best mean PSNR over (combined, sharp) pairs, and that PSNR."""
    candidates = [UnsharpMask(s, a) for s in sigmas for a in amounts]
    totals = np.zeros(len(candidates))
    count = 0
    for combined, sharp in pairs:
        totals += [psnr(c(combined), sharp) for c in candidates]
        count += 1
    if count == 0:
        raise ValueError("tune_unsharp needs at least one pair")
    best = int(np.argmax(totals))
    return candidates[best], float(totals[best] / count)
