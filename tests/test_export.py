"""ONNX export: both flavours in ONNX Runtime against PyTorch, FP16, the plugin contract, errors."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import cv2
import numpy as np
import onnx
import pytest
import torch

from dpanet.cli import main
from dpanet.errors import DPANetError
from dpanet.export.exporter import ExportOptions, check_model, export_checkpoint
from dpanet.export.float16 import to_float16
from dpanet.export.onnx_ops import DOMAIN, PLUGIN_ATTRIBUTES
from dpanet.runtime.float16_plugins import float32_plugin_nodes
from dpanet.runtime.onnxruntime_backend import OnnxRuntimeBackend
from dpanet.training.checkpoint import load_checkpoint, save_checkpoint
from dpanet.training.config import DPANetConfig

from lively import lively_model

SIZES = [(40, 72), (64, 64), (24, 32)]
FP32_TOLERANCE = 1e-4
FP16_MIN_PSNR_DB = 45.0


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "small.pt"
    save_checkpoint(path, lively_model(DPANetConfig(width=8), seed=1), "BGR")
    return path


@pytest.fixture(scope="module")
def exported(checkpoint):
    """One dynamic fp32 model per flavour, exported through the CLI."""
    paths = {}
    for flavor in ("plugin", "portable"):
        paths[flavor] = checkpoint.parent / f"{flavor}.onnx"
        assert (
            main(["export", "--checkpoint", str(checkpoint), "-o", str(paths[flavor]), "--flavor", flavor])
            == 0
        )
    return paths


def _views(h, w, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(rng.random((1, 3, h, w), dtype=np.float32) for _ in range(2))


def _reference(checkpoint, left, right):
    with torch.no_grad():
        return load_checkpoint(checkpoint).model(torch.from_numpy(left), torch.from_numpy(right)).numpy()


@pytest.mark.parametrize("flavor", ["portable", "plugin"])
def test_onnxruntime_matches_pytorch_on_several_sizes(flavor, exported, checkpoint):
    backend = OnnxRuntimeBackend(exported[flavor])
    for h, w in SIZES:
        left, right = _views(h, w, seed=h + w)
        expected = _reference(checkpoint, left, right)
        assert expected.std() > 0.02
        np.testing.assert_allclose(backend(left, right), expected, atol=FP32_TOLERANCE, rtol=0)


@pytest.mark.parametrize("flavor", ["portable", "plugin"])
def test_float16_graph_stays_close_to_pytorch_float32(flavor, exported, checkpoint):
    model = check_model(to_float16(onnx.load(exported[flavor]), flavor))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    singles = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    assert all(math.prod(t.dims) <= 4 for t in singles), "weights left in float32"  # Resize scales may stay
    if flavor == "plugin":
        model = float32_plugin_nodes(model)
    backend = OnnxRuntimeBackend(model.SerializeToString())
    for h, w in SIZES[:2]:
        left, right = _views(h, w, seed=7)
        out = backend(left, right)
        assert np.isfinite(out).all()
        mse = float(np.mean((out - _reference(checkpoint, left, right)) ** 2))
        assert 10 * np.log10(1.0 / mse) >= FP16_MIN_PSNR_DB


def test_plugin_nodes_carry_exactly_the_plugin_fields(exported):
    from dpanet.plugins.cpu import plugin_field_names

    model = onnx.load(exported["plugin"])
    custom = [n for n in model.graph.node if n.domain == DOMAIN]
    assert {n.op_type for n in custom} == set(PLUGIN_ATTRIBUTES)
    assert sum(n.op_type == "DPANetCorrelation" for n in custom) == 4
    assert sum(n.op_type == "DPANetModulatedDeformConv2d" for n in custom) == 16
    for node in custom:
        attributes = {a.name: a for a in node.attribute}
        assert attributes.pop("plugin_version").s == b"1"
        assert attributes.pop("plugin_namespace").s == b"dpanet"
        assert set(attributes) == set(plugin_field_names(node.op_type))


def test_metadata_dims_and_inferred_custom_shapes(exported, checkpoint):
    model = onnx.load(exported["plugin"])
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["dpanet.flavor"] == "plugin" and meta["dpanet.precision"] == "fp32"
    assert meta["dpanet.channel_order"] == "BGR"
    assert meta["dpanet.checkpoint_sha256"] == load_checkpoint(checkpoint).sha256
    dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "", "height", "width"]
    shapes = {v.name: v.type.tensor_type.shape for v in model.graph.value_info}
    corr = next(n for n in model.graph.node if n.op_type == "DPANetCorrelation")
    assert shapes[corr.output[0]].dim[1].dim_value == 81


def test_static_export_fixes_the_size(checkpoint, tmp_path):
    out = tmp_path / "static.onnx"
    export_checkpoint(checkpoint, out, ExportOptions(flavor="portable", height=32, width=48))
    dims = [d.dim_value for d in onnx.load(out).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 32, 48]
    left, right = _views(32, 48)
    np.testing.assert_allclose(
        OnnxRuntimeBackend(out)(left, right), _reference(checkpoint, left, right), atol=FP32_TOLERANCE, rtol=0
    )


def test_variant_configuration_exports(tmp_path):
    path = tmp_path / "variant.pt"
    save_checkpoint(path, lively_model(DPANetConfig(width=4, offset_source="cost", dam=False), seed=3), "RGB")
    out = tmp_path / "variant.onnx"
    export_checkpoint(path, out, ExportOptions(flavor="portable"))
    left, right = _views(16, 24)
    np.testing.assert_allclose(
        OnnxRuntimeBackend(out)(left, right), _reference(path, left, right), atol=FP32_TOLERANCE, rtol=0
    )
    assert OnnxRuntimeBackend(out).channel_order == "RGB"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--size", "100x64"], "--size 100x64: height and width must be multiples of 8"),
        (["--opset", "17"], "opset must be between 19"),
    ],
)
def test_impossible_options_fail_cleanly(checkpoint, tmp_path, capsys, args, message):
    out = tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "-o", str(out), *args]) == 1
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_fails_cleanly(checkpoint, tmp_path, capsys):
    assert main(["export", "--checkpoint", str(checkpoint), "-o", str(tmp_path / "missing" / "m.onnx")]) == 1
    assert "does not exist" in capsys.readouterr().err
    if os.geteuid() != 0:  # root can write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert main(["export", "--checkpoint", str(checkpoint), "-o", str(locked / "m.onnx")]) == 1
        assert "not writable" in capsys.readouterr().err


def test_checkpoint_whose_weights_do_not_fit_its_configuration(checkpoint, tmp_path, capsys):
    payload = torch.load(checkpoint, weights_only=True)
    payload["config"]["width"] = 16
    torch.save(payload, tmp_path / "other.pt")
    out = tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(tmp_path / "other.pt"), "-o", str(out)]) == 1
    assert "weights do not fit its configuration" in capsys.readouterr().err
    assert not out.exists()


def test_not_a_dpanet_model_is_refused(tmp_path):
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not onnx")
    with pytest.raises(DPANetError, match="cannot load the model"):
        OnnxRuntimeBackend(bogus)


def test_deblur_defaults_to_onnxruntime_with_a_model_and_needs_no_torch(exported, checkpoint, tmp_path):
    rng = np.random.default_rng(5)
    for name in ("L", "R"):
        cv2.imwrite(str(tmp_path / f"{name}.png"), rng.integers(0, 256, (21, 30, 3), dtype=np.uint8))
    args = ["deblur", "--left", str(tmp_path / "L.png"), "--right", str(tmp_path / "R.png")]
    assert main([*args, "-o", str(tmp_path / "torch.png"), "--checkpoint", str(checkpoint)]) == 0
    # the onnxruntime path in a process where importing torch fails
    script = (
        "import sys; sys.modules['torch'] = None\n"
        "from dpanet.cli import main\n"
        f"sys.exit(main({[*args, '-o', str(tmp_path / 'ort.png'), '--model', str(exported['plugin'])]!r}))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    ours = cv2.imread(str(tmp_path / "ort.png")).astype(int)
    reference = cv2.imread(str(tmp_path / "torch.png")).astype(int)
    assert np.abs(ours - reference).max() <= 1
