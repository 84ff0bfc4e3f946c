"""Would TensorRT's ONNX parser take this graph? A static check against its operator matrix.

:func:`parser_problems` reads the parser's support matrix (``onnx-parser-operators-<version>.md`` of
onnx/onnx-tensorrt, a Markdown table of operator, supported, types, restrictions) and lists what
in a model it refuses: opsets outside the parser's range, unsupported op types, the element type
of each node's data input, graph input/output types, and the restrictions our graphs can meet
(initializer ``axes``, zero Q/DQ zero points, Resize modes, symmetric DeformConv pads, MaxPool
dilations). Custom-domain nodes must be plugins the parser can find: a known creator name with
its ``plugin_namespace`` and ``plugin_version`` attributes. Needs only ``onnx`` (no torch, no
TensorRT); the model should carry shape-inferred types (``dpanet export`` writes them).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import onnx
from onnx import TensorProto, numpy_helper

from dpanet.contract import PLUGIN_NAMESPACE, PLUGIN_VERSION, PLUGINS

# our plugin creators (docs/ops.md): name -> (namespace, version)
DPANET_PLUGINS = dict.fromkeys(PLUGINS, (PLUGIN_NAMESPACE, PLUGIN_VERSION))
TYPE_NAMES = {
    TensorProto.FLOAT: "FP32",
    TensorProto.FLOAT16: "FP16",
    TensorProto.BFLOAT16: "BF16",
    TensorProto.DOUBLE: "DOUBLE",
    TensorProto.INT32: "INT32",
    TensorProto.INT64: "INT64",
    TensorProto.INT8: "INT8",
    TensorProto.UINT8: "UINT8",
    TensorProto.BOOL: "BOOL",
    TensorProto.FLOAT8E4M3FN: "FP8",
    TensorProto.INT4: "INT4",
}
# the matrix's data type list spells some types differently from its table
SPELLINGS = {"FLOAT32": "FP32", "FLOAT16": "FP16", "BFLOAT16": "BF16"}
# ONNX defaults of the Resize attributes the matrix restricts
RESIZE_DEFAULTS = {
    "coordinate_transformation_mode": "half_pixel",
    "mode": "nearest",
    "nearest_mode": "round_prefer_floor",
    "keep_aspect_ratio_policy": "stretch",
}


@dataclass(frozen=True)
class Operator:
    supported: bool
    types: frozenset[str]
    restrictions: str


@dataclass(frozen=True)
class Matrix:
    opsets: tuple[int, int]
    graph_types: frozenset[str]
    operators: dict[str, Operator]


def read_matrix(path: str | os.PathLike) -> Matrix:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    opsets = re.search(r"opset (\d+) to opset (\d+)", text)
    graph_types = re.search(r"following ONNX data types: ([^\n]+)", text)
    if opsets is None or graph_types is None:
        raise ValueError(f"{path}: no opset range or data type list found")
    operators = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or cells[1] not in ("Y", "N") or not cells[0].isidentifier():
            continue
        types = cells[2] if len(cells) > 2 else ""
        operators[cells[0]] = Operator(
            cells[1] == "Y",
            frozenset(t.strip() for t in types.split(",") if t.strip()),
            cells[3] if len(cells) > 3 else "",
        )
    names = re.split(r",\s*(?:and\s+)?", graph_types.group(1).strip())
    return Matrix(
        (int(opsets.group(1)), int(opsets.group(2))),
        frozenset(SPELLINGS.get(n, n) for n in names),
        operators,
    )


def _quoted_list(restrictions: str, label: str) -> set[str] | None:
    """The backquoted values after ``Supported <label>:`` in a restriction, if it has one."""
    found = re.search(rf"Supported {label}: ([^.<]*)", restrictions)
    return set(re.findall(r"`(\w+)`", found.group(1))) if found else None


def _attribute(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            value = onnx.helper.get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return default


class _Graph:
    """Types and constant values of a graph's tensors."""

    def __init__(self, model: onnx.ModelProto) -> None:
        graph = model.graph
        self.types: dict[str, int] = {}
        for value in (*graph.input, *graph.output, *graph.value_info):
            self.types[value.name] = value.type.tensor_type.elem_type
        self.constants = {init.name: init for init in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.output:
                value = _attribute(node, "value")
                if value is not None:
                    self.constants[node.output[0]] = value
        for name, tensor in self.constants.items():
            self.types.setdefault(name, tensor.data_type)


def _input_index(node: onnx.NodeProto, opset: int, name: str) -> int | None:
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, node.domain)
    except onnx.defs.SchemaError:
        return None
    names = [i.name for i in schema.inputs]
    return names.index(name) if name in names else None


