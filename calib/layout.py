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

from dataclasses import dataclass, field, replace

import onnx
from onnxruntime.quantization import QuantType

from dpanet.export.onnx_ops import CORRELATION, DEFORM_CONV


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
    fold_pads: bool = False
    min_channels: int = 0
    """Convs with fewer input (per group) or output channels stay in high precision."""


LAYOUTS = {
    "tensorrt": TargetLayout(
        op_types=("Conv",),
        activation_type=QuantType.QInt8,
        extra_options={
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            "QuantizeBias": False,
            "AddQDQPairToWeight": True,
            "DedicatedQDQPair": False,  # one Q per tensor, as ModelOpt: TensorRT fuses one Q, not two
            "OpTypesToExcludeOutputQuantization": ["Conv"],
        },
        float_consumers_everywhere=True,
        float16=True,
        residual_add_dq=True,
        fold_pads=True,
        min_channels=16,
    ),
    "cpu": TargetLayout(
        op_types=("Conv", "Relu", "LeakyRelu", "Add", "MaxPool", "Resize"),
        activation_type=QuantType.QUInt8,
        extra_options={"WeightSymmetric": True},
    ),
}


def target_layout(target: str, cpu_arch: str = "x86") -> TargetLayout:
    """The layout of ``target``; for ``cpu``, with the activation type of ``cpu_arch``."""
    if target == "cpu" and cpu_arch == "arm":
        return replace(LAYOUTS["cpu"], activation_type=QuantType.QInt8)
    return LAYOUTS[target]


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


def small_convs(model: onnx.ModelProto, minimum: int) -> set[str]:
    """Conv nodes with fewer than ``minimum`` input channels (per group) or output channels.

    TensorRT's int8 convolutions gain nothing there and the rounding costs accuracy;
    nvidia-modelopt leaves such convs out of its int8 layout too (``find_nodes_from_convs_to_exclude``,
    which keeps a few exceptions with channel counts that are multiples of 8; we keep none). The
    network's input conv (3 channels) is one of them, so the [0, 1] input is never quantized
    symmetrically (where int8 would use 7 of its 8 bits)."""
    weights = {t.name: t.dims for t in model.graph.initializer}
    return {
        n.name for n in model.graph.node if n.op_type == "Conv" and min(weights[n.input[1]][:2]) < minimum
    }


def rule_exclusions(model: onnx.ModelProto, target: str) -> set[str]:
    """Conv nodes kept in high precision by rule: the offset predictors, and for TensorRT the
    convs under :attr:`TargetLayout.min_channels` channels."""
    minimum = LAYOUTS[target].min_channels
    return offset_branch_convs(model) | (small_convs(model, minimum) if minimum else set())


def conv_layers(model: onnx.ModelProto) -> dict[str, str]:
    """Conv node name -> layer name (its weight's name without ``.weight``, e.g. ``head.2``)."""
    return {n.name: n.input[1].removesuffix(".weight") for n in model.graph.node if n.op_type == "Conv"}


def conv_owners(model: onnx.ModelProto, layout: TargetLayout) -> dict[str, str | None]:
    """Each quantized node of ``layout`` that is not a Conv (the cpu layout's Relu, LeakyRelu, Add,
    MaxPool, Resize) -> the Conv it belongs to: the nearest Conv upstream through such nodes,
    breadth first, inputs in order (a residual Add belongs to the Conv that computes its branch, a
    Resize to the Conv behind the Add it upsamples), or None when no Conv is reached that way.

    :func:`dpanet.calib.quantize.place_qdq` quantizes such a node only with its owner: a Relu or Add
    kept in int8 next to float convs gains no fused kernel and only adds rounding, and with every
    Conv kept in float the file is float (measured: without this rule the cpu layout could not pass
    45 dB against float32 with every Conv excluded, docs/int8.md)."""
    others = set(layout.op_types) - {"Conv"}
    producer = producers(model)
    owners: dict[str, str | None] = {}
    for node in model.graph.node:
        if node.op_type not in others:
            continue
        owners[node.name], frontier, seen = None, list(node.input), set()
        while frontier and owners[node.name] is None:
            sources = [producer.get(name) for name in frontier if name not in seen]
            seen.update(frontier)
            owners[node.name] = next((s.name for s in sources if s is not None and s.op_type == "Conv"), None)
            frontier = [i for s in sources if s is not None and s.op_type in others for i in s.input]
    return owners


def with_owned(owners: dict[str, str | None], convs: set[str]) -> set[str]:
    """``convs`` and the nodes they own (:func:`conv_owners`)."""
    return set(convs) | {node for node, owner in owners.items() if owner in convs}


def protected_tensors(plugin_model: onnx.ModelProto) -> set[str]:
    """Tensors that must reach their float consumers unquantized: every input of a plugin node (the
    same tensor names exist in the portable flavour), the graph outputs and the inputs of the nodes
    that produce them (the head's Sigmoid reads float logits)."""
    names = {t for n in plugin_model.graph.node if n.op_type in PLUGIN_OPS for t in n.input}
    outputs = {o.name for o in plugin_model.graph.output}
    last = {t for n in plugin_model.graph.node if set(n.output) & outputs for t in n.input}
    return names | outputs | last
