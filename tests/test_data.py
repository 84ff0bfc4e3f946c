"""DPDD and triplet loaders, augmentation and the synthetic dataset, on generated folders."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from dpanet.runtime.images import write_image
from dpanet.training.data import (
    DatasetError,
    PairDataset,
    SyntheticDPDataset,
    center_crop,
    dpdd_folders,
    list_dpdd,
    list_triplets,
    load_scene,
    random_crop,
    release_augment,
    release_draw,
)
from dpanet.training.scenes import SceneRecipe

from fake_data import make_dpdd, random_image


def test_dpdd_layout_is_listed_and_loaded(tmp_path):
    make_dpdd(tmp_path, "train", count=3, size=(24, 32))
    scenes = list_dpdd(tmp_path, "train")
    assert [s.name for s in scenes] == ["scene0", "scene1", "scene2"]
    assert scenes[0].left == tmp_path / "train_l" / "source" / "scene0.png"
    images = load_scene(scenes[1])
    assert set(images) == {"left", "right", "target", "combined"}
    assert images["left"].shape == (24, 32, 3) and images["left"].dtype == np.float32


def test_dpdd_missing_view_is_named(tmp_path):
    make_dpdd(tmp_path, "test", count=2)
    (tmp_path / "test_r" / "source" / "scene1.png").unlink()
    with pytest.raises(DatasetError, match=r"1 file\(s\) missing: test_r/source/scene1.png"):
        list_dpdd(tmp_path, "test")


def test_dpdd_size_mismatch_is_named(tmp_path):
    make_dpdd(tmp_path, "test", count=1, size=(24, 32))
    write_image(tmp_path / "test_c" / "target" / "scene0.png", random_image(0, 24, 40), 16)
    scenes = list_dpdd(tmp_path, "test")
    with pytest.raises(DatasetError, match=r"target/scene0.png: 24x40 .* does not match the left view"):
        load_scene(scenes[0])


def test_dpdd_layout_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        list_dpdd(tmp_path / "absent", "test")
    with pytest.raises(DatasetError, match="unknown split"):
        list_dpdd(tmp_path, "holdout")
    make_dpdd(tmp_path, "val", count=1)
    with pytest.raises(DatasetError, match="not the DPDD layout, missing folder"):
        list_dpdd(tmp_path, "test")


def test_dpdd_own_naming_errors_name_the_problem(tmp_path):
    folders = dpdd_folders(tmp_path, "test")
    for folder in folders.values():
        folder.mkdir(parents=True)
    for i, (source, target) in enumerate((("A0010", "A0011"), ("A0012", "A0013"))):
        write_image(folders["combined"] / f"{source}.png", random_image(i, 8, 8), 16)
        write_image(folders["target"] / f"{target}.png", random_image(i + 1, 8, 8), 16)
        write_image(folders["left"] / f"{source}_L.png", random_image(i + 2, 8, 8), 16)
        if i == 0:
            write_image(folders["right"] / f"{source}_R.png", random_image(i + 3, 8, 8), 16)
    with pytest.raises(DatasetError, match=r"1 file\(s\) missing: test_r/source/A0012_R.png"):
        list_dpdd(tmp_path, "test")
    (folders["target"] / "A0013.png").unlink()
    with pytest.raises(DatasetError, match="2 source image.* but 1 all-in-focus image.* sorted order"):
        list_dpdd(tmp_path, "test")


def test_triplet_folder(tmp_path):
    for name, tags in (("a", "LRS"), ("b", "LRSC")):
        for tag in tags:
            write_image(tmp_path / f"{name}_{tag}.png", random_image(ord(tag), 16, 24), 8)
    scenes = list_triplets(tmp_path)
    assert [(s.name, s.combined is not None) for s in scenes] == [("a", False), ("b", True)]
    images = load_scene(scenes[0])  # no combined file: the mean of the views
    np.testing.assert_allclose(images["combined"], 0.5 * (images["left"] + images["right"]))
    write_image(tmp_path / "c_L.png", random_image(1, 16, 24), 8)
    write_image(tmp_path / "c_R.png", random_image(2, 16, 24), 8)
    with pytest.raises(DatasetError, match=r"1 image\(s\) missing: c_S"):
        list_triplets(tmp_path)
    assert len(list_triplets(tmp_path, require_target=False)) == 3
    (tmp_path / "c_R.png").unlink()
    with pytest.raises(DatasetError, match="c_R"):
        list_triplets(tmp_path, require_target=False)


def _coordinates(height: int, width: int) -> np.ndarray:
    """Channel 0: y / (H - 1), channel 1: x / (W - 1), channel 2: 0."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack((y / (height - 1), x / (width - 1), np.zeros_like(y)), axis=2)


