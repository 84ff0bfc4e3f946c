"""Synthetic dual-pixel (DP) image formation: thin lens, half-disc PSFs, layered rendering.

The model (docs/synthetic-dp.md):

- **Thin lens** (paper eqs. 1-2): a lens of focal length ``l`` and aperture diameter ``a`` focused
  at distance ``s`` images a point at depth ``d`` as a disc (the circle of confusion) of signed
  radius ``r = a l / (2 (s - l)) * (1 - s / d)``: zero on the focal plane, positive behind it,
  negative in front of it. Divided by the pixel pitch, it is in pixels.
- **DP PSFs**: each photodiode sees half of the aperture, so the left and right PSFs are the two
  halves of the disc. Behind the focal plane the left view gets the right half and the right view
  the left half; in front of it the halves swap (the mirror image). Each half holds half of the
  light, so the combined (full-pixel) image is the sum of the two views.
- **Layers**: a scene is a stack of layers, back to front, each a colour, an alpha mask and a
  depth map. Every layer is sliced into constant-radius slices (linear interpolation between
  slices ``radius_step`` apart), each slice is blurred with its PSF and composited over what lies
  behind it with its blurred alpha (occlusion), and the accumulated colour is divided by the
  accumulated alpha (no dark seams between slices of one surface).
- **Options**: sensor noise (Poisson-Gaussian, independent per photodiode) and vignetting between
  the halves (the left photodiodes' gain falls from one side of the frame to the other and the
  right ones' the other way; their sum is unchanged).

Images are H x W x 3 float32 arrays in BGR order. :class:`DPImage` keeps the photodiode signals
(``left + right == combined``); :meth:`DPImage.views` gives each view at the combined image's
brightness, which is what the network is fed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

SUPERSAMPLING = 8
"""Sub-samples per pixel and axis when rasterising a disc (anti-aliased PSFs)."""
HALF_DISC_CENTROID = 4 / (3 * math.pi)
"""Distance of a half-disc's centroid from the disc's centre, in radii."""


@dataclass(frozen=True)
class ThinLens:
    """A thin lens and the sensor's pixel pitch (lengths in metres)."""

    focal_length: float
    f_number: float
    focus_distance: float
    pixel_pitch: float

    def __post_init__(self) -> None:
        if min(self.focal_length, self.f_number, self.pixel_pitch) <= 0:
            raise ValueError(f"focal length, f-number and pixel pitch must be positive: {self}")
        if self.focus_distance <= self.focal_length:
            raise ValueError(f"the focus distance must exceed the focal length: {self}")

    @property
    def aperture(self) -> float:
        return self.focal_length / self.f_number

    @property
    def sensor_distance(self) -> float:
        """s' = s l / (s - l) (eq. 1)."""
        s, f = self.focus_distance, self.focal_length
        return s * f / (s - f)

    @property
    def radius_at_infinity(self) -> float:
        """a l / (2 (s - l)) in pixels: the CoC radius of a point at infinite depth."""
        return (
            self.aperture
            * self.focal_length
            / (2 * (self.focus_distance - self.focal_length))
            / (self.pixel_pitch)
        )

    def coc_radius(self, depth: np.ndarray | float) -> np.ndarray:
        """Signed circle-of-confusion radius in pixels (eq. 2): > 0 behind the focal plane."""
        depth = np.asarray(depth, dtype=np.float64)
        if np.any(depth <= 0):
            raise ValueError("depths must be positive")
        return (self.radius_at_infinity * (1 - self.focus_distance / depth)).astype(np.float32)

    def depth_for_radius(self, radius: np.ndarray | float) -> np.ndarray:
        """The depth (m) whose signed CoC radius is ``radius`` pixels; radii must stay below
        :attr:`radius_at_infinity` (no depth lies beyond infinity)."""
        ratio = 1 - np.asarray(radius, dtype=np.float64) / self.radius_at_infinity
        if np.any(ratio <= 0):
            raise ValueError(f"radii must be below the radius at infinity ({self.radius_at_infinity:.2f} px)")
        return (self.focus_distance / ratio).astype(np.float32)


