"""What keeping layers in high precision costs: their share of the network's convolution MACs.

INT8 pays off in the convolutions (TensorRT's int8 kernels, ONNX Runtime's QLinearConv), so the
share of conv multiply-accumulates left in float16/float32 is the speed a fidelity choice gives up.
It is counted at one input size (the calibration crop): the shares do not depend on the size,
since every conv's output scales with the input's area.
"""

from __future__ import annotations

import math

import onnx

from dpanet.export.onnx_ops import register_schemas
from dpanet.runtime.model_info import INPUT_NAMES


def conv_macs(model: onnx.ModelProto, size: tuple[int, int]) -> dict[str, int]:
    """Conv node name -> multiply-accumulates for one pair of ``size`` (H, W) inputs."""
    register_schemas()  # shape inference through our plugin ops
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for graph_input in fixed.graph.input:
        if graph_input.name in INPUT_NAMES:
            dims = graph_input.type.tensor_type.shape.dim
            for dim, value in zip(dims[2:], size, strict=True):
                dim.Clear()
                dim.dim_value = value
    inferred = onnx.shape_inference.infer_shapes(fixed, strict_mode=True)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*inferred.graph.value_info, *inferred.graph.output]
    }
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    macs = {}
    for node in model.graph.node:
        if node.op_type == "Conv":
            output, weight = shapes[node.output[0]], weights[node.input[1]]
            if not all(output[1:]):
                raise ValueError(f"{node.name}: output shape not inferred ({output})")
            macs[node.name] = math.prod(output[1:]) * math.prod(weight[1:])
    return macs


def high_precision_share(model: onnx.ModelProto, excluded: set[str], size: tuple[int, int]) -> float:
    """The share of ``model``'s conv MACs in the ``excluded`` Conv nodes."""
    macs = conv_macs(model, size)
    return sum(macs[n] for n in excluded if n in macs) / sum(macs.values())
