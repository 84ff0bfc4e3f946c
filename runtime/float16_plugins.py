"""Float16 plugin-flavour graphs in ONNX Runtime: the plugin nodes run in float32 between Casts.

onnxruntime-extensions' Python ops cannot output float16, so each custom node of a float16 plugin
graph (``export --precision fp16``, ``calibrate --target tensorrt``) is wrapped in Casts to float32
and back when ONNX Runtime loads it (our CPU kernels are float32 anyway). TensorRT runs the file as
written, plugin nodes in float16. Needs the ``onnx`` package (torch-free).
"""

from __future__ import annotations

import os

from dpanet.runtime.model_info import METADATA_PREFIX, plugins_run_in_float16
from dpanet.runtime.ort_plugin_ops import CORRELATION, DEFORM_CONV


def float32_plugin_nodes(model):
    """A copy of ``model`` (an ``onnx.ModelProto``) with its plugin nodes wrapped in Casts."""
    import onnx
    from onnx import helper

    adapted = onnx.ModelProto()
    adapted.CopyFrom(model)
    nodes = []
    for node in adapted.graph.node:
        if node.op_type not in (CORRELATION, DEFORM_CONV):
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


def for_onnxruntime(model: str | os.PathLike | bytes) -> str | bytes:
    """What to hand ONNX Runtime for ``model`` (a path or serialised bytes): the model itself, or,
    for a float16 plugin-flavour model, its serialised copy with :func:`float32_plugin_nodes`.
    Without the ``onnx`` package the model is handed over unchanged."""
    unchanged = model if isinstance(model, bytes) else str(model)
    try:
        import onnx
        from google.protobuf.message import DecodeError
    except ImportError:
        return unchanged
    try:
        proto = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(os.fspath(model))
    except (OSError, ValueError, DecodeError):
        return unchanged  # not an ONNX file: ONNX Runtime reports it
    metadata = {p.key.removeprefix(METADATA_PREFIX): p.value for p in proto.metadata_props}
    if not plugins_run_in_float16(metadata):
        return unchanged
    return float32_plugin_nodes(proto).SerializeToString()
