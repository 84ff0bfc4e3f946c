"""Where Q/DQ go, per target (docs/int8.md), and the graph queries that decide it.

Both targets quantize through ONNX Runtime's ``quantize_static`` (QDQ format). The tensorrt layout
is the one TensorRT fuses (and nvidia-modelopt writes): symmetric int8 with zero points 0,
per-channel weight scales on axis 0, per-tensor activations, Q/DQ on Conv inputs only (no output
quantization), a DQ on the skip input of a residual Add, float16 elsewhere. The cpu layout is the
one ONNX Runtime's CPU kernels run fast: U8S8 (asymmetric uint8 activations, int8 weights), Conv
outputs quantized too so that DQ -> Conv -> Q fuses into QLinearConv, Relu folded into the ranges.

In both, the DCN and correlation nodes, the offset/mask branches feeding each DCN (the offset
predictor's Conv, its Slice and Sigmoid) and the network output stay in float.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import onnx
from onnxruntime.quantization import QuantType

from dpanet.export.onnx_ops import CORRELATION, DEFORM_CONV

TARGETS = ("tensorrt", "cpu")


@dataclass(frozen=True)
class TargetLayout:
    op_types: tuple[str, ...]
    activation_type: QuantType
    extra_options: dict = field(default_factory=dict)
    float_consumers_everywhere: bool = False
    """True: every node that is not quantized reads float tensors (Q/DQ only on quantized nodes'
    inputs). False: only the DCN/correlation inputs and the output are restored to float."""
    float16: bool = False
    residual_add_dq: bool = False


LAYOUTS = {
    "tensorrt": TargetLayout(
        op_types=("Conv",),
        activation_type=QuantType.QInt8,
        extra_options={
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            "QuantizeBias": False,
            "AddQDQPairToWeight": True,
            "DedicatedQDQPair": True,
            "OpTypesToExcludeOutputQuantization": ["Conv"],
        },
        float_consumers_everywhere=True,
        float16=True,
        residual_add_dq=True,
    ),
    "cpu": TargetLayout(
        op_types=("Conv", "Relu", "LeakyRelu", "Add", "MaxPool", "Resize"),
        activation_type=QuantType.QUInt8,
        extra_options={"WeightSymmetric": True},
    ),
}

# DCN input positions: (offset, mask) per op type
_DCN_BRANCH_INPUTS = {"DeformConv": (2, 4), DEFORM_CONV: (1, 2)}
PLUGIN_OPS = (CORRELATION, DEFORM_CONV)


def producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in model.graph.node for out in node.output}


def offset_branch_convs(model: onnx.ModelProto) -> set[str]:
    """Names of the Conv nodes whose outputs reach a DCN's offset or mask input through non-Conv
    nodes only (the offset predictors)."""
    producer = producers(model)
    found: set[str] = set()
    for node in model.graph.node:
        for index in _DCN_BRANCH_INPUTS.get(node.op_type, ()):
            pending = [node.input[index]]
            while pending:
                source = producer.get(pending.pop())
                if source is None:
                    continue
                if source.op_type == "Conv":
                    found.add(source.name)
                else:
                    pending.extend(source.input)
    return found


def conv_layers(model: onnx.ModelProto) -> dict[str, str]:
    """Conv node name -> layer name (its weight's name without ``.weight``, e.g. ``head.2``)."""
    return {n.name: n.input[1].removesuffix(".weight") for n in model.graph.node if n.op_type == "Conv"}


def protected_tensors(plugin_model: onnx.ModelProto) -> set[str]:
    """Tensors that must reach their float consumers unquantized: every input of a plugin node (the
    same tensor names exist in the portable flavour), the graph outputs and the inputs of the nodes
    that produce them (the head's Sigmoid reads float logits)."""
    names = {t for n in plugin_model.graph.node if n.op_type in PLUGIN_OPS for t in n.input}
    outputs = {o.name for o in plugin_model.graph.output}
    last = {t for n in plugin_model.graph.node if set(n.output) & outputs for t in n.input}
    return names | outputs | last
