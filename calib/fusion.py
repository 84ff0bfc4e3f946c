"""Q/DQ placement against TensorRT's documented fusions (docs/int8.md, "Where each Q sits").

TensorRT's developer guide, "Explicit Quantization" (docs.nvidia.com/deeplearning/tensorrt/latest/
inference-library/quantized-types-explicit-quantization.html), sections "Q/DQ Fusion",
"Q/DQ Propagation" and "Q/DQ Layer-Placement Recommendations", documents what we rely on:

- a quantized Conv (DQ on its input and weights) fuses with its activation (ReLU, and the
  pointwise activations TensorRT fuses into convolutions) and with a trailing Q, giving an int8
  output: a Q is free when it quantizes the output of such a Conv;
- an element-wise Add after a weighted layer fuses into it, and the precision of the Add's other
  (residual) input decides the precision of the fused output: only an int8 residual input (a DQ)
  lets the trailing Q fuse;
- Q layers propagate backward (DQ forward) across layers that commute with quantization, such as
  MaxPool; a Concat whose inputs share one scale commutes as well (our Q sits after the Concat,
  so there is one scale by construction).

A Q that none of these reaches runs as its own kernel. :func:`quantizer_sites` says, for every
activation Q, which fusion absorbs it or why it stands alone; :data:`STANDALONE` lists the
reasons this project accepts (each one documented in docs/int8.md).
"""

from __future__ import annotations

import onnx
from onnx import helper, numpy_helper

from dpanet.calib.layout import PLUGIN_OPS, producers

ACTIVATIONS = ("Relu", "LeakyRelu")
"""Pointwise activations TensorRT fuses into a convolution (with a trailing Q)."""
COMMUTING = ("MaxPool", "Concat")
"""Layers a Q propagates backward across (MaxPool commutes; Concat with one scale)."""

FUSED = "fused into the output of a quantized Conv"
STANDALONE = {
    "plugin": "reads a plugin output (correlation or DCN): the plugins run float16 only, so the Q "
    "cannot fuse into them (it would need the Q -> plugin -> DQ pattern with int8 plugin I/O)",
    "float conv": "reads the output of a Conv kept in high precision (excluded by rule, by "
    "sensitivity or by --exclude): that Conv writes float16",
    "float output": "the Add/activation output is also read in float (Resize, Concat, a plugin or "
    "the output), so TensorRT keeps the fused Conv's output in float16",
    "resize": "reads a Resize output (nearest upsampling); TensorRT does not list Resize among the "
    "layers Q propagates across",
    "add": "reads an Add that is no conv's residual Add (a skip plus an upsampled branch): TensorRT "
    "runs it as an element-wise layer with float inputs",
}
"""Why an activation Q may run as its own kernel (docs/int8.md lists them with counts)."""


