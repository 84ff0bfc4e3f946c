"""Calibration and Q/DQ placement through ONNX Runtime's ``quantize_static`` (docs/int8.md).

ONNX Runtime cannot register custom ops while calibrating, so the ranges are measured once on the
portable flavour and stored in ONNX Runtime's calibration cache (a JSON file of per-tensor
ranges). Both flavours come from the same traced program and share every tensor name outside the
correlation and DCN translations, so ``quantize_static`` then places Q/DQ in either flavour from
that cache without running it: the plugin flavour gets the same Q/DQ, its plugin nodes untouched.

``quantize_static`` alone gets two things wrong for our layouts, fixed here with plain onnx edits:
a tensor with a single quantized consumer is fake-quantized for all its consumers (the DCN and
correlation inputs included), and the residual-Add rule of the TensorRT layout is not one of its
options.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import helper
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

from dpanet.calib.data import CalibrationPair, PairReader
from dpanet.calib.fusion import fold_pads, int8_output, residual_adds
from dpanet.calib.layout import (
    TargetLayout,
    conv_owners,
    producers,
    protected_tensors,
    target_layout,
    with_owned,
)
from dpanet.export.exporter import check_model
from dpanet.export.float16 import sort_topologically, to_float16
from dpanet.export.onnx_ops import register_schemas
from dpanet.runtime.model_info import INT8_PREFIX, METADATA_PREFIX

METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}
"""``--method`` name (:data:`dpanet.calib.choices.METHOD_NAMES`) -> ONNX Runtime's calibrator."""
CALIBRATOR_OPTIONS = {"entropy": {"num_bins": 2048, "num_quantized_bins": 128}}
"""Options of ONNX Runtime's calibrators that ``quantize_static`` cannot pass. Its entropy
calibrator defaults to 128 histogram bins and 128 quantized bins, so its threshold search has one
candidate (the full range: minmax); 2048 bins searched over 128 quantized bins is the histogram of
TensorRT's own entropy calibrator (GTC 2017, "8-bit inference with TensorRT")."""


@dataclass(frozen=True)
class Calibration:
    """Ranges measured on the portable flavour, for one target and method."""

    target: str
    method: str
    count: int
    cache: Path  # ONNX Runtime's calibration cache (JSON)
    protected: frozenset[str]  # tensors whose float consumers must read them unquantized
    cpu_arch: str = "x86"  # the cpu target's activation type (S8S8 on arm, U8S8 on x86)

    @property
    def layout(self) -> TargetLayout:
        return target_layout(self.target, self.cpu_arch)


def calibrate(
    portable: onnx.ModelProto,
    plugin: onnx.ModelProto,
    pairs: list[CalibrationPair],
    target: str,
    method: str,
    folder: Path,
    progress: Callable[[], None] | None = None,
    cpu_arch: str = "x86",
) -> Calibration:
    """Run the calibration pairs through ``portable`` and keep the ranges in ``folder``, in ONNX
    Runtime's calibration cache (its calibrator is run here, not inside ``quantize_static``, so
    that its options (:data:`CALIBRATOR_OPTIONS`) reach it)."""
    cache = folder / f"ranges-{target}-{method}.json"
    protected = frozenset(protected_tensors(plugin))
    calibration = Calibration(target, method, len(pairs), cache, protected, cpu_arch)
    register_schemas()
    with tempfile.TemporaryDirectory(prefix="dpanet-calib-") as scratch:
        source = Path(scratch) / "float.onnx"
        onnx.save_model(portable, source)
        calibrator = create_calibrator(
            source,
            list(calibration.layout.op_types),
            augmented_model_path=str(Path(scratch) / "augmented.onnx"),
            calibrate_method=METHODS[method],
            extra_options=CALIBRATOR_OPTIONS.get(method, {}),
        )
        with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print their progress
            calibrator.collect_data(PairReader(pairs, progress))
            ranges = calibrator.compute_data()
        save_tensors_data(ranges, cache)
    return calibration


def _quantize_static(
    model: onnx.ModelProto,
    calibration: Calibration,
    excluded: Iterable[str],
    only: Iterable[str] = (),
) -> onnx.ModelProto:
    register_schemas()  # shape inference inside quantize_static must know our plugin ops
    layout = calibration.layout
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # its pre-processing nag
    with tempfile.TemporaryDirectory(prefix="dpanet-calib-") as folder:
        source, output = Path(folder) / "float.onnx", Path(folder) / "quantized.onnx"
        onnx.save_model(model, source)  # quantize_static would move a ModelProto's weights out of it
        quantize_static(
            source,
            output,
            None,  # the ranges come from the calibration cache
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(layout.op_types),
            per_channel=True,
            activation_type=layout.activation_type,
            weight_type=QuantType.QInt8,
            nodes_to_quantize=list(only),
            nodes_to_exclude=list(excluded),
            calibrate_method=METHODS[calibration.method],
            extra_options=dict(layout.extra_options),
            calibration_cache_path=calibration.cache,
        )
        return onnx.load(output)


def quantized_nodes(
    model: onnx.ModelProto, layout: TargetLayout, excluded: set[str], only: set[str]
) -> set[str]:
    return {
        n.name
        for n in model.graph.node
        if n.op_type in layout.op_types and n.name not in excluded and (not only or n.name in only)
    }


