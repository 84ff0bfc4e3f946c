"""The synthetic DP model: thin lens, half-disc PSFs, layered rendering, scenes and sources."""

from __future__ import annotations

import numpy as np
import pytest

from dpanet.cli import main
from dpanet.runtime.images import read_image
from dpanet.training.data import list_dpdd
from dpanet.training.scenes import BLURRY_SHARE, SceneRecipe, random_scene, render_random_scene
from dpanet.training.sources import HELDOUT_PHOTOS, PROCEDURAL, TRAIN_PHOTOS, bundled_photo, random_texture
from dpanet.training.synth import (
    Layer,
    SensorEffects,
    ThinLens,
    disc_kernel,
    disparity_for_radius,
    dp_kernels,
    render_dp,
)

LENS = ThinLens(focal_length=0.05, f_number=2.0, focus_distance=2.0, pixel_pitch=20e-6)


def plane(color: np.ndarray, depth: float, alpha: np.ndarray | None = None) -> Layer:
    h, w = color.shape[:2]
    return Layer(
        color, np.ones((h, w), np.float32) if alpha is None else alpha, np.full((h, w), depth, np.float32)
    )


def test_thin_lens_matches_equations_1_and_2():
    s, f, a, p = 2.0, 0.05, 0.05 / 2.0, 20e-6
    assert LENS.sensor_distance == pytest.approx(s * f / (s - f))
    for d in (0.5, 1.0, 2.0, 3.0, 100.0):
        expected = a / 2 * LENS.sensor_distance / s * (d - s) / d / p  # eq. 2, first form
        assert LENS.coc_radius(d) == pytest.approx(expected, rel=1e-5)
    assert LENS.coc_radius(2.0) == 0
    assert LENS.coc_radius(3.0) > 0 > LENS.coc_radius(1.5)
    assert LENS.depth_for_radius(LENS.coc_radius(3.0)) == pytest.approx(3.0, rel=1e-5)


@pytest.mark.parametrize("radius", [0.0, 0.3, 1.0, 2.5, 6.0, -0.7, -4.0])
def test_psf_halves_conserve_energy_and_mirror(radius):
    left, right = dp_kernels(radius)
    assert left.sum() == pytest.approx(0.5) and right.sum() == pytest.approx(0.5)
    np.testing.assert_allclose(left + right, disc_kernel(radius))
    assert disc_kernel(radius).sum() == pytest.approx(1.0)
    mirrored_left, mirrored_right = dp_kernels(-radius)
    if abs(radius) > 0.5:
        np.testing.assert_array_equal(mirrored_left, right)
        np.testing.assert_array_equal(mirrored_right, left)
    else:  # a delta: both halves are the same half of the centre pixel
        np.testing.assert_array_equal(left, right)


def test_in_focus_gives_identical_views_and_the_sharp_image():
    color = np.random.default_rng(0).random((20, 24, 3)).astype(np.float32)
    image = render_dp([plane(color, LENS.focus_distance)], LENS)
    np.testing.assert_array_equal(image.left, image.right)
    np.testing.assert_allclose(image.combined, color, atol=1e-6)
    np.testing.assert_array_equal(image.disparity, 0)


def _centroid_x(image: np.ndarray) -> float:
    weights = image.sum(axis=2)
    return float((weights * np.arange(weights.shape[1])[None, :]).sum() / weights.sum())


@pytest.mark.parametrize("depth, sign", [(4.0, 1), (1.2, -1)])
def test_disparity_sign_flips_across_the_focal_plane(depth, sign):
    dark = np.zeros((41, 41, 3), np.float32)
    point = np.zeros((41, 41), np.float32)
    point[20, 20] = 1
    layers = [
        plane(dark, 50.0),
        Layer(np.ones((41, 41, 3), np.float32), point, np.full((41, 41), depth, np.float32)),
    ]
    image = render_dp(layers, LENS)
    shift = _centroid_x(image.left) - _centroid_x(image.right)
    radius = float(LENS.coc_radius(depth))
    assert np.sign(shift) == np.sign(radius) == sign
    assert shift == pytest.approx(float(disparity_for_radius(radius)), abs=0.15)
    assert np.sign(image.disparity[20, 20]) == sign


def test_views_sum_to_combined_with_noise_and_vignetting():
    rng = np.random.default_rng(1)
    color = rng.random((32, 32, 3)).astype(np.float32)
    front = np.zeros((32, 32), np.float32)
    front[8:20, 10:26] = 1
    layers = [plane(color, 5.0), plane(color[::-1].copy(), 1.3, front)]
    effects = SensorEffects(shot_noise=1e-3, read_noise=2e-3, vignetting=0.1)
    image = render_dp(layers, LENS, effects, rng)
    np.testing.assert_array_equal(image.combined, image.left + image.right)


