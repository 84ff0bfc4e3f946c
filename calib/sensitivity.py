"""How much each quantized layer costs, and the search behind ``--max-loss`` (docs/int8.md).

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
from dpanet.runtime.onnxruntime_backend import OnnxRuntimeBackend
from dpanet.training.metrics import psnr

BLOCK_DEPTH = 3  # name parts that make a block: encoder.0.features, decoder.1.fuse, head.2


@dataclass(frozen=True)
class Fidelity:
    """Mean PSNR (dB) over pairs: against float32, and against the sharp images when known."""

    vs_float32: float
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
        vs_float32 = float(np.mean([psnr(o, r) for o, r in zip(outputs, self.reference, strict=True)]))
        if self.task_float32 is None:
            return Fidelity(vs_float32)
        task = float(np.mean([psnr(o, p.target) for o, p in zip(outputs, self.pairs, strict=True)]))
        return Fidelity(vs_float32, task, self.task_float32)


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


def exclude_until(
    plugin: onnx.ModelProto,
    calibration: Calibration,
    ranking: list[LayerSensitivity],
    excluded: set[str],
    max_loss: float,
    evaluator: Evaluator,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[set[str], Fidelity]:
    """Exclude the worst blocks of ``ranking`` one by one until the task PSNR loss against float32
    on the calibration pairs is at most ``max_loss`` dB; the exclusions and the fidelity reached."""
    if evaluator.task_float32 is None:
        raise DPANetError(
            "--max-loss needs calibration pairs with sharp images (DPDD layout or NAME_S files)"
        )
    excluded = set(excluded)
    remaining = [r.nodes for r in ranking]
    while True:
        fidelity = evaluator.fidelity(place_qdq(plugin, calibration, excluded))
        if progress:
            progress(len(excluded), fidelity.task_loss)
        if fidelity.task_loss <= max_loss:
            return excluded, fidelity
        if not remaining:
            raise DPANetError(
                f"--max-loss {max_loss}: every block excluded, the loss is still {fidelity.task_loss:.3f} dB"
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
    whole: Fidelity
    excluded: list[str]
    blocks: list[LayerSensitivity] = field(default_factory=list)

    def to_json(self) -> str:
        def fidelity(f: Fidelity) -> dict:
            return {**asdict(f), "task_loss": f.task_loss}

        data = {
            "target": self.target,
            "method": self.method,
            "count": self.count,
            "size": self.size,
            "source": self.source,
            "flavor": self.flavor,
            "whole_model": fidelity(self.whole),
            "excluded": self.excluded,
            "blocks": [{"block": r.block, "nodes": r.nodes, **fidelity(r.fidelity)} for r in self.blocks],
        }
        return json.dumps(data, indent=2) + "\n"

    def to_markdown(self) -> str:
        w = self.whole
        lines = [
            f"# INT8 sensitivity ({self.target} target, {self.method} calibration)",
            "",
            f"{self.count} calibration pairs ({self.source}), {self.size} crops; mean PSNR over pairs (dB).",
            "",
            "| whole model | PSNR vs float32 | task PSNR float32 | task PSNR int8 | task loss |",
            "|---|---|---|---|---|",
            f"| {self.flavor} file | {w.vs_float32:.2f} | {_dB(w.task_float32)} | {_dB(w.task)} "
            f"| {_dB(w.task_loss, 3)} |",
            "",
            f"Excluded (kept in high precision): {', '.join(self.excluded) or 'none'}.",
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
