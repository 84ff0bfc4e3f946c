"""Sharp images for synthetic dual-pixel data, all available without network access.

Two kinds (docs/synthetic-dp.md names every image):

- **Bundled photographs**: images that ship inside the scikit-image wheel (``skimage.data``; only
  the ones in its distribution folder, never the ones it would download through pooch). They are
  split once into a training set and a held-out set, so that held-out synthetic pairs (and the
  demo) show photographs the demo model never saw.
- **Procedural textures**: dead leaves (occluding discs with a power-law size distribution, whose
  statistics resemble natural images'), 1/f noise, oriented gratings and checkerboards, drawn from
  a seeded generator.

Every source is an H x W x 3 float32 array in [0, 1] in BGR order (the files' and the release's).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import cv2
import numpy as np

TRAIN_PHOTOS = (
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "stereo_motorcycle",
    "brick",
    "grass",
    "gravel",
    "camera",
    "moon",
    "coins",
    "page",
    "text",
    "cell",
)
HELDOUT_PHOTOS = ("astronaut", "chelsea", "coffee")
PHOTO_SETS = {"train": TRAIN_PHOTOS, "heldout": HELDOUT_PHOTOS}


@functools.cache
def bundled_photo(name: str) -> np.ndarray:
    """One of scikit-image's bundled images as H x W x 3 BGR float32 (grey images replicated)."""
    import skimage.data

    image = getattr(skimage.data, name)()
    if name == "stereo_motorcycle":  # (left, right, disparity): one view is a photograph
        image = image[0]
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    image = image[:, :, 2::-1]  # RGB(A) -> BGR
    return np.ascontiguousarray(image, dtype=np.float32) / 255.0


def dead_leaves(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Opaque discs of random colour, radii with density ~ r^-3 (scale invariance), back to front."""
    image = np.empty((height, width, 3), np.float32)
    image[:] = rng.random(3)
    r_min, r_max = 2.0, max(height, width) / 3
    count = int(2.5 * height * width / (np.pi * r_min * r_max))
    u = rng.random(count)
    radii = r_min * r_max / np.sqrt(r_max**2 - u * (r_max**2 - r_min**2))  # inverse CDF of r^-3
    for radius in np.sort(radii)[::-1]:  # large discs first: small ones end up on top
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(image, centre, int(radius), rng.random(3).tolist(), -1, cv2.LINE_AA)
    return image


def pink_noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Colour noise with a 1/f amplitude spectrum, stretched to [0, 1] per channel."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    amplitude = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / max(height, width))
    channels = []
    for _ in range(3):
        phase = rng.uniform(0, 2 * np.pi, amplitude.shape)
        field = np.fft.irfft2(amplitude * np.exp(1j * phase), s=(height, width))
        lo, hi = np.percentile(field, (1, 99))
        channels.append(np.clip((field - lo) / (hi - lo), 0, 1))
    return np.stack(channels, axis=2).astype(np.float32)


def gratings(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A sum of two oriented sinusoidal gratings in two random colours."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    pattern = np.zeros((height, width), np.float32)
    for _ in range(2):
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(3, 40)
        pattern += np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period + rng.uniform(0, 6.3))
    t = (pattern / 4 + 0.5)[:, :, None]
    a, b = rng.random(3).astype(np.float32), rng.random(3).astype(np.float32)
    return a * t + b * (1 - t)


def checkerboard(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A rotated checkerboard in two random colours (hard edges at every orientation)."""
    cell = rng.uniform(4, 32)
    angle = rng.uniform(0, np.pi / 2)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u = (x * np.cos(angle) + y * np.sin(angle)) / cell
    v = (-x * np.sin(angle) + y * np.cos(angle)) / cell
    t = ((np.floor(u) + np.floor(v)) % 2).astype(np.float32)[:, :, None]
    a, b = rng.random(3).astype(np.float32), rng.random(3).astype(np.float32)
    return a * t + b * (1 - t)


PROCEDURAL: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "dead_leaves": dead_leaves,
    "pink_noise": pink_noise,
    "gratings": gratings,
    "checkerboard": checkerboard,
}


def _photo_crop(rng: np.random.Generator, name: str, height: int, width: int) -> np.ndarray:
    """A random crop of a bundled photograph at a random scale, flipped or rotated, colour-jittered."""
    photo = bundled_photo(name)
    scale = rng.uniform(0.6, 1.4)
    scale = max(scale, height / photo.shape[0], width / photo.shape[1])
    size = (max(width, round(photo.shape[1] * scale)), max(height, round(photo.shape[0] * scale)))
    resized = cv2.resize(photo, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    y = int(rng.integers(0, resized.shape[0] - height + 1))
    x = int(rng.integers(0, resized.shape[1] - width + 1))
    crop = resized[y : y + height, x : x + width]
    crop = np.rot90(crop, int(rng.integers(0, 4))) if height == width else crop
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    gains = rng.uniform(0.7, 1.2, 3).astype(np.float32)  # tints grey images, varies colour ones
    return np.clip(crop * gains, 0, 1).astype(np.float32)


def random_texture(
    rng: np.random.Generator, height: int, width: int, photos: str = "train", photo_share: float = 0.6
) -> np.ndarray:
    """A sharp texture: a crop of a bundled photograph of set ``photos`` with probability
    ``photo_share``, otherwise a procedural texture."""
    if photos not in PHOTO_SETS:
        raise ValueError(f"photos must be one of {', '.join(PHOTO_SETS)}, got {photos!r}")
    if rng.random() < photo_share:
        names = PHOTO_SETS[photos]
        return _photo_crop(rng, names[int(rng.integers(len(names)))], height, width)
    make = list(PROCEDURAL.values())[int(rng.integers(len(PROCEDURAL)))]
    return np.ascontiguousarray(make(rng, height, width), dtype=np.float32)