def _node_problems(node: onnx.NodeProto, op: Operator, graph: _Graph, opset: int) -> list[str]:
    problems = []
    data = node.input[0] if node.input else ""
    if data and op.types:
        kind = graph.types.get(data)
        if kind is None:
            problems.append(f"type of input {data} unknown (run shape inference)")
        elif TYPE_NAMES.get(kind, str(kind)) not in op.types:
            problems.append(f"input type {TYPE_NAMES.get(kind, kind)} not in {', '.join(sorted(op.types))}")
    for name in re.findall(r"`(\w+)` must be an initializer", op.restrictions):
        index = _input_index(node, opset, name)
        given = index is not None and index < len(node.input) and node.input[index]
        if given and node.input[index] not in graph.constants:
            problems.append(f"input {name} ({node.input[index]}) is not an initializer")
    for name in re.findall(r"`(\w+)` must be (?:zero|0)", op.restrictions):
        index = _input_index(node, opset, name)
        if index is not None and index < len(node.input) and node.input[index]:
            tensor = graph.constants.get(node.input[index])
            if tensor is None or numpy_helper.to_array(tensor).any():
                problems.append(f"{name} is not a constant zero")
    if node.op_type == "Resize":
        for attribute, label in (
            ("coordinate_transformation_mode", "resize transformation modes"),
            ("mode", "resize modes"),
            ("nearest_mode", "nearest modes"),
            ("keep_aspect_ratio_policy", "aspect ratio policy"),
        ):
            allowed = _quoted_list(op.restrictions, label)
            value = _attribute(node, attribute, RESIZE_DEFAULTS[attribute])
            if allowed is not None and value not in allowed:
                problems.append(f"{attribute} {value!r} not in {sorted(allowed)}")
        if "Antialiasing is not supported" in op.restrictions and _attribute(node, "antialias", 0):
            problems.append("antialias is not supported")
    if node.op_type == "DeformConv" and "must be the same" in op.restrictions:
        pads = list(_attribute(node, "pads", []) or [])
        half = len(pads) // 2
        if pads[:half] != pads[half:]:
            problems.append(f"pads {pads} differ between the beginning and the end of an axis")
    dilations = _attribute(node, "dilations", []) or []
    if "`dilations` must be empty or all ones" in op.restrictions and any(d != 1 for d in dilations):
        problems.append("dilations must be all ones")
    if "`Indices` output tensor unsupported" in op.restrictions and len(node.output) > 1 and node.output[1]:
        problems.append("the Indices output is not supported")
    return problems


def parser_problems(
    model: onnx.ModelProto, matrix: str | os.PathLike, plugins: dict[str, tuple[str, str]] | None = None
) -> list[str]:
    """What TensorRT's ONNX parser (as described by ``matrix``) would refuse in ``model``; empty
    when nothing. ``plugins``: the custom ops TensorRT has creators for, name -> (namespace,
    version) (default: ours)."""
    table = read_matrix(matrix)
    plugins = DPANET_PLUGINS if plugins is None else plugins
    problems = []
    opset = 0
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            opset = entry.version
            low, high = table.opsets
            if not low <= opset <= high:
                problems.append(f"opset {opset} is outside the parser's range {low} to {high}")
    graph = _Graph(model)
    for value in (*model.graph.input, *model.graph.output):
        kind = TYPE_NAMES.get(value.type.tensor_type.elem_type, str(value.type.tensor_type.elem_type))
        if kind not in table.graph_types:
            problems.append(f"graph tensor {value.name}: type {kind} not supported")
    for node in model.graph.node:
        label = f"node {node.name or node.output[0]} ({node.op_type})"
        if node.domain not in ("", "ai.onnx"):
            expected = plugins.get(node.op_type)
            found = (_attribute(node, "plugin_namespace", ""), _attribute(node, "plugin_version", "1"))
            if expected is None:
                problems.append(f"{label}: custom op of domain {node.domain} with no plugin creator")
            elif found != expected:
                problems.append(f"{label}: plugin namespace/version {found}, the creator is {expected}")
            continue
        op = table.operators.get(node.op_type)
        if op is None or not op.supported:
            problems.append(f"{label}: not supported by the parser")
            continue
        problems += [f"{label}: {p}" for p in _node_problems(node, op, graph, opset)]
    return problems
