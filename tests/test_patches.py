"""prepare-patches against a straight transcription of DPDNet's image_to_patch_filter.py semantics."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dpanet.cli import main
from dpanet.training.data import dpdd_folders, list_dpdd
from dpanet.training.patches import kept_patches, patch_grid, patch_stride, sharpness_scores


def dpdnet_corners(h: int, w: int, ph: int, pw: int, sy: int, sx: int) -> list[tuple[int, int]]:
    """DPDNet's slice_stride loop, transcribed: the top-left corner of each patch, in its order."""
    coordinates = [[0, 0, 0, 0]]
    corners = []
    for r in range(0, h, sy):
        for c in range(0, w, sx):
            if r + ph <= h and c + pw <= w:
                corners.append((r, c))
            elif r + ph <= h and [r, r + ph, w - pw, w] not in coordinates:
                corners.append((r, w - pw))
                coordinates.append([r, r + ph, w - pw, w])
            elif c + pw <= w and [h - ph, h, c, c + pw] not in coordinates:
                corners.append((h - ph, c))
                coordinates.append([h - ph, h, c, c + pw])
            elif [h - ph, h, w - pw, w] not in coordinates:
                corners.append((h - ph, w - pw))
                coordinates.append([h - ph, h, w - pw, w])
    return corners


def dpdnet_kept(targets: list[np.ndarray]) -> list[int]:
    """DPDNet's filter_patch_sharpness, transcribed: indices of the patches it keeps."""
    fitness = {k: [] for k in (3, 7, 11, 15)}
    for patch in targets:
        gray = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY)
        for k in fitness:
            gx = cv2.Sobel(gray, cv2.CV_64F, 1, 0, ksize=k)
            gy = cv2.Sobel(gray, cv2.CV_64F, 0, 1, ksize=k)
            fitness[k].append(np.sum(np.sqrt(gx * gx + gy * gy)))
    normalised = []
    for values in fitness.values():
        values = np.asarray(values)
        with np.errstate(invalid="ignore"):
            normalised.append((values - np.min(values)) / np.max(values - np.min(values)))
    total = normalised[0] * normalised[1] * normalised[2] * normalised[3]
    for _ in range(int(0.3 * len(targets))):
        total[np.argmin(total)] = 2
    return [i for i in range(len(targets)) if total[i] != 2]


@pytest.mark.parametrize(
    "h, w, ph, pw, sy, sx",
    [
        (1120, 1680, 512, 512, 204, 204),  # DPDD, training stride
        (1120, 1680, 512, 512, 506, 506),  # DPDD, validation stride
        (72, 104, 32, 32, 12, 12),
        (64, 96, 32, 32, 32, 32),  # edges on the grid: DPDNet cuts some patches twice
        (40, 40, 32, 32, 5, 5),
        (32, 32, 32, 32, 10, 10),  # one patch
        (50, 33, 16, 8, 6, 3),  # rectangular
        (61, 47, 24, 16, 9, 14),
    ],
)
def test_patch_grid_matches_dpdnet(h, w, ph, pw, sy, sx):
    assert patch_grid(h, w, (ph, pw), (sy, sx)) == dpdnet_corners(h, w, ph, pw, sy, sx)


def test_dpdd_frames_give_28_training_and_12_validation_patches():
    assert patch_stride((512, 512), "train") == (204, 204)
    assert patch_stride((512, 512), "val") == (506, 506)
    assert len(patch_grid(1120, 1680, (512, 512), (204, 204))) == 28
    assert len(patch_grid(1120, 1680, (512, 512), (506, 506))) == 12
    assert len(kept_patches(np.arange(28.0))) == 20  # 350 frames: 7,000 training patches


