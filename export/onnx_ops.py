"""How the two custom ops become ONNX, one translation per op and flavour (docs/export.md).

- ``plugin`` flavour: one node per op whose op_type, attributes, ``plugin_version`` and
  ``plugin_namespace`` are what our TensorRT plugin creators accept (docs/ops.md). The node lives
  in the ``ai.onnx.contrib`` domain, where onnxruntime-extensions looks for Python custom ops;
  TensorRT's ONNX parser ignores the domain and imports any unknown op_type as a plugin.
- ``portable`` flavour: standard ONNX only. The DCN is ``DeformConv`` (opset 19+) and the
  correlation is 81 shifted products (Slice, Mul, ReduceSum) concatenated along channels.

Why this route works (the obvious ones failed, see docs/export.md): the dynamo exporter calls a
custom translation with onnxscript, and onnxscript needs an ONNX ``OpSchema`` for every op it
emits; registering schemas for our two plugin ops (with Python shape inference) lets it emit
them, and lets ``onnx.checker`` and ``onnx.shape_inference`` handle the nodes like built-in ones.
"""

from __future__ import annotations

import onnx
import onnxscript
import torch
from onnx import defs
from onnxscript import opset19 as op

from dpanet.contract import CORRELATION, DEFORM_CONV, PLUGIN_NAMESPACE, PLUGIN_VERSION
from dpanet.contract import PLUGIN_DOMAIN as DOMAIN

PLUGIN_ATTRIBUTES = {
    CORRELATION: ("max_displacement",),
    DEFORM_CONV: ("stride_y", "stride_x", "padding_y", "padding_x", "dilation_y", "dilation_x"),
}
"""Per plugin node: the attributes that become TensorRT plugin fields (the parser consumes
``plugin_version`` and ``plugin_namespace`` itself)."""

_FLOAT_TYPES = ["tensor(float)", "tensor(float16)"]


def _copy_shape(source: onnx.TypeProto, dims: list[onnx.TensorShapeProto.Dimension]) -> onnx.TypeProto:
    out = onnx.TypeProto()
    out.tensor_type.elem_type = source.tensor_type.elem_type
    for dim in dims:
        out.tensor_type.shape.dim.add().CopyFrom(dim)
    return out


def _dims(t: onnx.TypeProto) -> list[onnx.TensorShapeProto.Dimension]:
    return list(t.tensor_type.shape.dim) if t.tensor_type.HasField("shape") else []


def _infer_correlation(ctx) -> None:
    first = ctx.get_input_type(0)
    dims = _dims(first)
    if len(dims) != 4:
        return
    d = ctx.get_attribute("max_displacement").i
    channels = onnx.TensorShapeProto.Dimension(dim_value=(2 * d + 1) ** 2)
    ctx.set_output_type(0, _copy_shape(first, [dims[0], channels, dims[2], dims[3]]))


def _infer_deform_conv(ctx) -> None:
    x, offset, weight = ctx.get_input_type(0), ctx.get_input_type(1), ctx.get_input_type(3)
    xd, od, wd = _dims(x), _dims(offset), _dims(weight)
    if len(xd) != 4 or len(od) != 4 or len(wd) != 4:
        return
    # the offset tensor already has the output's spatial size (docs/ops.md)
    ctx.set_output_type(0, _copy_shape(x, [xd[0], wd[0], od[2], od[3]]))


def _registered(name: str) -> bool:
    try:
        defs.get_schema(name, 1, DOMAIN)
    except defs.SchemaError:
        return False
    return True


def _schema(
    name: str, inputs: list[str], attributes: list[tuple[str, defs.OpSchema.AttrType]], infer
) -> None:
    if _registered(name):
        return
    attrs = [defs.OpSchema.Attribute(a, t, a) for a, t in attributes]
    string = defs.OpSchema.AttrType.STRING
    attrs += [defs.OpSchema.Attribute("plugin_version", string, "TensorRT plugin version")]
    attrs += [defs.OpSchema.Attribute("plugin_namespace", string, "TensorRT plugin namespace")]
    schema = defs.OpSchema(
        name,
        DOMAIN,
        1,
        "DPANet custom op; semantics in docs/ops.md",
        inputs=[defs.OpSchema.FormalParameter(i, "T") for i in inputs],
        outputs=[defs.OpSchema.FormalParameter("output", "T")],
        type_constraints=[("T", _FLOAT_TYPES, "float32 or float16")],
        attributes=attrs,
    )
    schema.set_type_and_shape_inference_function(infer)
    defs.register_schema(schema)


