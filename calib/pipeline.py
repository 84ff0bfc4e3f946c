"""``dpanet calibrate``: a checkpoint and calibration pairs to an INT8 ONNX file (docs/int8.md).

Steps: export both flavours in float32 (the portable one is calibrated, the plugin one is the
fast evaluator and the default output), load the pairs, measure ranges, keep the rule's layers in
high precision (offset predictors; for TensorRT, convs under 16 channels), rank the other blocks
and exclude the worst until the fidelity target (``min_psnr`` against the float model's output,
and ``max_loss`` with sharp images) is met on the calibration pairs, place the target's Q/DQ in
the requested flavour, finish (float16 for TensorRT, metadata, checks), measure the file against
float32 on the calibration pairs and on held-out pairs, write it atomically.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from dpanet.calib.choices import (
    CPU_ARCHES,
    DEFAULT_METHOD,
    DEFAULT_MIN_PSNR,
    METHOD_NAMES,
    TARGETS,
    this_cpu_arch,
)
from dpanet.calib.cost import high_precision_share
from dpanet.calib.data import load_calibration_set
from dpanet.calib.layout import conv_layers, rule_exclusions
from dpanet.calib.quantize import calibrate, finish, place_qdq
from dpanet.calib.sensitivity import (
    Evaluator,
    Report,
    Target,
    blocks,
    exclude_until,
    layer_sensitivities,
)
from dpanet.errors import DPANetError
from dpanet.export.exporter import FLAVORS, ExportOptions, check_output_path, export_model
from dpanet.files import atomic_write, check_not_input, check_writable_folder, write_text_atomic
from dpanet.runtime.model_info import METADATA_PREFIX
from dpanet.training.checkpoint import load_checkpoint


@dataclass
class CalibrateOptions:
    target: str = "tensorrt"
    flavor: str = "plugin"
    method: str = DEFAULT_METHOD
    count: int = 16
    size: tuple[int, int] = (256, 256)
    exclude: list[str] = field(default_factory=list)
    min_psnr: float = DEFAULT_MIN_PSNR
    max_loss: float | None = None
    cpu_arch: str = field(default_factory=this_cpu_arch)
    report: Path | None = None
    threads: int | None = None

    def validate(self) -> None:
        for option, value, allowed in (
            ("--target", self.target, TARGETS),
            ("--flavor", self.flavor, FLAVORS),
            ("--method", self.method, METHOD_NAMES),
            ("--cpu-arch", self.cpu_arch, CPU_ARCHES),
        ):
            if value not in allowed:
                raise DPANetError(f"{option}: must be one of {', '.join(allowed)}, got {value!r}")
        if self.count < 1:
            raise DPANetError(f"--count: must be at least 1, got {self.count}")
        if self.threads is not None and self.threads < 1:
            raise DPANetError(f"--threads: must be at least 1, got {self.threads}")
        if self.min_psnr < 0:
            raise DPANetError(f"--min-psnr: must be at least 0 dB (0: no target), got {self.min_psnr}")
        if self.max_loss is not None and self.max_loss < 0:
            raise DPANetError(f"--max-loss: must be at least 0 dB, got {self.max_loss}")
        if self.report is not None and self.report.suffix.lower() not in (".md", ".json"):
            raise DPANetError(f"--report {self.report}: give a .md or .json name (both files are written)")


def report_paths(report: Path) -> tuple[Path, Path]:
    return report.with_suffix(".md"), report.with_suffix(".json")


def check_checkpoint_file(path: Path) -> None:
    """Refuse an ONNX model given as the checkpoint (a float16 or int8 one in particular)."""
    if not path.is_file():
        raise DPANetError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(2)
    if head[:2] == b"PK":  # torch.save's zip format
        return
    try:
        model = onnx.load(os.fspath(path), load_external_data=False)
    except Exception:  # not protobuf: load_checkpoint reports what it is
        return
    if not model.graph.node:
        return
    precision = {p.key: p.value for p in model.metadata_props}.get(f"{METADATA_PREFIX}precision", "")
    what = {"fp16": "a float16 ONNX model", "int8": "an already quantized ONNX model"}.get(
        precision, "an ONNX model"
    )
    raise DPANetError(f"{path}: {what}; calibrate needs the float32 checkpoint (.pt) it was exported from")


def resolve_exclusions(names: list[str], layers: dict[str, str]) -> set[str]:
    """The Conv nodes matching ``--exclude`` names (a layer, a prefix such as ``encoder.0``, or a
    node name)."""
    nodes: set[str] = set()
    for name in names:
        matched = {
            node
            for node, layer in layers.items()
            if name in (node, layer) or layer.startswith(name.rstrip(".") + ".")
        }
        if not matched:
            examples = ", ".join(sorted(layers.values())[:3])
            raise DPANetError(f"--exclude {name}: no such layer (layers are named like {examples})")
        nodes |= matched
    return nodes


def calibrate_checkpoint(
    checkpoint: str | os.PathLike,
    data: str | os.PathLike,
    output: str | os.PathLike,
    options: CalibrateOptions,
    log=print,
    bar=None,
) -> Report:
    """Write the INT8 model; ``log`` gets one-line messages, ``bar(total, description)`` returns a
    tqdm-like progress bar (or None)."""
    checkpoint, output = Path(checkpoint), Path(output)
    options.validate()
    check_output_path(output)
    check_not_input(output, checkpoint)
    if options.report is not None:
        for path in report_paths(options.report):
            check_not_input(path, checkpoint, output)
            check_writable_folder(path)
    check_checkpoint_file(checkpoint)
    loaded = load_checkpoint(checkpoint)
    calibration_set = load_calibration_set(Path(data), options.count, options.size, loaded.channel_order)
    if options.max_loss is not None and not calibration_set.has_targets:
        raise DPANetError(f"{data}: --max-loss needs pairs with sharp images (DPDD layout or NAME_S files)")
    size = f"{options.size[0]}x{options.size[1]}"
    held = f", {len(calibration_set.held_out)} more held out" if calibration_set.held_out else ""
    log(f"calibration: {options.count} pairs ({calibration_set.source}), {size} crops{held}")
    graphs = {f: export_model(loaded, ExportOptions(flavor=f)) for f in FLAVORS}
    layers = conv_layers(graphs["plugin"])
    excluded = resolve_exclusions(options.exclude, layers) | rule_exclusions(graphs["plugin"], options.target)
    target = Target(options.min_psnr or None, options.max_loss)
    with tempfile.TemporaryDirectory(prefix="dpanet-calibrate-") as folder:
        progress = _bar(bar, options.count, "calibrating")
        calibration = calibrate(
            graphs["portable"], graphs["plugin"], calibration_set.pairs, options.target, options.method,
            Path(folder), progress and (lambda: progress.update()), options.cpu_arch,
        )  # fmt: skip
        _close(progress)
        ranking, search = [], False
        if options.report is not None or target != Target():
            evaluator = Evaluator(graphs["plugin"], calibration_set.pairs, options.threads)
            search = target != Target() and not target.met(
                evaluator.fidelity(place_qdq(graphs["plugin"], calibration, excluded))
            )  # rank the blocks (one run each) only when the rules alone miss the target, or for --report
        if options.report is not None or search:
            progress = _bar(bar, len(blocks(layers, excluded)), "block sensitivity")
            ranking = layer_sensitivities(
                graphs["plugin"], calibration, layers, excluded, evaluator, progress and progress.update
            )
            _close(progress)
        if search:
            excluded, _ = exclude_until(
                graphs["plugin"], calibration, ranking, excluded, target, evaluator,
                lambda n, f: log(f"search: {n} conv(s) kept in high precision, worst pair "
                                 f"{f.worst_vs_float32:.2f} dB vs float32"),
            )  # fmt: skip
        excluded_layers = sorted({layers[n] for n in excluded})
        model = finish(
            place_qdq(graphs[options.flavor], calibration, excluded),
            calibration,
            options.flavor,
            excluded_layers,
        )
        whole = Evaluator(graphs[options.flavor], calibration_set.pairs, options.threads).fidelity(model)
        held_out = None
        if calibration_set.held_out:
            evaluator = Evaluator(graphs[options.flavor], calibration_set.held_out, options.threads)
            held_out = evaluator.fidelity(model)
    report = Report(
        options.target, options.method, options.count, size, calibration_set.source, options.flavor,
        whole, excluded_layers, high_precision_share(graphs["plugin"], excluded, options.size),
        held_out, len(calibration_set.held_out), ranking,
    )  # fmt: skip
    atomic_write(output, lambda tmp: onnx.save_model(model, tmp))
    if options.report is not None:
        markdown, json_path = report_paths(options.report)
        write_text_atomic(markdown, report.to_markdown())
        write_text_atomic(json_path, report.to_json())
    return report


def _bar(bar, total: int, description: str):
    return bar(total, description) if bar else None


def _close(progress) -> None:
    if progress is not None:
        progress.close()
