"""The TensorRT plugins and engines end to end (GPU and TensorRT needed; skipped with the reason
otherwise, which is every project machine: docs/engines.md). The checks are `dpanet doctor`'s
(dpanet.runtime.engine_checks; one source).

- One-node engines per op from the node the exporter emits (docs/ops.md), on the shared awkward
  shapes of dpanet.plugins.op_cases, with a profile whose min differs from its max, run at a shape
  other than the one the builder tuned for; the DCN with and without its bias input; against the
  CPU kernels (checked against PyTorch in tests/test_plugins_cpu.py).
- Whole small DPANets through `dpanet build-engine` and the runtime's TensorRT backend, both
  flavours, fp32 and fp16, against PyTorch at the export tolerances (docs/export.md) and, as
  doctor checks them, against ONNX Runtime at the parity tolerances; a truncated engine and a
  sidecar from another GPU are clear errors. Every engine of this module is built and run in one
  process: the plugin library is loaded once and found registered afterwards.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dpanet.errors import DPANetError
from dpanet.export.exporter import ExportOptions, export_checkpoint
from dpanet.plugins._library import LibraryNotBuilt
from dpanet.plugins.op_cases import CORRELATION_CASES, DCN_CASES
from dpanet.runtime.checks import Failed, Machine, Skipped
from dpanet.runtime.engine_checks import (
    check_model_engine,
    compare_correlation_engine,
    compare_deform_conv_engine,
    plugin_library_status,
)
from dpanet.runtime.tensorrt_engine import plugin_library
from dpanet.training.checkpoint import load_checkpoint, save_checkpoint
from dpanet.training.config import DPANetConfig

from lively import lively_model

pytestmark = [pytest.mark.tensorrt, pytest.mark.gpu]

MODEL_FP32_TOLERANCE = 1e-4  # as tests/test_export.py for ONNX Runtime
MODEL_FP16_MIN_PSNR_DB = 45.0


@pytest.fixture(scope="module")
def trt():
    """TensorRT and a GPU as doctor finds them (skips with doctor's reason), our plugin library
    loaded as doctor checks it: twice, the second a no-op, creators registered."""
    machine = Machine()
    try:
        tensorrt = machine.tensorrt()
        machine.gpu()
    except (Skipped, Failed) as exc:
        pytest.skip(str(exc))
    try:
        plugin_library(tensorrt, None, "plugin")
    except LibraryNotBuilt as exc:
        pytest.skip(str(exc))
    plugin_library_status(tensorrt)
    return tensorrt


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("shape, d", CORRELATION_CASES)
def test_correlation_engine_matches_the_cpu_kernel(trt, precision, shape, d):
    comparison = compare_correlation_engine(trt, shape, d, precision)
    assert comparison.passed, comparison.describe()


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("case", DCN_CASES)
def test_deform_conv_engine_matches_the_cpu_kernel(trt, precision, with_bias, case):
    comparison = compare_deform_conv_engine(trt, case, precision, with_bias=with_bias)
    assert comparison.passed, comparison.describe()


@pytest.fixture(scope="module")
def small_models(trt, tmp_path_factory):
    """A width-4 DPANet exported in both flavours and precisions, and its checkpoint."""
    pytest.importorskip("pycuda.driver", reason="the runtime's TensorRT backend needs pycuda")
    folder = tmp_path_factory.mktemp("engines")
    checkpoint = folder / "small.pt"
    save_checkpoint(checkpoint, lively_model(DPANetConfig(width=4), seed=5), "BGR")
    models = {}
    for flavor in ("plugin", "portable"):
        for precision in ("fp32", "fp16"):
            path = folder / f"{flavor}-{precision}.onnx"
            export_checkpoint(checkpoint, path, ExportOptions(flavor=flavor, precision=precision))
            models[flavor, precision] = path
    return checkpoint, models


def _build(onnx_path, plan, **sizes):
    from dpanet.runtime.tensorrt_engine import BuildRequest, build

    return build(BuildRequest(onnx=onnx_path, output=plan, **sizes))


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("flavor", ["plugin", "portable"])
def test_engine_of_a_small_dpanet_matches_pytorch(small_models, tmp_path, flavor, precision):
    from dpanet.runtime.tensorrt_backend import TensorRTBackend

    checkpoint, models = small_models
    plan = tmp_path / "model.plan"
    sidecar = _build(
        models[flavor, precision], plan, profile_min=(32, 32), profile_opt=(64, 96), profile_max=(96, 128)
    )
    assert (
        sidecar.precision == precision and json.loads((tmp_path / "model.plan.json").read_text())["profile"]
    )
    backend = TensorRTBackend(plan)
    reference = load_checkpoint(checkpoint).model
    rng = np.random.default_rng(3)
    for h, w in ((40, 72), (96, 128), (32, 32)):
        left, right = (rng.random((1, 3, h, w), dtype=np.float32) for _ in range(2))
        out = backend(left, right)
        with torch.no_grad():
            expected = reference(torch.from_numpy(left), torch.from_numpy(right)).numpy()
        if precision == "fp32":
            np.testing.assert_allclose(out, expected, atol=MODEL_FP32_TOLERANCE, rtol=0)
        else:
            mse = float(np.mean((out - expected) ** 2))
            assert 10 * np.log10(1.0 / mse) >= MODEL_FP16_MIN_PSNR_DB
    with pytest.raises(DPANetError, match="outside the engine's profile"):
        backend(*(np.zeros((1, 3, 104, 128), np.float32),) * 2)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("flavor", ["plugin", "portable"])
def test_engine_of_a_small_dpanet_passes_doctors_check(small_models, tmp_path, flavor, precision):
    _, models = small_models
    result = check_model_engine(models[flavor, precision], tmp_path)
    assert (result.flavor, result.precision) == (flavor, precision)
    assert result.passed, result.describe()
    assert result.device_memory > 0


def test_a_truncated_engine_and_a_foreign_sidecar_are_clear_errors(small_models, tmp_path):
    from dpanet.runtime.tensorrt_backend import TensorRTBackend

    _, models = small_models
    plan = tmp_path / "model.plan"
    _build(models["portable", "fp32"], plan, profile_max=(64, 64))
    data = plan.read_bytes()
    plan.write_bytes(data[: len(data) // 2])
    with pytest.raises(DPANetError, match="could not load the engine"):
        TensorRTBackend(plan)
    plan.write_bytes(data)
    sidecar = json.loads((tmp_path / "model.plan.json").read_text())
    sidecar["compute_capability"] = "7.2"
    (tmp_path / "model.plan.json").write_text(json.dumps(sidecar))
    with pytest.raises(DPANetError, match="on sm_72 .* rebuild it here with dpanet build-engine"):
        TensorRTBackend(plan)