def consumers(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    found: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            found.setdefault(name, []).append(node)
    return found


def quantized_convs(model: onnx.ModelProto) -> set[str]:
    """Conv nodes whose activation input is a DequantizeLinear output."""
    producer = producers(model)
    return {n.name for n in model.graph.node if n.op_type == "Conv" and _reads_dq(n.input[0], producer)}


def residual_adds(model: onnx.ModelProto, quantized: set[str]) -> dict[str, int]:
    """Add node -> index of its skip input, for Adds of a quantized Conv's output and another
    tensor (the candidates for TensorRT's Conv + residual Add fusion)."""
    producer = producers(model)
    found = {}
    for node in model.graph.node:
        if node.op_type != "Add" or len(node.input) != 2:
            continue
        from_conv = [producer.get(i) is not None and producer[i].name in quantized for i in node.input]
        if from_conv.count(True) == 1:
            found[node.name] = from_conv.index(False)
    return found


def int8_output(add: onnx.NodeProto, model: onnx.ModelProto, residual: dict[str, int]) -> bool:
    """Whether TensorRT can give the fused Conv + ``add`` (+ activation) an int8 output: every
    reader of the Add's output (or of its single activation) quantizes it, or takes it as the skip
    of another residual Add (through a DQ)."""
    readers = consumers(model)
    output = add.output[0]
    after = readers.get(output, [])
    if len(after) == 1 and after[0].op_type in ACTIVATIONS:
        output, after = after[0].output[0], readers.get(after[0].output[0], [])
    graph_outputs = {o.name for o in model.graph.output}
    return (
        bool(after)
        and output not in graph_outputs
        and all(
            n.op_type == "QuantizeLinear" or (n.name in residual and n.input[residual[n.name]] == output)
            for n in after
        )  # fmt: skip
    )


def quantizer_sites(model: onnx.ModelProto) -> dict[str, str]:
    """Every activation QuantizeLinear (not on an initializer) -> :data:`FUSED` or a key of
    :data:`STANDALONE`; ``"unknown: ..."`` for a placement no rule covers."""
    producer = producers(model)
    initializers = {t.name for t in model.graph.initializer}
    quantized = quantized_convs(model)
    residual = residual_adds(model, quantized)
    int8_adds = {
        n.name
        for n in model.graph.node
        if n.name in residual
        and _reads_dq(n.input[residual[n.name]], producer)
        and int8_output(n, model, residual)
    }

    def site(tensor: str) -> str:
        node = producer.get(tensor)
        if node is None:
            return "unknown: a graph input"
        if node.op_type in ACTIVATIONS:
            return site(node.input[0])
        if node.op_type == "Conv":
            return FUSED if node.name in quantized else "float conv"
        if node.op_type == "Add":
            if node.name in int8_adds:
                return FUSED
            if node.name in residual:
                conv_input = node.input[1 - residual[node.name]]
                return "float output" if producer[conv_input].name in quantized else "float conv"
            return "add"
        if node.op_type in (*PLUGIN_OPS, "DeformConv"):
            return "plugin"
        if node.op_type in COMMUTING:
            sites = {site(i) for i in node.input if i not in initializers}
            standalone = sorted(s for s in sites if s != FUSED)
            return standalone[0] if standalone else FUSED
        if node.op_type == "Resize":
            return "resize"
        return f"unknown: after {node.op_type} {node.name}"

    sites, seen = {}, set()
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in initializers:
            tensor = node.input[0]
            sites[node.name] = f"unknown: a second Q of {tensor}" if tensor in seen else site(tensor)
            seen.add(tensor)
    return sites


def _reads_dq(tensor: str, producer: dict[str, onnx.NodeProto]) -> bool:
    return tensor in producer and producer[tensor].op_type == "DequantizeLinear"


def fold_pads(model: onnx.ModelProto) -> None:
    """Fold a constant zero Pad of the spatial axes into the Conv that reads it (through Q/DQ):
    TensorRT fuses Pad + Conv only when nothing sits between them, and a Conv's own (asymmetric)
    padding is the same arithmetic. The Q/DQ then reads the Pad's input."""
    readers = consumers(model)
    initializers = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for pad in [n for n in model.graph.node if n.op_type == "Pad"]:
        pads = initializers.get(pad.input[1])
        value = initializers.get(pad.input[2]) if len(pad.input) > 2 and pad.input[2] else 0
        mode = {a.name: a.s for a in pad.attribute}.get("mode", b"constant")
        quantizers = readers.get(pad.output[0], [])
        if pads is None or mode != b"constant" or value is None or float(value) != 0 or pads.size != 8:
            continue
        if pads[:2].any() or pads[4:6].any() or [q.op_type for q in quantizers] != ["QuantizeLinear"]:
            continue
        dequantizers = readers.get(quantizers[0].output[0], [])
        convs = [c for d in dequantizers for c in readers.get(d.output[0], [])]
        kinds = {d.op_type for d in dequantizers}, {c.op_type for c in convs}
        if kinds != ({"DequantizeLinear"}, {"Conv"}):
            continue
        for conv in convs:
            attributes = {a.name: a for a in conv.attribute}
            before = list(attributes["pads"].ints) if "pads" in attributes else [0, 0, 0, 0]
            added = [int(pads[2]), int(pads[3]), int(pads[6]), int(pads[7])]
            if "pads" in attributes:
                conv.attribute.remove(attributes["pads"])
            summed = [a + b for a, b in zip(before, added, strict=True)]
            conv.attribute.append(helper.make_attribute("pads", summed))
        quantizers[0].input[0] = pad.input[0]
        model.graph.node.remove(pad)
