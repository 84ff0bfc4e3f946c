"""The TensorRT plugins and engines end to end (GPU and TensorRT needed; skipped with the reason
otherwise, which is every project machine: docs/engines.md).

- One-node engines per op from the node the exporter emits (docs/ops.md), on the shared awkward
  shapes of tests/op_cases.py, with a profile whose min differs from its max, run at a shape other
  than the one the builder tuned for; the DCN with and without its bias input.
- Whole small DPANets through `dpanet build-engine` and the runtime's TensorRT backend, both
  flavours, fp32 and fp16, against PyTorch at the export tolerances (docs/export.md); a
  truncated engine and a sidecar from another GPU are clear errors.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dpanet.errors import DPANetError
from dpanet.export.exporter import ExportOptions, export_checkpoint
from dpanet.export.onnx_ops import DOMAIN, PLUGIN_ATTRIBUTES
from dpanet.plugins.op_cases import CORRELATION_CASES, DCN_CASES, correlation_case, dcn_case
from dpanet.runtime.tensorrt_engine import tensorrt_major
from dpanet.training.checkpoint import load_checkpoint, save_checkpoint
from dpanet.training.config import DPANetConfig
from dpanet.training.ops import correlation, modulated_deform_conv2d

from lively import lively_model

pytestmark = [pytest.mark.tensorrt, pytest.mark.gpu]

TOLERANCE = {torch.float32: (1e-5, 0.0), torch.float16: (2e-3, 2e-3)}
MODEL_FP32_TOLERANCE = 1e-4  # as tests/test_export.py for ONNX Runtime
MODEL_FP16_MIN_PSNR_DB = 45.0


@pytest.fixture(scope="module")
def trt():
    try:
        import tensorrt
    except Exception as exc:  # the bindings without libnvinfer fail with OSError, not ImportError
        pytest.skip(f"needs the tensorrt package with libnvinfer: {exc}")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device: torch.cuda.is_available() is False")
    from dpanet.plugins._library import LibraryNotBuilt
    from dpanet.runtime.tensorrt_engine import plugin_library

    try:
        path = plugin_library(tensorrt, None, "plugin")
    except LibraryNotBuilt as exc:
        pytest.skip(str(exc))
    assert tensorrt.get_plugin_registry().load_library(str(path)) is not None
    return tensorrt


def _onnx_model(op_type, inputs, initializers, attributes, dtype):
    """One plugin node; graph inputs have symbolic H and W, weights are initializers."""
    import onnx
    from onnx import helper, numpy_helper

    elem = onnx.TensorProto.FLOAT16 if dtype == torch.float16 else onnx.TensorProto.FLOAT
    np_dtype = np.float16 if dtype == torch.float16 else np.float32
    graph_inputs = [
        helper.make_tensor_value_info(name, elem, [shape[0], shape[1], f"{name}_h", f"{name}_w"])
        for name, shape in inputs
    ]
    inits = [numpy_helper.from_array(a.astype(np_dtype), name) for name, a in initializers]
    names = [name for name, _ in inputs] + [name for name, _ in initializers]
    node = helper.make_node(
        op_type, names, ["out"], domain=DOMAIN, plugin_namespace="dpanet", plugin_version="1", **attributes
    )
    output = helper.make_tensor_value_info("out", elem, None)
    graph = helper.make_graph([node], op_type, graph_inputs, [output], initializer=inits)
    opsets = [helper.make_opsetid("", 19), helper.make_opsetid(DOMAIN, 1)]
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


def _grown(shape, by: int) -> tuple[int, ...]:
    return (*shape[:2], shape[2] + by, shape[3] + by)


def _run_engine(trt, model: bytes, feeds: dict[str, torch.Tensor], larger: dict[str, tuple]) -> torch.Tensor:
    """Builds with a profile from the feeds' shapes to ``larger`` (opt = max), runs at the feeds."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(model), [str(parser.get_error(i)) for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    for name, t in feeds.items():
        profile.set_shape(name, tuple(t.shape), larger[name], larger[name])
    config.add_optimization_profile(profile)
    if next(iter(feeds.values())).dtype == torch.float16 and tensorrt_major(trt.__version__) == 10:
        _allow_fp16_trt10(trt, config)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, "engine build failed (see the TensorRT log above)"
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    context = engine.create_execution_context()
    for name, t in feeds.items():
        context.set_input_shape(name, tuple(t.shape))
        context.set_tensor_address(name, t.data_ptr())
    dtype = next(iter(feeds.values())).dtype
    out = torch.empty(tuple(context.get_tensor_shape("out")), dtype=dtype, device="cuda")
    context.set_tensor_address("out", out.data_ptr())
    stream = torch.cuda.current_stream()
    assert context.execute_async_v3(stream.cuda_stream)
    stream.synchronize()
    return out


def _allow_fp16_trt10(trt, config) -> None:
    config.set_flag(trt.BuilderFlag.FP16)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("shape, d", CORRELATION_CASES)
def test_correlation_engine_matches_pytorch(trt, dtype, shape, d):
    first, second = (torch.from_numpy(a).to("cuda", dtype) for a in correlation_case(shape, d))
    model = _onnx_model(
        "DPANetCorrelation",
        [("first", first.shape), ("second", second.shape)],
        [],
        {"max_displacement": d},
        dtype,
    )
    larger = {name: _grown(shape, 8) for name in ("first", "second")}
    out = _run_engine(trt, model, {"first": first, "second": second}, larger)
    atol, rtol = TOLERANCE[dtype]
    torch.testing.assert_close(
        out.float(), correlation(first.float(), second.float(), d), atol=atol, rtol=rtol
    )


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("case", DCN_CASES)
def test_deform_conv_engine_matches_pytorch(trt, dtype, with_bias, case):
    n, c, h, w, o, k, stride, padding, dilation, offset_scale = case
    x, offset, mask, weight, bias = dcn_case(*case)
    bigger = dcn_case(n, c, h + 8, w + 8, o, k, stride, padding, dilation, offset_scale)
    names = ("x", "offset", "mask")
    feeds = {
        name: torch.from_numpy(a).to("cuda", dtype) for name, a in zip(names, (x, offset, mask), strict=True)
    }
    initializers = [("weight", weight)] + ([("bias", bias)] if with_bias else [])
    values = (*stride, *padding, *dilation)
    model = _onnx_model(
        "DPANetModulatedDeformConv2d",
        [(name, t.shape) for name, t in feeds.items()],
        initializers,
        dict(zip(PLUGIN_ATTRIBUTES["DPANetModulatedDeformConv2d"], values, strict=True)),
        dtype,
    )
    larger = {name: a.shape for name, a in zip(names, bigger[:3], strict=True)}
    out = _run_engine(trt, model, feeds, larger)
    w_t = torch.from_numpy(weight).to("cuda", dtype).float()
    b_t = torch.from_numpy(bias).to("cuda", dtype).float() if with_bias else None
    expected = modulated_deform_conv2d(
        *(t.float() for t in feeds.values()), w_t, b_t, stride, padding, dilation
    )
    atol, rtol = TOLERANCE[dtype]
    torch.testing.assert_close(out.float(), expected, atol=atol, rtol=rtol)


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
