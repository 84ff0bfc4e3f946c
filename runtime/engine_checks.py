"""TensorRT with our plugins, the way ``dpanet doctor`` and the TensorRT tests check it (torch-free).

- :func:`plugin_library_status`: our plugin library for this TensorRT major loads (twice, the
  second time a no-op) and registers the creators the ONNX parser looks up.
- :func:`compare_correlation_engine` / :func:`compare_deform_conv_engine`: a one-node engine of
  the node the exporter emits (docs/ops.md), built with a profile whose min differs from its max
  and run at its min (not the shape the builder tuned for), against the CPU kernels within
  :data:`dpanet.runtime.kernel_checks.CUDA_TOLERANCES`.
- :func:`check_model_engine`: an exported DPANet built by ``build()`` at a small profile, run by
  the runtime's TensorRT backend against ONNX Runtime on the same file, within the parity
  tolerances of its precision (:data:`dpanet.runtime.parity.TOLERANCES`; PSNR with a data range
  of 1), and the engine's device memory at that profile.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dpanet.contract import CORRELATION, DEFORM_CONV, PLUGIN_DOMAIN, PLUGIN_NAMESPACE, PLUGIN_VERSION
from dpanet.errors import DPANetError
from dpanet.plugins.op_cases import correlation_case, dcn_case
from dpanet.runtime.kernel_checks import (
    CUDA_TOLERANCES,
    NUMPY_TYPES,
    Comparison,
    DeviceArrays,
    compare,
    correlation_label,
    deform_conv_label,
    rounded,
)

GROWN_BY = 8  # the profile's max: the case grown by this many pixels in H and W
MODEL_PROFILE = {"profile_min": (32, 32), "profile_opt": (64, 96), "profile_max": (96, 128)}
MODEL_SIZES = ((40, 72), (96, 128), (32, 32))  # off the opt shape, the max, the min


def plugin_library_status(trt) -> str:
    """Loads our plugin library for this TensorRT major twice (the second must be a no-op) and
    says which; raises :class:`DPANetError` if it is missing, does not load or lacks a creator."""
    from dpanet.runtime.tensorrt_engine import plugin_library
    from dpanet.runtime.tensorrt_plugins import load_plugin_library, registered_creators

    path = plugin_library(trt, None, "plugin")
    first = load_plugin_library(trt, path)
    again = load_plugin_library(trt, path)
    if again:
        raise DPANetError(f"{path}: loaded a second time: the registry did not report its creators")
    registered = registered_creators(trt.get_plugin_registry())
    names = ", ".join(name for name, there in registered.items() if there)
    how = "loaded" if first else "already loaded in this process"
    registered_as = f"namespace {PLUGIN_NAMESPACE}, version {PLUGIN_VERSION}"
    return f"{path.name} {how}; a second load is a no-op; creators {names} ({registered_as})"


def one_node_model(op_type: str, inputs, initializers, attributes: dict, precision: str) -> bytes:
    """One plugin node as the exporter writes it; graph inputs have symbolic H and W, weights are
    initializers."""
    import onnx
    from onnx import helper, numpy_helper

    elem = onnx.TensorProto.FLOAT16 if precision == "fp16" else onnx.TensorProto.FLOAT
    graph_inputs = [
        helper.make_tensor_value_info(name, elem, [shape[0], shape[1], f"{name}_h", f"{name}_w"])
        for name, shape in inputs
    ]
    inits = [numpy_helper.from_array(a.astype(NUMPY_TYPES[precision]), name) for name, a in initializers]
    names = [name for name, _ in inputs] + [name for name, _ in initializers]
    node = helper.make_node(
        op_type,
        names,
        ["out"],
        domain=PLUGIN_DOMAIN,
        plugin_namespace=PLUGIN_NAMESPACE,
        plugin_version=PLUGIN_VERSION,
        **attributes,
    )
    output = helper.make_tensor_value_info("out", elem, None)
    graph = helper.make_graph([node], op_type, graph_inputs, [output], initializer=inits)
    opsets = [helper.make_opsetid("", 19), helper.make_opsetid(PLUGIN_DOMAIN, 1)]
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


def run_one_node_engine(trt, model: bytes, feeds: dict[str, np.ndarray], larger: dict, precision: str):
    """Builds ``model`` strongly typed (as ``dpanet build-engine`` does by default) with a profile
    from the feeds' shapes to ``larger`` (opt = max) and runs it at the feeds, all in the primary
    context; the output as numpy."""
    from dpanet.runtime.tensorrt_engine import last_error, make_logger, network_flags_trt10, tensorrt_major

    errors: list[str] = []
    logger = make_logger(trt, errors)
    with DeviceArrays(precision) as device:
        builder = trt.Builder(logger)
        network = builder.create_network(
            network_flags_trt10(trt, True) if tensorrt_major(trt.__version__) == 10 else 0
        )
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(model):
            raise DPANetError(f"the ONNX parser refused the node: {parser.get_error(0)}")
        config = builder.create_builder_config()
        profile = builder.create_optimization_profile()
        for name, array in feeds.items():
            profile.set_shape(name, array.shape, larger[name], larger[name])
        config.add_optimization_profile(profile)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise DPANetError(f"TensorRT could not build the engine ({last_error(errors)})")
        engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
        context = engine.create_execution_context()
        if context is None:
            raise DPANetError(f"TensorRT could not create an execution context ({last_error(errors)})")
        for name, array in feeds.items():
            context.set_input_shape(name, array.shape)
            context.set_tensor_address(name, device.upload(array).ptr)
        out = device.empty(tuple(context.get_tensor_shape("out")))
        context.set_tensor_address("out", out.ptr)
        if not context.execute_async_v3(device.stream()):
            raise DPANetError(f"TensorRT could not run the engine ({last_error(errors)})")
        result = device.download(out)
        del context, engine  # TensorRT's objects go with the context current, before the buffers
    return result


def _grown(shape, by: int = GROWN_BY) -> tuple[int, ...]:
    return (*shape[:2], shape[2] + by, shape[3] + by)


def compare_correlation_engine(trt, shape, d: int, precision: str) -> Comparison:
    from dpanet.plugins import cpu

    first, second = rounded(correlation_case(shape, d), precision)
    model = one_node_model(
        CORRELATION, [("first", shape), ("second", shape)], [], {"max_displacement": d}, precision
    )
    larger = dict.fromkeys(("first", "second"), _grown(shape))
    got = run_one_node_engine(trt, model, {"first": first, "second": second}, larger, precision)
    expected = cpu.correlation(first.astype(np.float32), second.astype(np.float32), d)
    atol, rtol = CUDA_TOLERANCES[precision]
    return compare(f"{correlation_label(shape, d)} engine {precision}", got, expected, atol, rtol)


def compare_deform_conv_engine(trt, case, precision: str, with_bias: bool = True) -> Comparison:
    from dpanet.plugins import cpu

    n, c, h, w, o, k, stride, padding, dilation, offset_scale = case
    x, offset, mask, weight, bias = rounded(dcn_case(*case), precision)
    bigger = dcn_case(n, c, h + GROWN_BY, w + GROWN_BY, o, k, stride, padding, dilation, offset_scale)
    names = ("x", "offset", "mask")
    feeds = dict(zip(names, (x, offset, mask), strict=True))
    initializers = [("weight", weight)] + ([("bias", bias)] if with_bias else [])
    fields = cpu.plugin_field_names(DEFORM_CONV)
    model = one_node_model(
        DEFORM_CONV,
        [(name, a.shape) for name, a in feeds.items()],
        initializers,
        dict(zip(fields, (*stride, *padding, *dilation), strict=True)),
        precision,
    )
    larger = {name: a.shape for name, a in zip(names, bigger[:3], strict=True)}
    got = run_one_node_engine(trt, model, feeds, larger, precision)
    x, offset, mask, weight, bias = (a.astype(np.float32) for a in (x, offset, mask, weight, bias))
    expected = cpu.modulated_deform_conv2d(
        x, offset, mask, weight, bias if with_bias else None, stride, padding, dilation
    )
    atol, rtol = CUDA_TOLERANCES[precision]
    label = f"{deform_conv_label(case)}{'' if with_bias else ' no bias'} engine {precision}"
    return compare(label, got, expected, atol, rtol)


@dataclass(frozen=True)
class ModelEngineResult:
    """An exported DPANet's engine against ONNX Runtime on the same file."""

    precision: str
    flavor: str
    max_error: float
    min_psnr: float  # the worst of the sizes, dB
    atol: float
    required_psnr: float
    device_memory: int  # bytes of activations at the profile's max (engine.device_memory_size_v2)
    profile_max: tuple[int, int]

    @property
    def passed(self) -> bool:
        return self.max_error <= self.atol and self.min_psnr >= self.required_psnr

    def describe(self) -> str:
        sizes = ", ".join(f"{h}x{w}" for h, w in MODEL_SIZES)
        verdict = "within" if self.passed else "outside"
        return (
            f"{self.flavor} {self.precision} engine against ONNX Runtime at {sizes}: max error "
            f"{self.max_error:.3g}, PSNR {self.min_psnr:.1f} dB, {verdict} the parity tolerance "
            f"(atol {self.atol:g}, {self.required_psnr:g} dB)"
        )