def register_schemas() -> None:
    """Make the plugin ops known to onnx (checker, shape inference) and onnxscript. Idempotent."""
    integer = defs.OpSchema.AttrType.INT
    for name, inputs, infer in (
        (CORRELATION, ["first", "second"], _infer_correlation),
        (DEFORM_CONV, ["x", "offset", "mask", "weight", "bias"], _infer_deform_conv),
    ):
        _schema(name, inputs, [(a, integer) for a in PLUGIN_ATTRIBUTES[name]], infer)


register_schemas()
_contrib = onnxscript.values.Opset(DOMAIN, 1)


def plugin_correlation(first, second, max_displacement: int):
    return _contrib.DPANetCorrelation(
        first,
        second,
        max_displacement=max_displacement,
        plugin_version=PLUGIN_VERSION,
        plugin_namespace=PLUGIN_NAMESPACE,
    )


def plugin_deform_conv(x, offset, mask, weight, bias, stride, padding, dilation):
    values = (*stride, *padding, *dilation)
    attributes = dict(zip(PLUGIN_ATTRIBUTES[DEFORM_CONV], values, strict=True))
    return _contrib.DPANetModulatedDeformConv2d(
        x,
        offset,
        mask,
        weight,
        bias,
        **attributes,
        plugin_version=PLUGIN_VERSION,
        plugin_namespace=PLUGIN_NAMESPACE,
    )


def portable_correlation(first, second, max_displacement: int):
    """Shifted products with constant Slice bounds (no Shape ops), so any H x W works."""
    d = max_displacement
    size = 2 * d + 1
    padded = op.Pad(second, op.Constant(value_ints=[0, 0, d, d, 0, 0, d, d]))
    axes = op.Constant(value_ints=[2, 3])
    steps = op.Constant(value_ints=[1, 1])
    reduce_axis = op.Constant(value_ints=[1])
    planes = []
    for dy in range(size):
        for dx in range(size):
            # end = -(2d - shift) crops the far border; a shift of 2d runs to the end
            ends = [dy - 2 * d if dy < 2 * d else 2**31 - 1, dx - 2 * d if dx < 2 * d else 2**31 - 1]
            shifted = op.Slice(
                padded, op.Constant(value_ints=[dy, dx]), op.Constant(value_ints=ends), axes, steps
            )
            planes.append(op.ReduceSum(op.Mul(first, shifted), reduce_axis, keepdims=1))
    total = op.Concat(*planes, axis=1)
    channels = op.CastLike(op.Gather(op.Shape(first), op.Constant(value_int=1)), total)
    return op.Div(total, channels)


def portable_deform_conv(x, offset, mask, weight, bias, stride, padding, dilation):
    kh, kw = weight.shape[2], weight.shape[3]
    return op.DeformConv(
        x,
        weight,
        offset,
        bias,
        mask,
        dilations=list(dilation),
        group=1,
        kernel_shape=[kh, kw],
        offset_group=1,
        pads=[padding[0], padding[1], padding[0], padding[1]],
        strides=list(stride),
    )


def translation_table(flavor: str) -> dict:
    """Custom translations for ``torch.onnx.export(..., custom_translation_table=...)``."""
    ops = torch.ops.dpanet
    if flavor == "plugin":
        return {
            ops.correlation.default: plugin_correlation,
            ops.modulated_deform_conv2d.default: plugin_deform_conv,
        }
    if flavor == "portable":
        return {
            ops.correlation.default: portable_correlation,
            ops.modulated_deform_conv2d.default: portable_deform_conv,
        }
    raise ValueError(f"unknown flavor {flavor!r} (plugin or portable)")
