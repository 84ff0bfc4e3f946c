"""A one-screen summary of an exported model (torch-free, used after export)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import onnx

from dpanet.runtime.model_info import METADATA_PREFIX

_TYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16"}


def _describe(value: onnx.ValueInfoProto) -> str:
    tensor = value.type.tensor_type
    dims = [d.dim_param or str(d.dim_value) for d in tensor.shape.dim]
    return f"{value.name}: {_TYPES.get(tensor.elem_type, tensor.elem_type)} [{', '.join(dims)}]"


def summarize(model: onnx.ModelProto, path: Path) -> str:
    counts = Counter((f"{n.domain}::" if n.domain else "") + n.op_type for n in model.graph.node)
    meta = {p.key.removeprefix(METADATA_PREFIX): p.value for p in model.metadata_props}
    size = path.stat().st_size / 2**20 if path.exists() else 0.0
    weights = sum(math.prod(t.dims) for t in model.graph.initializer)
    lines = [
        f"wrote {path} ({size:.1f} MiB): {meta.get('flavor')} flavour, {meta.get('precision')}, "
        f"opset {next(o.version for o in model.opset_import if o.domain == '')}, size {meta.get('size')}",
        "inputs:  " + "; ".join(_describe(v) for v in model.graph.input),
        "outputs: " + "; ".join(_describe(v) for v in model.graph.output),
        f"channel order {meta.get('channel_order')}, {weights:,} weights, {len(model.graph.node)} nodes:",
    ]
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    for start in range(0, len(items), 3):
        lines.append("  " + "".join(f"{name:<34}{n:>5}   " for name, n in items[start : start + 3]).rstrip())
    return "\n".join(lines)
