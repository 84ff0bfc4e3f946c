"""dpanet.Deblurrer: the documented example runs, arrays of every supported kind come back in
their own dtype and shape with the pipeline's pixels, bad input is one DPANetError, and
`import dpanet` with an ONNX model stays torch-free."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import dpanet
from dpanet.cli import main
from dpanet.errors import DPANetError
from dpanet.runtime.images import image_from_array, read_image, to_integer
from dpanet.runtime.pipeline import deblur_pair

from runtime_cases import smooth_views, write_pair

REPO = Path(__file__).resolve().parents[1]


def _documented_example() -> str:
    text = (REPO / "docs" / "runtime.md").read_text()
    section = text.split("## Python API: `dpanet.Deblurrer`", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_documented_example_runs_and_matches_the_cli(small_export, tmp_path, monkeypatch):
    shutil.copy(small_export[1], tmp_path / "model.onnx")
    write_pair(tmp_path, "p", 72, 100, seed=4)
    os.replace(tmp_path / "p_L.png", tmp_path / "left.png")
    os.replace(tmp_path / "p_R.png", tmp_path / "right.png")
    monkeypatch.chdir(tmp_path)
    exec(compile(_documented_example(), "docs/runtime.md", "exec"), {})
    sharp = cv2.imread("sharp.png", cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(sharp, cv2.imread("sharp-too.png", cv2.IMREAD_UNCHANGED))
    assert (
        main(["deblur", "-l", "left.png", "-r", "right.png", "--model", "model.onnx", "-o", "cli.png"]) == 0
    )
    np.testing.assert_array_equal(sharp, cv2.imread("cli.png", cv2.IMREAD_UNCHANGED))


@pytest.mark.parametrize(
    "dtype, shape",
    [(np.uint8, (70, 90, 3)), (np.uint16, (70, 90, 3)), (np.uint16, (70, 90)), (np.uint8, (70, 90, 1))],
)
def test_arrays_come_back_in_their_dtype_and_shape_with_the_pipelines_pixels(small_export, dtype, shape):
    deblurrer = dpanet.Deblurrer(small_export[1])
    scale = np.iinfo(dtype).max
    left, right = (np.rint(v * scale).astype(dtype) for v in smooth_views(70, 90, seed=6))
    if len(shape) == 2 or shape[2] == 1:
        left, right = (v[:, :, 1].reshape(shape) for v in (left, right))
    out = deblurrer.deblur(left, right)
    assert out.dtype == dtype and out.shape == shape
    expected = deblur_pair(  # independently of Deblurrer's conversions
        image_from_array(left, "l"), image_from_array(right, "r"), deblurrer.backend, "BGR"
    )
    np.testing.assert_array_equal(out.reshape(70, 90, -1), to_integer(expected.pixels, expected.bit_depth))
    assert deblurrer.backend_name == "onnxruntime" and deblurrer.channel_order == "BGR"


def test_a_checkpoint_runs_in_pytorch_like_its_export(small_export):
    left, right = (np.rint(v * 255).astype(np.uint8) for v in smooth_views(64, 80, seed=7))
    torch_out = dpanet.Deblurrer(small_export[0]).deblur(left, right)
    onnx_out = dpanet.Deblurrer(small_export[1]).deblur(left, right)
    assert np.abs(torch_out.astype(int) - onnx_out.astype(int)).max() <= 1  # float32 rounding at .5


@pytest.mark.parametrize(
    "left, right, message",
    [
        (
            np.zeros((8, 8, 3), np.float32),
            np.zeros((8, 8, 3), np.float32),
            "float32 pixels are not supported",
        ),
        (
            np.zeros((8, 8, 4), np.uint8),
            np.zeros((8, 8, 4), np.uint8),
            "is not H x W, H x W x 1 or H x W x 3",
        ),
        (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 16, 3), np.uint8), "size 8x16 differs"),
        (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint16), "16-bit but left view is 8-bit"),
        ([[0]], np.zeros((8, 8), np.uint8), "a numpy array is needed"),
    ],
)
def test_bad_arrays_are_one_error(small_export, left, right, message):
    with pytest.raises(DPANetError, match=re.escape(message)):
        dpanet.Deblurrer(small_export[1]).deblur(left, right)


def test_bad_construction_is_one_error(small_export, tmp_path):
    with pytest.raises(DPANetError, match="cannot tell the backend from its suffix"):
        dpanet.Deblurrer(tmp_path / "model.bin")
    with pytest.raises(DPANetError, match="threads .* are for the CPU backends"):
        dpanet.Deblurrer(tmp_path / "model.plan", threads=2)  # refused before TensorRT is needed
    with pytest.raises(DPANetError, match="plugins .* are for the tensorrt backend"):
        dpanet.Deblurrer(small_export[1], plugins="libdpanet.so")
    with pytest.raises(DPANetError, match="memory size must look like"):
        dpanet.Deblurrer(small_export[1], max_memory="lots")


def test_files_in_files_out_and_an_output_that_is_an_input_is_refused(small_export, tmp_path):
    write_pair(tmp_path, "p", 40, 56, seed=8, bit_depth=16)
    deblurrer = dpanet.Deblurrer(small_export[1])
    written = deblurrer.deblur_files(tmp_path / "p_L.png", tmp_path / "p_R.png", tmp_path / "out.png")
    assert read_image(written).bit_depth == 16
    with pytest.raises(DPANetError):
        deblurrer.deblur_files(tmp_path / "p_L.png", tmp_path / "p_R.png", tmp_path / "p_L.png")


TORCH_FREE = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
import numpy as np
import dpanet
assert "dpanet.runtime.deblurrer" not in sys.modules  # imported lazily
deblurrer = dpanet.Deblurrer(sys.argv[1])
out = deblurrer.deblur(np.full((24, 40), 300, np.uint16), np.full((24, 40), 310, np.uint16))
print(deblurrer.backend_name, out.dtype, out.shape)
"""


def test_import_dpanet_and_an_onnx_model_need_no_torch(small_export):
    done = subprocess.run(
        [sys.executable, "-c", TORCH_FREE, str(small_export[1])], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["onnxruntime", "uint16", "(24,", "40)"]