def test_blurring_conserves_a_uniform_image():
    color = np.full((30, 30, 3), 0.4, np.float32)
    image = render_dp([plane(color, 6.0)], LENS)
    np.testing.assert_allclose(image.combined, 0.4, atol=1e-5)
    np.testing.assert_allclose(image.views()[0], 0.4, atol=1e-5)


def test_an_in_focus_opaque_layer_hides_what_is_behind_it():
    rng = np.random.default_rng(2)
    back, front = rng.random((40, 40, 3)).astype(np.float32), rng.random((40, 40, 3)).astype(np.float32)
    alpha = np.zeros((40, 40), np.float32)
    alpha[10:30, 10:30] = 1
    image = render_dp([plane(back, 8.0), plane(front, LENS.focus_distance, alpha)], LENS)
    np.testing.assert_allclose(image.combined[12:28, 12:28], front[12:28, 12:28], atol=1e-5)
    np.testing.assert_allclose(image.sharp[12:28, 12:28], front[12:28, 12:28])


def test_random_scenes_stay_within_the_recipe():
    recipe = SceneRecipe(max_radius=5.0)
    for seed in range(4):
        rng = np.random.default_rng(seed)
        scene = random_scene(rng, 40, 48, recipe)
        for layer in scene.layers:
            radius = scene.lens.coc_radius(layer.depth)
            assert np.abs(radius).max() <= 5.0 + 1e-4
    a = render_random_scene(np.random.default_rng(7), 32, 32, recipe)
    b = render_random_scene(np.random.default_rng(7), 32, 32, recipe)
    np.testing.assert_array_equal(a.combined, b.combined)
    for field in (a.left, a.right, a.combined, a.sharp):
        assert field.shape == (32, 32, 3) and field.dtype == np.float32
    assert np.abs(a.disparity).max() <= disparity_for_radius(5.0) + 1e-4


def test_blurry_only_scenes_always_show_blur():
    # in-focus layers as often as possible and little blur to draw from: degenerate scenes are common
    def blurry_share(recipe, seed):
        image = render_random_scene(np.random.default_rng(seed), 24, 24, recipe)
        return np.mean(np.abs(image.disparity) >= disparity_for_radius(1.0) - 1e-6)

    strict = SceneRecipe(max_radius=1.5, in_focus_layer=1.0, max_objects=1, blur_free_scenes=False)
    lax = SceneRecipe(max_radius=1.5, in_focus_layer=1.0, max_objects=1)
    assert min(blurry_share(strict, seed) for seed in range(40)) >= BLURRY_SHARE
    assert min(blurry_share(lax, seed) for seed in range(40)) < BLURRY_SHARE
    with pytest.raises(ValueError, match="max_radius >= 1"):
        SceneRecipe(max_radius=0.5, blur_free_scenes=False)


def test_sources_are_offline_and_in_range():
    for name in TRAIN_PHOTOS + HELDOUT_PHOTOS:
        photo = bundled_photo(name)
        assert photo.ndim == 3 and photo.shape[2] == 3 and photo.min() >= 0 and photo.max() <= 1
    assert not set(TRAIN_PHOTOS) & set(HELDOUT_PHOTOS)
    rng = np.random.default_rng(0)
    for make in PROCEDURAL.values():
        texture = make(rng, 24, 40)
        assert texture.shape == (24, 40, 3) and texture.min() >= 0 and texture.max() <= 1
    assert random_texture(rng, 16, 16, "heldout", photo_share=1.0).shape == (16, 16, 3)
    with pytest.raises(ValueError, match="photos"):
        random_texture(rng, 16, 16, "everything")


def test_bad_lenses_and_layers_are_refused():
    with pytest.raises(ValueError, match="focus distance"):
        ThinLens(0.05, 2.0, 0.04, 20e-6)
    with pytest.raises(ValueError, match="positive"):
        LENS.coc_radius(0.0)
    with pytest.raises(ValueError, match="at least one layer"):
        render_dp([], LENS)
    with pytest.raises(ValueError, match="one size"):
        render_dp(
            [plane(np.zeros((4, 4, 3), np.float32), 2.0), plane(np.zeros((4, 5, 3), np.float32), 2.0)], LENS
        )


def test_synth_command_writes_a_dpdd_layout_of_blurry_scenes(tmp_path, capsys):
    out = tmp_path / "synth"
    args = ["synth", "--out", str(out), "--split", "test", "--count", "3", "--size", "32"]
    assert main([*args, "--seed", "5", "--max-radius", "2", "--blurry-only"]) == 0
    files = list_dpdd(out, "test")
    assert [f.name for f in files] == [f"synth_5_{i:05d}" for i in range(3)]
    for scene in files:
        combined, sharp = read_image(scene.combined), read_image(scene.target)
        assert combined.bit_depth == 16 and combined.size == (32, 32)
        assert not np.array_equal(combined.pixels, sharp.pixels)
    assert main([*args, "--max-radius", "0.5", "--blurry-only"]) == 1
    assert main(args) == 1  # the split's set exists already
    assert capsys.readouterr().err.count("error:") == 2
