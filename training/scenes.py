"""Random scenes for synthetic DP data: a lens, layered and smooth depth, textures, sensor effects.

A scene is a background layer (a fronto-parallel plane or a smooth surface: a tilt plus
low-frequency relief) and up to ``max_objects`` opaque objects (ellipses, polygons, blobs) at
constant depths, each with its own texture from :mod:`dpanet.training.sources`. Depths are drawn
uniformly in CoC radius (uniform in inverse depth) within ``[-max_radius, max_radius]`` pixels of
the lens drawn for the scene, and layers are stacked back to front by depth. Everything is drawn
from one ``numpy`` generator, so a seed fixes a scene.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np

from dpanet.training.sources import PHOTO_SETS, random_texture
from dpanet.training.synth import DPImage, Layer, SensorEffects, ThinLens, frontmost_radius, render_dp


@dataclass(frozen=True)
class SceneRecipe:
    """How random scenes are drawn (the ``[data.synthetic]`` table of a training config)."""

    max_radius: float = 8.0
    """Largest |CoC radius| in pixels."""
    focal_length: float = 0.05
    f_number: tuple[float, float] = (1.4, 4.0)
    focus_distance: tuple[float, float] = (1.0, 5.0)
    pixel_pitch: float = 21.4e-6
    """Metres per pixel: a DPDD frame (1680 px across a 36 mm sensor) by default."""
    max_objects: int = 4
    smooth_background: float = 0.6
    """Probability that the background is a smooth surface rather than a plane."""
    in_focus_layer: float = 0.4
    """Probability that one layer is placed exactly on the focal plane."""
    blur_free_scenes: bool = True
    """Whether a scene may have no defocus (a lone background on the focal plane). Test sets of
    blurry images, like DPDD's, set False: a lone background then has at least 1 px of blur, and
    :func:`render_random_scene` draws again any scene with too little blur."""
    noise: float = 0.5
    """Probability of sensor noise."""
    max_shot_noise: float = 2e-3
    max_read_noise: float = 5e-3
    max_vignetting: float = 0.15
    photos: str = "train"
    """Which bundled photographs textures come from: train or heldout."""
    photo_share: float = 0.6

    def __post_init__(self) -> None:
        for f in fields(self):  # NaN passes every comparison below and breaks the draws later
            value = getattr(self, f.name)
            if any(
                isinstance(v, float) and not math.isfinite(v)
                for v in (value if isinstance(value, tuple) else (value,))
            ):
                raise ValueError(f"{f.name}: {value} is not a finite number")
        if self.max_radius <= 0 or self.max_objects < 0:
            raise ValueError("max_radius must be positive and max_objects non-negative")
        if not self.blur_free_scenes and self.max_radius < 1:
            raise ValueError("blur_free_scenes = false needs max_radius >= 1 (1 px of blur somewhere)")
        if self.photos not in PHOTO_SETS:
            raise ValueError(f"photos must be one of {', '.join(PHOTO_SETS)}, got {self.photos!r}")

    @classmethod
    def from_dict(cls, data: dict) -> SceneRecipe:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown synthetic recipe keys: {', '.join(unknown)}")
        pairs = {k: tuple(v) for k, v in data.items() if isinstance(v, list)}
        return cls(**{**data, **pairs})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Scene:
    layers: list[Layer]
    lens: ThinLens
    effects: SensorEffects


def _smooth_field(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a cells x cells random grid, bicubically upsampled."""
    grid = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    return np.clip(cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC), -1, 1)