def test_sharpness_filter_matches_dpdnet_and_drops_the_least_sharp():
    rng = np.random.default_rng(3)
    frame = np.zeros((64, 96, 3), np.uint16)
    for x in range(0, 96, 16):  # columns of growing contrast: sharpness grows to the right
        frame[:, x : x + 16] = rng.integers(0, 1 + 4000 * (x // 16 + 1), (64, 16, 3), dtype=np.uint16)
    corners = patch_grid(64, 96, (24, 24), (9, 9))
    targets = [frame[y : y + 24, x : x + 24] for y, x in corners]
    kept = kept_patches(sharpness_scores(targets))
    assert kept == dpdnet_kept(targets)
    assert len(kept) == len(targets) - int(0.3 * len(targets))
    dropped_x = {corners[i][1] for i in range(len(corners)) if i not in kept}
    assert max(dropped_x) < 48  # the low-contrast left half goes first
    flat = [np.full((24, 24, 3), 7, np.uint16)] * 5  # every measure equal: DPDNet drops the first
    assert kept_patches(sharpness_scores(flat)) == dpdnet_kept(flat) == [1, 2, 3, 4]


@pytest.fixture(scope="module")
def dpdd_own_naming(tmp_path_factory):
    """A synthetic training split (dpanet synth) renamed to DPDD's own naming: NAME_L / NAME_R views
    and all-in-focus images under the next frame number."""
    root = tmp_path_factory.mktemp("dpdd")
    args = ["synth", "--out", str(root), "--split", "train", "--count", "2", "--size", "72", "--seed", "5"]
    assert main([*args, "--max-radius", "4"]) == 0
    folders = dpdd_folders(root, "train")
    for i, path in enumerate(sorted(folders["combined"].iterdir())):
        name = f"1P0A{2 * i + 10:04d}"
        path.rename(folders["combined"] / f"{name}.png")
        (folders["target"] / path.name).rename(folders["target"] / f"1P0A{2 * i + 11:04d}.png")
        (folders["left"] / path.name).rename(folders["left"] / f"{name}_L.png")
        (folders["right"] / path.name).rename(folders["right"] / f"{name}_R.png")
    return root


def test_dpdd_own_naming_is_listed(dpdd_own_naming):
    scenes = list_dpdd(dpdd_own_naming, "train")
    assert [s.name for s in scenes] == ["1P0A0010", "1P0A0012"]
    assert scenes[1].left.name == "1P0A0012_L.png" and scenes[1].right.name == "1P0A0012_R.png"
    assert scenes[1].target.name == "1P0A0013.png" and scenes[1].combined.name == "1P0A0012.png"


def test_prepare_patches_writes_dpdnets_patches(dpdd_own_naming, tmp_path, capsys):
    out = tmp_path / "patches"
    assert main(["prepare-patches", "--data", str(dpdd_own_naming), "--out", str(out), "--split", "train",
                 "--patch", "32"]) == 0  # fmt: skip
    scenes = list_dpdd(dpdd_own_naming, "train")
    expected = []  # (scene, corner) of every patch, in DPDNet's order
    for scene in scenes:
        target = cv2.imread(str(scene.target), cv2.IMREAD_UNCHANGED)
        corners = dpdnet_corners(72, 72, 32, 32, 12, 12)
        kept = dpdnet_kept([target[y : y + 32, x : x + 32] for y, x in corners])
        expected += [(scene, corners[i]) for i in kept]
    written = list_dpdd(out, "train")
    assert [p.name for p in written] == [f"{i:05d}" for i in range(len(expected))]
    assert f"train: {len(expected)} patches" in capsys.readouterr().out
    for patch, (scene, (y, x)) in zip(written, expected, strict=True):
        for role in ("left", "right", "target", "combined"):
            frame = cv2.imread(str(getattr(scene, role)), cv2.IMREAD_UNCHANGED)
            pixels = cv2.imread(str(getattr(patch, role)), cv2.IMREAD_UNCHANGED)
            assert pixels.dtype == np.uint16
            np.testing.assert_array_equal(pixels, frame[y : y + 32, x : x + 32])
    assert sorted(p.name for p in out.iterdir()) == ["train_c", "train_l", "train_r"]  # no leftovers
    assert (
        main(["prepare-patches", "--data", str(dpdd_own_naming), "--out", str(out), "--split", "train"]) == 1
    )
    assert "already exists" in capsys.readouterr().err
    assert main(["prepare-patches", "--data", str(dpdd_own_naming), "--out", str(tmp_path / "b"),
                 "--patch", "30"]) == 1  # fmt: skip
    assert "multiples of 8" in capsys.readouterr().err
    big = ["prepare-patches", "--data", str(dpdd_own_naming), "--out", str(tmp_path / "c"), "--patch", "80"]
    assert main([*big, "--split", "train"]) == 1  # frames of 72 x 72: found after work began
    assert "1P0A0011.png: a 72x72 frame is smaller than the 80x80 patch" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()  # nothing left behind


def test_an_epoch_is_one_pass_over_the_prepared_patches(dpdd_own_naming, tmp_path):
    """As the release trains: 8-bit reads of the patches, its augmentation, batch 4, every patch
    once per epoch (DPDD: 7,000 patches, 1,750 steps)."""
    import torch

    from dpanet.training.distributed import Context
    from dpanet.training.train_config import parse_config
    from dpanet.training.trainer import Trainer, build_dataset

    out = tmp_path / "patches"
    assert main(["prepare-patches", "--data", str(dpdd_own_naming), "--out", str(out), "--split", "train",
                 "--patch", "32"]) == 0  # fmt: skip
    count = len(list_dpdd(out, "train"))
    text = f"""
[model]
width = 2
[train]
batch_size = 4
[data]
kind = "dpdd"
root = "{out.as_posix()}"
augment = "release"
patch = 32
eight_bit = true
[output]
dir = "{(tmp_path / "run").as_posix()}"
tensorboard = false
"""
    config = parse_config(text)
    trainer = Trainer(config, Context(rank=0, world_size=1, device=torch.device("cpu")))
    dataset = build_dataset(config.data, "BGR")
    loader, _ = trainer._loader(dataset)
    assert len(dataset) == count and len(loader) == count // 4
    item = dataset[0]
    assert item["left"].shape == (3, 32, 32)
