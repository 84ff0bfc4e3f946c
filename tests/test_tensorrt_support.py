"""The graphs `dpanet export` writes against TensorRT's ONNX parser matrix (no TensorRT needed).

The matrix is onnx-tensorrt's operator table for the 10.1 parser, in ../shared; the checker is
:func:`dpanet.export.tensorrt_support.parser_problems` (any onnx.ModelProto, so the int8 graphs of
`dpanet calibrate` go through the same function). Each restriction the checker enforces is also
shown to fail on a graph that breaks it.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dpanet.export.exporter import ExportOptions, export_checkpoint
from dpanet.export.tensorrt_support import parser_problems, read_matrix
from dpanet.training.checkpoint import save_checkpoint
from dpanet.training.config import DPANetConfig

from conftest import SHARED
from lively import lively_model

MATRIX = SHARED / "third_party" / "tensorrt" / "onnx-parser-operators-10.1.md"
GRAPHS = [(flavor, precision) for flavor in ("plugin", "portable") for precision in ("fp32", "fp16")]


@pytest.fixture(scope="module")
def matrix():
    if not MATRIX.is_file():
        pytest.skip(f"needs the ONNX parser's operator matrix at {MATRIX} (set DPANET_SHARED)")
    return MATRIX


@pytest.fixture(scope="module")
def exported(tmp_path_factory, matrix) -> dict[tuple[str, str], onnx.ModelProto]:
    """A width-4 DPANet exported in both flavours and both precisions (dynamic size)."""
    folder = tmp_path_factory.mktemp("trt-support")
    checkpoint = folder / "small.pt"
    save_checkpoint(checkpoint, lively_model(DPANetConfig(width=4), seed=2), "BGR")
    return {
        (flavor, precision): export_checkpoint(
            checkpoint,
            folder / f"{flavor}-{precision}.onnx",
            ExportOptions(flavor=flavor, precision=precision),
        )
        for flavor, precision in GRAPHS
    }


def test_the_matrix_reads_as_documented(matrix):
    table = read_matrix(matrix)
    assert table.opsets == (9, 20)
    assert {"FP32", "FP16", "INT8", "UINT8"} <= table.graph_types
    assert table.operators["DeformConv"].types == {"FP32", "FP16"}
    assert not table.operators["AffineGrid"].supported


@pytest.mark.slow
@pytest.mark.parametrize("flavor, precision", GRAPHS)
def test_every_node_export_writes_is_one_the_parser_takes(exported, matrix, flavor, precision):
    model = exported[flavor, precision]
    assert parser_problems(model, matrix) == []
    if flavor == "portable":
        assert any(n.op_type == "DeformConv" for n in model.graph.node)  # the checked restrictions apply


def _problems_after(model: onnx.ModelProto, matrix, change) -> list[str]:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    change(copy)
    return parser_problems(copy, matrix)


def _first(model, op_type) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.op_type == op_type)


def _set(node: onnx.NodeProto, name: str, value) -> None:
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend([*kept, helper.make_attribute(name, value)])


@pytest.mark.slow
@pytest.mark.parametrize(
    "flavor, change, problem",
    [
        ("portable", lambda m: _set(_first(m, "Resize"), "mode", "cubic"), "mode 'cubic' not in"),
        (
            "portable",
            lambda m: _set(_first(m, "Resize"), "coordinate_transformation_mode", "tf_crop_and_resize"),
            "coordinate_transformation_mode 'tf_crop_and_resize'",
        ),
        (
            "portable",
            lambda m: _set(_first(m, "DeformConv"), "pads", [1, 1, 1, 0]),
            "differ between the beginning",
        ),
        ("portable", lambda m: _set(_first(m, "MaxPool"), "dilations", [2, 2]), "dilations must be all ones"),
        ("portable", lambda m: m.opset_import[0].__setattr__("version", 21), "opset 21 is outside"),
        (
            "portable",
            lambda m: m.graph.node.append(helper.make_node("AffineGrid", ["a", "b"], ["c"])),
            "AffineGrid",
        ),
        (
            "plugin",
            lambda m: _set(_first(m, "DPANetCorrelation"), "plugin_namespace", ""),
            "namespace/version",
        ),
        (
            "plugin",
            lambda m: m.graph.node.append(helper.make_node("Foo", ["a"], ["b"], domain="x")),
            "no plugin",
        ),
    ],
)
def test_a_graph_the_parser_would_refuse_fails_here(exported, matrix, flavor, change, problem):
    problems = _problems_after(exported[flavor, "fp32"], matrix, change)
    assert any(problem in p for p in problems), problems


def _qdq_conv(zero_point: int, data_type=TensorProto.FLOAT, squeeze_axes_constant=True) -> onnx.ModelProto:
    """x -> QuantizeLinear -> DequantizeLinear -> Conv -> Squeeze(axes): a symmetric int8 pattern."""
    inits = [
        numpy_helper.from_array(np.array(0.1, np.float32), "scale"),
        numpy_helper.from_array(np.array(zero_point, np.int8), "zero"),
        numpy_helper.from_array(np.ones((1, 1, 3, 3), np.float32), "w"),
    ]
    axes = [numpy_helper.from_array(np.array([0], np.int64), "axes")] if squeeze_axes_constant else []
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "scale", "zero"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["dq"]),
        helper.make_node("Conv", ["dq" if data_type == TensorProto.FLOAT else "x", "w"], ["y"]),
        helper.make_node("Squeeze", ["y", "axes"], ["out"]),
    ]
    inputs = [helper.make_tensor_value_info("x", data_type, [1, 1, 8, 8])]
    if not squeeze_axes_constant:
        inputs.append(helper.make_tensor_value_info("axes", TensorProto.INT64, [1]))
    graph = helper.make_graph(
        nodes,
        "qdq",
        inputs,
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        initializer=inits + axes,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    return onnx.shape_inference.infer_shapes(model)


def test_int8_qdq_needs_zero_points_of_zero(matrix):
    assert parser_problems(_qdq_conv(0), matrix) == []
    problems = parser_problems(_qdq_conv(3), matrix)
    assert sum("zero_point is not a constant zero" in p for p in problems) == 2, problems


def test_constant_axes_and_data_types_are_checked(matrix):
    assert any(
        "input axes (axes) is not an initializer" in p
        for p in parser_problems(_qdq_conv(0, squeeze_axes_constant=False), matrix)
    )
    problems = parser_problems(_qdq_conv(0, data_type=TensorProto.INT32), matrix)
    assert any("(Conv): input type INT32 not in" in p for p in problems), problems