def dp_kernels(radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Left and right PSFs for a signed CoC radius: the two halves of an anti-aliased disc of
    ``|radius|`` pixels (a delta for ``|radius| <= 0.5``).

    Each half holds half of the light, so left + right is the disc and sums to 1. For radius > 0
    (behind the focal plane) the left view's PSF is the disc's right half; for radius < 0 the
    halves swap. No sub-sample lies on the centre line, so a delta (in focus) splits evenly.
    """
    r = max(abs(float(radius)), 0.5)
    half = math.ceil(r)
    n = (2 * half + 1) * SUPERSAMPLING
    coords = (np.arange(n) + 0.5) / SUPERSAMPLING - (half + 0.5)  # pixel centre 0 in the middle
    inside = (coords[:, None] ** 2 + coords[None, :] ** 2) <= r * r
    total = inside.sum()
    right_half = _pool(inside & (coords[None, :] > 0)) / total
    left_half = _pool(inside & (coords[None, :] < 0)) / total
    return (right_half, left_half) if radius > 0 else (left_half, right_half)


def disc_kernel(radius: float) -> np.ndarray:
    """The full (combined-view) PSF: the disc of ``|radius|`` pixels, summing to 1."""
    left, right = dp_kernels(radius)
    return left + right


def disparity_for_radius(radius: np.ndarray | float) -> np.ndarray:
    """Signed horizontal disparity (left view minus right view) of half-disc PSFs, in pixels."""
    return (2 * HALF_DISC_CENTROID * np.asarray(radius, dtype=np.float32)).astype(np.float32)


def _pool(inside: np.ndarray) -> np.ndarray:
    """Sum SUPERSAMPLING x SUPERSAMPLING blocks of sub-sample hits into pixels."""
    k = inside.shape[0] // SUPERSAMPLING
    return inside.reshape(k, SUPERSAMPLING, k, SUPERSAMPLING).sum(axis=(1, 3)).astype(np.float64)


def apply_psf(image: np.ndarray, psf: np.ndarray) -> np.ndarray:
    """Convolve H x W x C with a PSF (OpenCV correlates, hence the flip); borders reflect."""
    kernel = np.ascontiguousarray(psf[::-1, ::-1], dtype=np.float32)
    out = cv2.filter2D(image, cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT_101)
    return out.reshape(image.shape)


@dataclass
class Layer:
    """One scene layer: colour (H x W x 3, not premultiplied), alpha (H x W) in [0, 1], depth (H x W, m)."""

    color: np.ndarray
    alpha: np.ndarray
    depth: np.ndarray


@dataclass
class DPImage:
    """A rendered DP image. ``left`` and ``right`` are photodiode signals: ``combined = left + right``."""

    left: np.ndarray
    right: np.ndarray
    combined: np.ndarray
    sharp: np.ndarray
    disparity: np.ndarray
    """Signed left-minus-right disparity in pixels of the frontmost surface at each pixel."""

    def views(self) -> tuple[np.ndarray, np.ndarray]:
        """Left and right views at the combined image's brightness (twice the photodiode signal)."""
        return np.clip(2 * self.left, 0, 1), np.clip(2 * self.right, 0, 1)


@dataclass(frozen=True)
class SensorEffects:
    """Optional sensor effects. Noise std of a photodiode signal x is sqrt(shot * x + read^2)."""

    shot_noise: float = 0.0
    read_noise: float = 0.0
    vignetting: float = 0.0
    """Gain slope between the halves: left gain 1 + v u, right gain 1 - v u, u from -1 to 1 across."""


def _slices(radius: np.ndarray, step: float) -> list[tuple[float, np.ndarray]]:
    """Split a radius map into (slice radius, weight map) with linear weights, far (largest) first."""
    lo, hi = float(radius.min()), float(radius.max())
    if hi - lo < 1e-6:
        return [(lo, np.ones_like(radius))]
    count = math.ceil((hi - lo) / step) + 1
    levels = np.linspace(lo, hi, count)
    spacing = levels[1] - levels[0]
    slices = []
    for level in levels[::-1]:
        weight = np.clip(1 - np.abs(radius - level) / spacing, 0, 1)
        if weight.any():
            slices.append((float(level), weight.astype(np.float32)))
    return slices


def composite_sharp(layers: list[Layer]) -> np.ndarray:
    """The all-in-focus image: the layers composited back to front without blur."""
    out = np.zeros_like(layers[0].color)
    for layer in layers:
        a = layer.alpha[:, :, None]
        out = out * (1 - a) + layer.color * a
    return out


def frontmost_radius(layers: list[Layer], lens: ThinLens) -> np.ndarray:
    """The signed CoC radius of the visible (frontmost) surface at each pixel."""
    out = np.zeros_like(layers[0].alpha)
    for layer in layers:
        out = out * (1 - layer.alpha) + lens.coc_radius(layer.depth) * layer.alpha
    return out


def render_view(layers: list[Layer], lens: ThinLens, view: int, radius_step: float = 0.5) -> np.ndarray:
    """One photodiode image (``view`` 0 = left, 1 = right) of the layers, back to front."""
    height, width = layers[0].alpha.shape
    color = np.zeros((height, width, 3), np.float32)
    coverage = np.zeros((height, width, 1), np.float32)
    for layer in layers:
        radius = lens.coc_radius(layer.depth)
        for level, weight in _slices(radius, radius_step):
            alpha = (layer.alpha * weight)[:, :, None]
            stacked = np.concatenate((layer.color * alpha, alpha), axis=2)
            psf = 2 * dp_kernels(level)[view]  # the half normalised to 1: the view's own coverage
            blurred = apply_psf(stacked, psf)
            a = np.clip(blurred[:, :, 3:], 0, 1)
            color = color * (1 - a) + blurred[:, :, :3]
            coverage = coverage * (1 - a) + a
    return 0.5 * color / np.maximum(coverage, 1e-6)


def render_dp(
    layers: list[Layer],
    lens: ThinLens,
    effects: SensorEffects | None = None,
    rng: np.random.Generator | None = None,
    radius_step: float = 0.5,
) -> DPImage:
    """Render the layers (back to front, all the same size) through the lens onto a DP sensor."""
    if not layers:
        raise ValueError("a scene needs at least one layer")
    shape = layers[0].alpha.shape
    for layer in layers:
        if layer.alpha.shape != shape or layer.depth.shape != shape or layer.color.shape != (*shape, 3):
            raise ValueError("all layers need H x W x 3 colour and H x W alpha and depth of one size")
    left = render_view(layers, lens, 0, radius_step)
    right = render_view(layers, lens, 1, radius_step)
    effects = effects or SensorEffects()
    if effects.vignetting:
        u = np.linspace(-1, 1, shape[1], dtype=np.float32)[None, :, None]
        left, right = left * (1 + effects.vignetting * u), right * (1 - effects.vignetting * u)
    if effects.shot_noise or effects.read_noise:
        rng = rng or np.random.default_rng()
        left, right = (_add_noise(x, effects, rng) for x in (left, right))
    return DPImage(
        left=left.astype(np.float32),
        right=right.astype(np.float32),
        combined=(left + right).astype(np.float32),
        sharp=composite_sharp(layers).astype(np.float32),
        disparity=disparity_for_radius(frontmost_radius(layers, lens)),
    )


def _add_noise(signal: np.ndarray, effects: SensorEffects, rng: np.random.Generator) -> np.ndarray:
    std = np.sqrt(effects.shot_noise * np.clip(signal, 0, None) + effects.read_noise**2)
    return np.clip(signal + std * rng.standard_normal(signal.shape, dtype=np.float32), 0, 1)