def test_release_augmentation_uses_one_offset_for_both_axes():
    patch = 32
    image = _coordinates(56, 80)  # not square: the resize squeezes both axes to s x s
    flips = 0
    for seed in range(20):
        out = release_augment(patch)(np.random.default_rng(seed), {"left": image, "right": image.copy()})
        left = out["left"]
        assert left.shape == (patch, patch, 3)
        np.testing.assert_array_equal(left, out["right"])
        flipped = left[0, 0, 0] > left[-1, 0, 0]
        flips += flipped
        top = left[-1 if flipped else 0, 0]
        assert top[0] == pytest.approx(top[1], abs=0.02)  # same relative offset on y and x
        # rows 0 and patch - 1 lie (patch - 1) * 56 / s source rows apart, s even in [patch, 1.25 patch)
        s = (patch - 1) * 56 / (abs(left[-1, 0, 0] - left[0, 0, 0]) * 55)
        assert patch - 0.5 <= s <= patch * 5 / 4 - 1.5
    assert 0 < flips < 20


def release_item(paths: dict[str, str], new: int, random_crop: int, magic: float) -> dict:
    """The release's MyDataset.__getitem__ (dataset.py), transcribed, with its three draws given:
    new = int(np.random.randint(512, 640) / 2) * 2, random_crop = randint(0, new - 511),
    magic = np.random.random()."""
    out = {}
    for role, path in paths.items():
        img = cv2.imread(path)  # 8-bit, whatever the file's depth
        img = np.float32((img - 0) / 255)
        img = cv2.resize(img, (new, new), cv2.INTER_CUBIC)  # the flag lands in dst: bilinear
        img = img[random_crop : random_crop + 512, random_crop : random_crop + 512]
        if magic < 0.5:
            img = cv2.flip(img, 0)
        out[role] = torch.from_numpy(img).permute(2, 0, 1)
    return out


def test_release_augmentation_on_patches_matches_the_release(tmp_path):
    make_dpdd(tmp_path, "train", count=1, size=(512, 512))  # one 16-bit 512 x 512 patch
    scene = list_dpdd(tmp_path, "train")[0]
    dataset = PairDataset([scene], release_augment(512), seed=4, eight_bit=True)
    paths = {role: str(getattr(scene, role)) for role in ("left", "right", "target", "combined")}
    flips = set()
    for epoch in range(6):
        dataset.set_epoch(epoch)
        draws = release_draw(np.random.default_rng([4, epoch, 0]), 512)  # the item's generator
        flips.add(draws[2])
        expected = release_item(paths, draws[0], draws[1], 0.25 if draws[2] else 0.75)
        item = dataset[0]
        for role, tensor in expected.items():
            torch.testing.assert_close(item[role], tensor, rtol=0, atol=0)
    assert flips == {False, True}  # both paths compared
    rng = np.random.default_rng(0)
    draws = [release_draw(rng, 512) for _ in range(4000)]
    sizes = {size for size, _, _ in draws}
    assert sizes == set(range(512, 640, 2))  # np.random.randint(512, 640) rounded down to even
    assert all(0 <= offset <= size - 512 for size, offset, _ in draws)
    assert {offset for size, offset, _ in draws if size == 512} == {0}
    assert 0.45 < np.mean([flip for _, _, flip in draws]) < 0.55


def test_random_and_center_crops():
    image = _coordinates(20, 30)
    out = random_crop(8)(np.random.default_rng(0), {"left": image})["left"]
    assert out.shape == (8, 8, 3)
    full = center_crop(None)(np.random.default_rng(0), {"left": image})["left"]
    assert full.shape == (16, 24, 3)
    with pytest.raises(DatasetError, match="smaller than the 32x32"):
        random_crop(32)(np.random.default_rng(0), {"left": image})


def test_pair_dataset_is_seeded_per_epoch_and_index(tmp_path):
    make_dpdd(tmp_path, "train", count=2, size=(48, 48))
    dataset = PairDataset(list_dpdd(tmp_path, "train"), random_crop(16), seed=3)
    first = dataset[1]
    assert first["left"].shape == (3, 16, 16) and first["name"] == "scene1"
    torch.testing.assert_close(dataset[1]["left"], first["left"])
    dataset.set_epoch(1)
    assert not torch.equal(dataset[1]["left"], first["left"])


def test_synthetic_dataset_items():
    dataset = SyntheticDPDataset(3, 24, SceneRecipe(max_radius=3), seed=5, vary_per_epoch=False)
    item = dataset[2]
    assert {k: tuple(v.shape) for k, v in item.items() if k != "name"} == {
        k: (3, 24, 24) for k in ("left", "right", "combined", "target")
    }
    dataset.set_epoch(4)  # a fixed set: the same scene in every epoch
    torch.testing.assert_close(dataset[2]["combined"], item["combined"])
    with pytest.raises(DatasetError, match="multiple of 8"):
        SyntheticDPDataset(3, 20, SceneRecipe())
