"""Float16 compute with float32 inputs and outputs (docs/export.md, "FP16").

ONNX Runtime's float16 converter turns every float tensor and weight to float16 and keeps the
graph's inputs and outputs float32 with Cast nodes at the edges. Custom plugin nodes run in
float16 (their kernels accumulate in float32). What stays float32 is listed in
:data:`KEEP_FLOAT32` with the measurement that put it there.
"""

from __future__ import annotations

import onnx
from onnxruntime.transformers.float16 import convert_float_to_float16

KEEP_FLOAT32: dict[str, tuple[str, ...]] = {
    "plugin": (),
    "portable": (),
}
"""Op types kept in float32 per flavour."""


def to_float16(model: onnx.ModelProto, flavor: str) -> onnx.ModelProto:
    converted = convert_float_to_float16(
        model,
        keep_io_types=True,
        op_block_list=list(KEEP_FLOAT32[flavor]),
        disable_shape_infer=False,
    )
    sort_topologically(converted.graph)  # the converter appends its input Casts at the end
    del converted.graph.value_info[:]  # some keep stale float32 types; shape inference redoes them
    return converted


def sort_topologically(graph: onnx.GraphProto) -> None:
    """Reorder ``graph.node`` so that every node comes after the producers of its inputs."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ValueError(f"graph has a cycle or a missing input near node {pending[0].name!r}")
        for node in ready:
            available.update(node.output)
        ordered += ready
        ready_ids = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in ready_ids]
    del graph.node[:]
    graph.node.extend(ordered)
