"""Running a float16 plugin-flavour graph in ONNX Runtime, for parity checks.

onnxruntime-extensions' Python ops cannot output float16, so for ONNX Runtime each custom node of a
float16 plugin graph is wrapped in Casts to float32 and back (our CPU kernels are float32 anyway).
TensorRT runs the file as exported, plugin nodes in float16.
"""

from __future__ import annotations

import onnx
from onnx import helper

from dpanet.export.onnx_ops import DOMAIN, PLUGIN_ATTRIBUTES


def float32_plugin_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    adapted = onnx.ModelProto()
    adapted.CopyFrom(model)
    nodes = []
    for node in adapted.graph.node:
        if node.domain != DOMAIN or node.op_type not in PLUGIN_ATTRIBUTES:
            nodes.append(node)
            continue
        inputs = []
        for name in node.input:
            cast = f"{name}__float32_for_{node.name}"
            nodes.append(helper.make_node("Cast", [name], [cast], to=onnx.TensorProto.FLOAT))
            inputs.append(cast)
        output = node.output[0]
        del node.input[:]
        node.input.extend(inputs)
        node.output[0] = f"{output}__float32"
        nodes.append(node)
        nodes.append(helper.make_node("Cast", [node.output[0]], [output], to=onnx.TensorProto.FLOAT16))
    del adapted.graph.node[:]
    adapted.graph.node.extend(nodes)
    del adapted.graph.value_info[:]  # the inserted float32 tensors are not described; ORT infers
    return adapted