def _object_mask(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An anti-aliased ellipse, polygon or blob covering a random part of the frame."""
    size = min(height, width)
    cy, cx = rng.uniform(0.15, 0.85) * height, rng.uniform(0.15, 0.85) * width
    extent = rng.uniform(0.12, 0.4) * size
    kind = rng.integers(3)
    if kind == 2:  # blob: thresholded smooth noise inside a window around the centre
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        window = 1 - np.hypot((y - cy) / extent, (x - cx) / extent)
        field = window + 0.5 * _smooth_field(rng, height, width, 6)
        return np.clip(field * 4, 0, 1).astype(np.float32)
    mask = np.zeros((height * 4, width * 4), np.uint8)  # drawn at 4x, area-downsampled: anti-aliased
    if kind == 0:
        axes = (int(4 * extent), int(4 * extent * rng.uniform(0.3, 1)))
        cv2.ellipse(mask, (int(4 * cx), int(4 * cy)), axes, rng.uniform(0, 180), 0, 360, 255, -1)
    else:
        count = int(rng.integers(3, 9))
        angles = np.sort(rng.uniform(0, 2 * np.pi, count))
        radii = 4 * extent * rng.uniform(0.4, 1, count)
        points = np.stack((4 * cx + radii * np.cos(angles), 4 * cy + radii * np.sin(angles)), axis=1)
        cv2.fillPoly(mask, [points.astype(np.int32)], 255)
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def _draw_lens(rng: np.random.Generator, recipe: SceneRecipe) -> ThinLens:
    return ThinLens(
        focal_length=recipe.focal_length,
        f_number=float(rng.uniform(*recipe.f_number)),
        focus_distance=float(rng.uniform(*recipe.focus_distance)),
        pixel_pitch=recipe.pixel_pitch,
    )


def random_scene(rng: np.random.Generator, height: int, width: int, recipe: SceneRecipe) -> Scene:
    lens = _draw_lens(rng, recipe)
    r_lo = -recipe.max_radius
    r_hi = min(recipe.max_radius, 0.95 * lens.radius_at_infinity)
    count = int(rng.integers(0, recipe.max_objects + 1))
    radii = np.sort(rng.uniform(r_lo, r_hi, count + 1))[::-1]  # far (largest radius) first
    if rng.random() < recipe.in_focus_layer and (count or recipe.blur_free_scenes):
        radii[rng.integers(count + 1)] = 0.0
        radii = np.sort(radii)[::-1]
    if count == 0 and not recipe.blur_free_scenes:  # a lone background: at least 1 px of blur
        radii[0] = max(abs(radii[0]), 1.0) * (1 if radii[0] >= 0 else -1)
    background_radius = np.full((height, width), radii[0], np.float32)
    if rng.random() < recipe.smooth_background:
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        slope = rng.uniform(-1, 1, 2) / max(height, width)
        relief = (
            (y - height / 2) * slope[0]
            + (x - width / 2) * slope[1]
            + 0.5 * _smooth_field(rng, height, width, 4)
        )
        background_radius += relief * rng.uniform(0, recipe.max_radius)
    layers = [
        Layer(
            random_texture(rng, height, width, recipe.photos, recipe.photo_share),
            np.ones((height, width), np.float32),
            lens.depth_for_radius(np.clip(background_radius, r_lo, r_hi)),
        )
    ]
    for radius in radii[1:]:
        layers.append(
            Layer(
                random_texture(rng, height, width, recipe.photos, recipe.photo_share),
                _object_mask(rng, height, width),
                lens.depth_for_radius(np.full((height, width), radius, np.float32)),
            )
        )
    noisy = rng.random() < recipe.noise
    effects = SensorEffects(
        shot_noise=float(rng.uniform(0, recipe.max_shot_noise)) if noisy else 0.0,
        read_noise=float(rng.uniform(0, recipe.max_read_noise)) if noisy else 0.0,
        vignetting=float(rng.uniform(-recipe.max_vignetting, recipe.max_vignetting)),
    )
    return Scene(layers, lens, effects)


BLURRY_SHARE = 0.01
"""Without blur-free scenes, at least this share of a scene's pixels show 1 px of blur or more."""
MAX_DRAWS = 1000


def _blurry_share(scene: Scene) -> float:
    return float(np.mean(np.abs(frontmost_radius(scene.layers, scene.lens)) >= 1))


def render_random_scene(rng: np.random.Generator, height: int, width: int, recipe: SceneRecipe) -> DPImage:
    """A random scene, rendered. Without ``blur_free_scenes`` a scene is drawn again (from the same
    generator) until at least ``BLURRY_SHARE`` of its visible pixels have a CoC radius of 1 px or
    more: an in-focus background whose objects are nearly in focus too, or fall mostly outside the
    frame, is not a blurry image (a "blurry-only" test scene with seed 3000 was one)."""
    for _ in range(MAX_DRAWS):
        scene = random_scene(rng, height, width, recipe)
        if recipe.blur_free_scenes or _blurry_share(scene) >= BLURRY_SHARE:
            return render_dp(scene.layers, scene.lens, scene.effects, rng)
    raise ValueError(f"no scene with blur in {MAX_DRAWS} draws: the recipe allows too little defocus")
