"""How much each quantized layer costs, and the search behind ``--min-psnr`` and ``--max-loss``
(docs/int8.md).

A layer is one quantized Conv, named by its weight (``encoder.0.features.0.conv1``); layers are
ranked by block, the first three parts of their names (``encoder.0.features``: both views' feature
block of level 0; ``head.2``), which keeps the number of variants to run small. A block's
sensitivity is the output's PSNR against float32 on the calibration pairs when only that block is
int8 (mean over pairs), and, when the pairs have sharp images, the task PSNR it loses. Variants are
evaluated on the float32 Q/DQ plugin-flavour graph (our CPU kernels, the fastest to run here);
the float16 of the TensorRT file is the same for every variant and is left out of the ranking.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import onnx

from dpanet.calib.data import CalibrationPair
from dpanet.calib.quantize import Calibration, place_qdq
from dpanet.errors import DPANetError
from dpanet.runtime.metrics import psnr, reference_peak_psnr
from dpanet.runtime.onnxruntime_backend import OnnxRuntimeBackend

BLOCK_DEPTH = 3  # name parts that make a block: encoder.0.features, decoder.1.fuse, head.2


@dataclass(frozen=True)
class Fidelity:
    """PSNR (dB) against the float32 model's output (mean and worst pair) as ``dpanet parity``
    measures it (:func:`~dpanet.runtime.metrics.reference_peak_psnr`: the peak is the reference's
    maximum), and the mean against the sharp images when known (data range 1, the paper's)."""

    vs_float32: float
    worst_vs_float32: float
    task: float | None = None
    task_float32: float | None = None

    @property
    def task_loss(self) -> float | None:
        return None if self.task is None else self.task_float32 - self.task


class Evaluator:
    """Runs graphs on the calibration pairs and compares with the float32 graph's outputs."""

    def __init__(self, float32: onnx.ModelProto, pairs: list[CalibrationPair], threads: int | None = None):
        self.pairs = pairs
        self.threads = threads
        self.reference = self.outputs(float32)
        targets = [p.target for p in pairs]
        self.task_float32 = (
            float(np.mean([psnr(o, t) for o, t in zip(self.reference, targets, strict=True)]))
            if all(t is not None for t in targets)
            else None
        )

    def outputs(self, model: onnx.ModelProto) -> list[np.ndarray]:
        backend = OnnxRuntimeBackend(model.SerializeToString(), self.threads, name="calibrated model")
        return [backend(p.left, p.right) for p in self.pairs]

    def fidelity(self, model: onnx.ModelProto) -> Fidelity:
        outputs = self.outputs(model)
        vs_float32 = [reference_peak_psnr(o, r) for o, r in zip(outputs, self.reference, strict=True)]
        mean, worst = float(np.mean(vs_float32)), float(np.min(vs_float32))
        if self.task_float32 is None:
            return Fidelity(mean, worst)
        task = float(np.mean([psnr(o, p.target) for o, p in zip(outputs, self.pairs, strict=True)]))
        return Fidelity(mean, worst, task, self.task_float32)


@dataclass(frozen=True)
class LayerSensitivity:
    block: str
    nodes: tuple[str, ...]
    fidelity: Fidelity


def layer_sensitivities(
    plugin: onnx.ModelProto,
    calibration: Calibration,
    layers: dict[str, str],
    excluded: set[str],
    evaluator: Evaluator,
    progress: Callable[[], None] | None = None,
) -> list[LayerSensitivity]:
    """Every block of quantizable layers (``layers``: Conv node -> layer name) outside ``excluded``
    alone in int8, worst first."""
    results = []
    for block, nodes in blocks(layers, excluded).items():
        variant = place_qdq(plugin, calibration, excluded, only=set(nodes))
        results.append(LayerSensitivity(block, nodes, evaluator.fidelity(variant)))
        if progress:
            progress()
    return sorted(results, key=lambda r: r.fidelity.vs_float32)


def blocks(layers: dict[str, str], excluded: set[str]) -> dict[str, tuple[str, ...]]:
    """Block name -> its Conv nodes, for the nodes of ``layers`` outside ``excluded``."""
    grouped: dict[str, list[str]] = {}
    for node, layer in layers.items():
        if node not in excluded:
            grouped.setdefault(".".join(layer.split(".")[:BLOCK_DEPTH]), []).append(node)
    return {block: tuple(nodes) for block, nodes in grouped.items()}


@dataclass(frozen=True)
class Target:
    """What the search must reach on the calibration pairs: every pair's output at least
    ``min_psnr`` dB against the float model's output, and (with sharp images) a task PSNR loss of
    at most ``max_loss`` dB. None: no condition."""

    min_psnr: float | None = None
    max_loss: float | None = None

    def met(self, fidelity: Fidelity) -> bool:
        if self.min_psnr is not None and fidelity.worst_vs_float32 < self.min_psnr:
            return False
        return self.max_loss is None or fidelity.task_loss <= self.max_loss

    def describe(self) -> str:
        parts = []
        if self.min_psnr is not None:
            parts.append(f"PSNR vs float32 >= {self.min_psnr:g} dB on every pair")
        if self.max_loss is not None:
            parts.append(f"task PSNR loss <= {self.max_loss:g} dB")
        return " and ".join(parts)


def exclude_until(
    plugin: onnx.ModelProto,
    calibration: Calibration,
    ranking: list[LayerSensitivity],
    excluded: set[str],
    target: Target,
    evaluator: Evaluator,
    progress: Callable[[int, Fidelity], None] | None = None,
) -> tuple[set[str], Fidelity]:
    """Exclude the worst blocks of ``ranking`` one by one until ``target`` is met on the
    calibration pairs; the exclusions and the fidelity reached."""
    if target.max_loss is not None and evaluator.task_float32 is None:
        raise DPANetError(
            "--max-loss needs calibration pairs with sharp images (DPDD layout or NAME_S files)"
        )
    excluded = set(excluded)
    remaining = [r.nodes for r in ranking]
    while True:
        fidelity = evaluator.fidelity(place_qdq(plugin, calibration, excluded))
        if progress:
            progress(len(excluded), fidelity)
        if target.met(fidelity):
            return excluded, fidelity
        if not remaining:
            raise DPANetError(
                f"{target.describe()}: not reached with every block excluded (worst pair "
                f"{fidelity.worst_vs_float32:.2f} dB, task loss {_dB(fidelity.task_loss, 3)} dB)"
            )
        excluded.update(remaining.pop(0))


@dataclass
class Report:
    target: str
    method: str
    count: int
    size: str
    source: str
    flavor: str
    whole: Fidelity  # on the calibration pairs
    excluded: list[str]
    high_precision_macs: float  # share of the conv MACs kept in float16/float32
    held_out: Fidelity | None = None
    held_out_count: int = 0
    blocks: list[LayerSensitivity] = field(default_factory=list)

    def to_json(self) -> str:
        def fidelity(f: Fidelity | None) -> dict | None:
            return None if f is None else {**asdict(f), "task_loss": f.task_loss}

        data = {
            "target": self.target,
            "method": self.method,
            "count": self.count,
            "size": self.size,
            "source": self.source,
            "flavor": self.flavor,
            "whole_model": fidelity(self.whole),
            "held_out_count": self.held_out_count,
            "held_out": fidelity(self.held_out),
            "excluded": self.excluded,
            "high_precision_macs": self.high_precision_macs,
            "blocks": [{"block": r.block, "nodes": r.nodes, **fidelity(r.fidelity)} for r in self.blocks],
        }
        return json.dumps(data, indent=2) + "\n"

    def to_markdown(self) -> str:
        rows = [("calibration", self.count, self.whole)]
        if self.held_out is not None:
            rows.append(("held out", self.held_out_count, self.held_out))
        lines = [
            f"# INT8 sensitivity ({self.target} target, {self.method} calibration)",
            "",
            f"{self.flavor} file; pairs from {self.source}, {self.size} crops; PSNR in dB.",
            "",
            "| pairs | n | PSNR vs float32 (mean) | (worst pair) | task PSNR float32 | task PSNR int8 "
            "| task loss |",
            "|---|---|---|---|---|---|---|",
            *(
                f"| {name} | {n} | {f.vs_float32:.2f} | {f.worst_vs_float32:.2f} | {_dB(f.task_float32)} "
                f"| {_dB(f.task)} | {_dB(f.task_loss, 3)} |"
                for name, n, f in rows
            ),
            "",
            f"Kept in high precision: {100 * self.high_precision_macs:.1f} % of the conv MACs "
            f"({len(self.excluded)} layers: {', '.join(self.excluded) or 'none'}).",
        ]
        if self.blocks:
            lines += [
                "",
                "Each block alone in int8, worst first:",
                "",
                "| block | convs | PSNR vs float32 | task loss |",
                "|---|---|---|---|",
            ]
            for r in self.blocks:
                f = r.fidelity
                lines.append(f"| {r.block} | {len(r.nodes)} | {f.vs_float32:.2f} | {_dB(f.task_loss, 3)} |")
        return "\n".join(lines) + "\n"


def _dB(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