def check_model_engine(onnx_path: Path, folder: Path | None = None) -> ModelEngineResult:
    """Builds ``onnx_path`` at :data:`MODEL_PROFILE` into ``folder`` (a temporary one by default)
    and compares the engine with ONNX Runtime at :data:`MODEL_SIZES` (random views, seed 3)."""
    from dpanet.runtime.metrics import psnr
    from dpanet.runtime.onnxruntime_backend import OnnxRuntimeBackend
    from dpanet.runtime.parity import TOLERANCES
    from dpanet.runtime.tensorrt_backend import TensorRTBackend
    from dpanet.runtime.tensorrt_engine import BuildRequest, build

    with tempfile.TemporaryDirectory(dir=folder) as work:
        plan = Path(work) / "model.plan"
        request = BuildRequest(onnx=Path(onnx_path), output=plan, **MODEL_PROFILE)
        sidecar = build(request, progress=lambda _: None)
        backend = TensorRTBackend(plan)
        device_memory = engine_device_memory(plan)
        reference = OnnxRuntimeBackend(onnx_path)
        rng = np.random.default_rng(3)
        errors, psnrs = [], []
        for h, w in MODEL_SIZES:
            left, right = (rng.random((1, 3, h, w), dtype=np.float32) for _ in range(2))
            got, expected = (
                np.asarray(out, np.float32) for out in (backend(left, right), reference(left, right))
            )
            errors.append(float(np.abs(got - expected).max()))
            psnrs.append(psnr(got, expected))
    tolerance = TOLERANCES[sidecar.precision]
    return ModelEngineResult(
        precision=sidecar.precision,
        flavor=sidecar.metadata.get("dpanet.flavor", "unknown"),
        max_error=max(errors),
        min_psnr=min(psnrs),
        atol=tolerance.atol,
        required_psnr=tolerance.min_psnr,
        device_memory=device_memory,
        profile_max=MODEL_PROFILE["profile_max"],
    )


def engine_device_memory(plan: Path) -> int:
    """Activation memory of ``plan`` at its profile's max (bytes)."""
    from dpanet.runtime.tensorrt_engine import import_tensorrt, make_logger

    trt = import_tensorrt()
    runtime = trt.Runtime(make_logger(trt, []))
    engine = runtime.deserialize_cuda_engine(plan.read_bytes())
    return int(engine.device_memory_size_v2)
