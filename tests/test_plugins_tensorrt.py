"""The TensorRT plugins end to end: load the library, build a one-node engine per op from its ONNX
node (as the exporter emits it, docs/ops.md), run it on CUDA tensors and compare with PyTorch.

Needs the TensorRT Python package with libnvinfer and a CUDA device; neither exists on the
project machines (docs/plugins.md), so these tests skip there with that reason.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dpanet.export.onnx_ops import DOMAIN, PLUGIN_ATTRIBUTES
from dpanet.plugins._library import LibraryNotBuilt, library_path
from dpanet.training.ops import correlation, modulated_deform_conv2d

from op_cases import correlation_case, dcn_case

pytestmark = pytest.mark.tensorrt


@pytest.fixture(scope="module")
def trt():
    try:
        import tensorrt
    except Exception as exc:  # the bindings without libnvinfer fail with OSError, not ImportError
        pytest.skip(f"needs the tensorrt package with libnvinfer: {exc}")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device: torch.cuda.is_available() is False")
    try:
        path = library_path("tensorrt")
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
    model = helper.make_model(graph, opset_imports=opsets)
    return model.SerializeToString()


def _run_engine(trt, model: bytes, feeds: dict[str, torch.Tensor]) -> torch.Tensor:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    flags = 0 if strongly_typed is None else 1 << int(strongly_typed)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(model), [str(parser.get_error(i)) for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    for name, t in feeds.items():
        profile.set_shape(name, t.shape, t.shape, t.shape)
    config.add_optimization_profile(profile)
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


TOLERANCE = {torch.float32: (1e-5, 0.0), torch.float16: (2e-3, 2e-3)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_correlation_engine_matches_pytorch(trt, dtype):
    first, second = (torch.from_numpy(a).to("cuda", dtype) for a in correlation_case((1, 16, 24, 40), 4))
    model = _onnx_model(
        "DPANetCorrelation",
        [("first", first.shape), ("second", second.shape)],
        [],
        {"max_displacement": 4},
        dtype,
    )
    out = _run_engine(trt, model, {"first": first, "second": second})
    atol, rtol = TOLERANCE[dtype]
    expected = correlation(first.float(), second.float(), 4)
    torch.testing.assert_close(out.float(), expected, atol=atol, rtol=rtol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_deform_conv_engine_matches_pytorch(trt, dtype):
    x, offset, mask, weight, bias = dcn_case(1, 16, 20, 30, 24, 3, (2, 1), (1, 2), (1, 2), 3.0)
    inputs = {"x": x, "offset": offset, "mask": mask}
    feeds = {name: torch.from_numpy(a).to("cuda", dtype) for name, a in inputs.items()}
    model = _onnx_model(
        "DPANetModulatedDeformConv2d",
        [(name, t.shape) for name, t in feeds.items()],
        [("weight", weight), ("bias", bias)],
        dict(zip(PLUGIN_ATTRIBUTES["DPANetModulatedDeformConv2d"], (2, 1, 1, 2, 1, 2), strict=True)),
        dtype,
    )
    out = _run_engine(trt, model, feeds)
    w, b = (torch.from_numpy(a).to("cuda", dtype).float() for a in (weight, bias))
    expected = modulated_deform_conv2d(*(t.float() for t in feeds.values()), w, b, (2, 1), (1, 2), (1, 2))
    atol, rtol = TOLERANCE[dtype]
    torch.testing.assert_close(out.float(), expected, atol=atol, rtol=rtol)
