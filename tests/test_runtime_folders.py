"""dpanet deblur --pairs: discovery in both layouts, a bad pair in the middle, resume, --overwrite."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from dpanet.cli import main
from dpanet.runtime.images import read_image
from dpanet.runtime.onnxruntime_backend import OnnxRuntimeBackend
from dpanet.runtime.pairs import find_pairs
from dpanet.runtime.pipeline import deblur_pair

from fake_data import make_dpdd
from runtime_cases import write_pair


def _run(folder, out, model, *extra) -> int:
    return main(["deblur", "--pairs", str(folder), "-o", str(out), "--model", str(model), *extra])


def test_a_bad_pair_in_the_middle_is_reported_and_skipped_and_a_rerun_resumes(small_export, tmp_path, capsys):
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    write_pair(pairs, "a", 21, 30, seed=1)
    write_pair(pairs, "b", 21, 30, seed=2)
    (pairs / "b_R.png").write_bytes(b"not an image")  # the middle pair is broken
    write_pair(pairs, "c", 17, 26, seed=3, bit_depth=16)
    cv2.imwrite(str(pairs / "d_L.png"), np.zeros((8, 8), np.uint8))  # a view without its partner
    out = tmp_path / "out"
    assert _run(pairs, out, small_export[1]) == 1
    captured = capsys.readouterr().out
    assert "deblurred 2 pair(s), 2 failed" in captured
    assert "b: " in captured and "cannot be decoded" in captured and "no d_R view" in captured
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]
    c = read_image(out / "c.png")
    assert (c.bit_depth, c.size, c.channels) == (16, (17, 26), 3)  # depth and size kept
    backend = OnnxRuntimeBackend(small_export[1])
    expected = deblur_pair(read_image(pairs / "a_L.png"), read_image(pairs / "a_R.png"), backend, "BGR")
    np.testing.assert_array_equal(read_image(out / "a.png").pixels, np.rint(expected.pixels * 255) / 255)

    os.utime(out / "a.png", (1, 1))
    (out / "c.png").unlink()  # as if interrupted before c
    assert _run(pairs, out, small_export[1]) == 1
    captured = capsys.readouterr().out
    assert "deblurred 1 pair(s), skipped 1 already present (--overwrite redoes them)" in captured
    assert (out / "a.png").stat().st_mtime == 1 and (out / "c.png").is_file()

    (pairs / "b_R.png").unlink()
    write_pair(pairs, "b", 21, 30, seed=2)
    (pairs / "d_L.png").unlink()
    assert _run(pairs, out, small_export[1], "--overwrite") == 0
    assert "deblurred 3 pair(s)" in capsys.readouterr().out
    assert (out / "a.png").stat().st_mtime != 1


def test_dpdd_layout_is_found_with_ground_truth_and_split_prefixes(tmp_path):
    make_dpdd(tmp_path, "test", count=2)
    found = find_pairs(tmp_path)
    assert [p.name for p in found.pairs] == ["scene0", "scene1"] and not found.incomplete
    assert all(p.target is not None and p.target.parent.name == "target" for p in found.pairs)
    make_dpdd(tmp_path, "val", count=1)
    (tmp_path / "val_r" / "source" / "scene0.png").unlink()
    found = find_pairs(tmp_path)
    assert [p.name for p in found.pairs] == ["test_scene0", "test_scene1"]
    assert len(found.incomplete) == 1 and "val_l/source/scene0.png: no partner" in found.incomplete[0]


def test_dpdd_own_naming_pairs_name_l_with_name_r(tmp_path):
    """DPDD as it ships names its views NAME_L.png / NAME_R.png (docs/training.md); they pair by NAME."""
    make_dpdd(tmp_path, "test", count=2)
    for view, tag in (("l", "_L"), ("r", "_R")):
        for path in sorted((tmp_path / f"test_{view}" / "source").iterdir()):
            path.rename(path.with_name(f"{path.stem}{tag}{path.suffix}"))
    found = find_pairs(tmp_path)
    assert [p.name for p in found.pairs] == ["scene0", "scene1"] and not found.incomplete
    assert [p.left.name for p in found.pairs] == ["scene0_L.png", "scene1_L.png"]
    assert [p.right.name for p in found.pairs] == ["scene0_R.png", "scene1_R.png"]


@pytest.mark.parametrize(
    "make, extra, message",
    [
        (lambda d: None, [], "no NAME_L / NAME_R image files"),
        (lambda d: write_pair(d, "a", 16, 16, 0), ["-l", "x.png"], "--pairs deblurs a folder"),
        (lambda d: write_pair(d, "a", 16, 16, 0), ["--overwrite", "--tile", "20x20"], "--tile 20x20"),
    ],
)
def test_bad_folder_input_is_one_line_and_writes_nothing(
    small_export, tmp_path, capsys, make, extra, message
):
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    make(pairs)
    out = tmp_path / "out"
    assert _run(pairs, out, small_export[1], *extra) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dpanet deblur: error:") and message in err[0]
    assert not out.exists()


def test_output_folder_that_is_a_file_is_refused(small_export, tmp_path, capsys):
    write_pair(tmp_path, "a", 16, 16, 0)
    (tmp_path / "out.png").write_bytes(b"")
    assert _run(tmp_path, tmp_path / "out.png", small_export[1]) == 1
    assert "not a folder" in capsys.readouterr().err


def test_single_pair_mode_refuses_overwrite(small_export, tmp_path, capsys):
    write_pair(tmp_path, "a", 16, 16, 0)
    code = main(["deblur", "-l", str(tmp_path / "a_L.png"), "-r", str(tmp_path / "a_R.png"), "-o",
                 str(tmp_path / "o.png"), "--model", str(small_export[1]), "--overwrite"])  # fmt: skip
    assert code == 1 and "--overwrite applies to --pairs" in capsys.readouterr().err
