"""The demo's scene and figure: a synthetic DP pair of a held-out photograph, and a side-by-side image.

The scene: scikit-image's ``astronaut`` (held out from the demo model's training photographs) on a
smooth surface tilted through the focal plane (the left edge behind it, the right edge in front),
with a disc cut from ``coffee`` floating in front and occluding it. A 50 mm f/1.8 lens focused at
2 m on a sensor with DPDD's pixel pitch; light sensor noise.
"""

from __future__ import annotations

import cv2
import numpy as np

from dpanet.training.sources import bundled_photo
from dpanet.training.synth import DPImage, Layer, SensorEffects, ThinLens, render_dp

DEMO_LENS = ThinLens(focal_length=0.05, f_number=1.8, focus_distance=2.0, pixel_pitch=21.4e-6)
BACKGROUND_RADII = (4.0, -3.0)
"""Signed CoC radius (pixels) at the left and right edges of the background."""
OCCLUDER_RADIUS = -5.0


def _square(photo: np.ndarray, size: int) -> np.ndarray:
    side = min(photo.shape[:2])
    y, x = (photo.shape[0] - side) // 2, (photo.shape[1] - side) // 2
    return cv2.resize(photo[y : y + side, x : x + side], (size, size), interpolation=cv2.INTER_AREA)


def demo_scene(size: int = 512, seed: int = 0) -> DPImage:
    """Render the demo's DP image at ``size`` x ``size`` (deterministic for a seed)."""
    x = np.linspace(0, 1, size, dtype=np.float32)[None, :].repeat(size, axis=0)
    left_r, right_r = BACKGROUND_RADII
    background_radius = left_r + (right_r - left_r) * x
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    disc = ((xx - 0.8) ** 2 + (yy - 0.78) ** 2 <= 0.17**2).astype(np.float32)
    occluder = cv2.GaussianBlur(disc, (0, 0), 0.7)
    layers = [
        Layer(
            _square(bundled_photo("astronaut"), size),
            np.ones((size, size), np.float32),
            DEMO_LENS.depth_for_radius(background_radius),
        ),
        Layer(
            _square(bundled_photo("coffee"), size),
            occluder,
            DEMO_LENS.depth_for_radius(np.full((size, size), OCCLUDER_RADIUS, np.float32)),
        ),
    ]
    effects = SensorEffects(shot_noise=2e-4, read_noise=1e-3)
    return render_dp(layers, DEMO_LENS, effects, np.random.default_rng(seed))


def side_by_side(panels: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """Panels (H x W x C in [0, 1], all one size) in a row, each under a white label strip."""
    strip = 28
    columns = []
    for label, image in panels:
        image = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
        header = np.full((strip, image.shape[1], 3), 255, np.uint8)
        cv2.putText(header, label, (6, strip - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        columns.append(np.concatenate((header.astype(np.float32) / 255, image), axis=0))
        columns.append(np.ones((image.shape[0] + strip, 4, 3), np.float32))  # a white gap
    return np.concatenate(columns[:-1], axis=1)