def place_qdq(
    model: onnx.ModelProto, calibration: Calibration, excluded: set[str], only: set[str] = frozenset()
) -> onnx.ModelProto:
    """``model`` (float32, either flavour) with the target's Q/DQ from the calibration's ranges;
    ``excluded`` Convs stay float, and with ``only`` just those Convs are quantized; the layout's
    other quantized nodes follow the Conv that owns them (:func:`~dpanet.calib.layout.conv_owners`).
    Float32 throughout (see :func:`finish` for the file)."""
    layout = calibration.layout
    owners = conv_owners(model, layout)
    excluded = with_owned(owners, set(excluded)) | {node for node, owner in owners.items() if owner is None}
    only = with_owned(owners, set(only)) if only else set()
    quantized = _quantize_static(model, calibration, excluded, only)
    chosen = quantized_nodes(model, layout, excluded, only)
    restrict = None if layout.float_consumers_everywhere else calibration.protected
    restore_float_inputs(quantized, chosen, restrict)
    unquantized = {n.name for n in model.graph.node if n.op_type in layout.op_types} - chosen
    others = {n.name for n in quantized.graph.node} - unquantized
    restore_float_inputs(quantized, others, None)  # excluded (or not chosen) nodes read float inputs
    if layout.residual_add_dq:
        add_residual_dq(quantized, chosen)
    if layout.fold_pads:
        fold_pads(quantized)
    remove_dead_nodes(quantized)
    sort_topologically(quantized.graph)
    return quantized


def restore_float_inputs(model: onnx.ModelProto, keep: set[str], tensors: set[str] | None) -> None:
    """Let every node outside ``keep`` read the float tensor instead of its fake-quantized copy
    DQ(Q(tensor)) (for ``tensors`` only, if given)."""
    producer = producers(model)
    initializers = {t.name for t in model.graph.initializer}
    for node in model.graph.node:
        if node.name in keep or node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        for index, name in enumerate(node.input):
            source = _fake_quantized_source(name, producer)
            if source is not None and source not in initializers and (tensors is None or source in tensors):
                node.input[index] = source


def _fake_quantized_source(name: str, producer: dict[str, onnx.NodeProto]) -> str | None:
    dq = producer.get(name)
    if dq is None or dq.op_type != "DequantizeLinear":
        return None
    q = producer.get(dq.input[0])
    if q is None or q.op_type != "QuantizeLinear":
        return None
    return q.input[0]


def add_residual_dq(model: onnx.ModelProto, quantized: set[str]) -> None:
    """TensorRT's residual rule: an Add of a quantized Conv's output and a skip tensor that is
    quantized elsewhere reads the skip through its own DQ, so that TensorRT fuses the Add into the
    Conv with an int8 residual, but only where that gives the fused Conv an int8 output
    (:func:`dpanet.calib.fusion.int8_output`): elsewhere the DQ adds rounding and a kernel."""
    quantizers = {}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear":
            quantizers.setdefault(node.input[0], node)
    residual = residual_adds(model, quantized)
    by_name = {n.name: n for n in model.graph.node}
    chosen = [
        (by_name[name], skip)
        for name, skip in residual.items()
        if by_name[name].input[skip] in quantizers and int8_output(by_name[name], model, residual)
    ]
    added = []
    for node, skip in chosen:
        q = quantizers[node.input[skip]]
        output = f"{node.input[skip]}_DequantizeLinear_residual_{node.name}"
        added.append(
            helper.make_node("DequantizeLinear", [q.output[0], *q.input[1:]], [output], name=f"{output}_node")
        )
        node.input[skip] = output
    model.graph.node.extend(added)


def remove_dead_nodes(model: onnx.ModelProto) -> None:
    """Drop Q/DQ nodes (and unused initializers) that no longer feed anything."""
    while True:
        used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
        dead = [
            n
            for n in model.graph.node
            if n.op_type in ("QuantizeLinear", "DequantizeLinear") and not any(o in used for o in n.output)
        ]
        if not dead:
            break
        for node in dead:
            model.graph.node.remove(node)
    used = {i for n in model.graph.node for i in n.input}
    kept = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)


def finish(
    model: onnx.ModelProto, calibration: Calibration, flavor: str, excluded_layers: list[str]
) -> onnx.ModelProto:
    """The file's graph: float16 outside Q/DQ for TensorRT, the int8 metadata, checked."""
    if calibration.layout.float16:
        model = to_float16(model, flavor)
    stamp_int8(model, calibration, excluded_layers)
    return check_model(model)


def stamp_int8(model: onnx.ModelProto, calibration: Calibration, excluded_layers: list[str]) -> None:
    """``dpanet.precision`` = ``int8`` and ``dpanet.int8.*`` (target, method, count, excluded)."""
    values = {
        "precision": "int8",
        f"{INT8_PREFIX}target": calibration.target,
        f"{INT8_PREFIX}method": calibration.method,
        f"{INT8_PREFIX}count": str(calibration.count),
        **({f"{INT8_PREFIX}cpu_arch": calibration.cpu_arch} if calibration.target == "cpu" else {}),
        f"{INT8_PREFIX}excluded": json.dumps(excluded_layers),
    }
    kept = [p for p in model.metadata_props if p.key.removeprefix(METADATA_PREFIX) not in values]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in values.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = f"{METADATA_PREFIX}{key}", value
    layout = f"{calibration.target} layout"
    if calibration.target == "cpu":
        layout += f" for {calibration.cpu_arch}"
    model.doc_string += f" INT8 ({layout}, {calibration.method} calibration)."
