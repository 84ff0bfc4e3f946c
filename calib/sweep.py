"""``dpanet bench calibration``: how an int8 file's fidelity moves with the calibration method and
the number of calibration pairs, on pairs it was not calibrated on.

One process exports the checkpoint once and, for every target x method x count, calibrates on the
first ``count`` pairs of ``--data``, places the target's rule layout (what ``calibrate --min-psnr 0``
writes: the search would hide the method's effect behind the convs it keeps in float) and measures
the finished plugin-flavour file in ONNX Runtime against the float32 plugin export, on the same
held-out pairs for every row: the scenes after the largest count (up to 16, as ``calibrate`` holds
out). This is how docs/int8.md's "Calibration methods" and "Number of calibration pairs" tables were
measured.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from dpanet.calib.choices import this_cpu_arch
from dpanet.calib.data import load_calibration_set
from dpanet.calib.layout import conv_layers, rule_exclusions
from dpanet.calib.quantize import calibrate, finish, place_qdq
from dpanet.calib.sensitivity import Evaluator
from dpanet.errors import DPANetError
from dpanet.export.exporter import FLAVORS, ExportOptions, export_model
from dpanet.training.checkpoint import load_checkpoint


def run_calibration_sweep(
    checkpoint: str | Path,
    data: str | Path,
    targets: list[str],
    methods: list[str],
    counts: list[int],
    size: tuple[int, int],
    threads: int | None = None,
    log: Callable[[str], object] = print,
) -> str:
    """The table (markdown): one row per target, method and count, held-out PSNR mean and worst."""
    loaded = load_checkpoint(checkpoint)
    dataset = load_calibration_set(Path(data), max(counts), size, loaded.channel_order)
    if not dataset.held_out:
        raise DPANetError(
            f"{data}: no pairs left after the first {max(counts)} (at least {size[0]}x{size[1]}) to test on; "
            "give more pairs or a smaller largest --count"
        )
    graphs = {f: export_model(loaded, ExportOptions(flavor=f)) for f in FLAVORS}
    layers = conv_layers(graphs["plugin"])
    evaluator = Evaluator(graphs["plugin"], dataset.held_out, threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="dpanet-sweep-") as folder:
        for target in targets:
            excluded = rule_exclusions(graphs["plugin"], target)
            for method in methods:
                for count in counts:
                    log(f"{target}, {method}, {count} pair(s) ...")
                    calibration = calibrate(
                        graphs["portable"], graphs["plugin"], dataset.pairs[:count], target, method,
                        Path(folder), cpu_arch=this_cpu_arch(),
                    )  # fmt: skip
                    model = place_qdq(graphs["plugin"], calibration, excluded)
                    model = finish(model, calibration, "plugin", sorted({layers[n] for n in excluded}))
                    fidelity = evaluator.fidelity(model)
                    rows.append((target, method, count, fidelity.vs_float32, fidelity.worst_vs_float32))
    h, w = size
    lines = [
        f"held out: {len(dataset.held_out)} pairs ({dataset.source}, the scenes after the first "
        f"{max(counts)}), {h}x{w} centre crops; PSNR of the int8 plugin file (ONNX Runtime) against "
        "the float32 plugin export; each target's rule layout (calibrate --min-psnr 0)",
        "",
        "| target | method | calibration pairs | held-out PSNR, mean (dB) | worst pair (dB) |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {t} | {m} | {c} | {mean:.2f} | {worst:.2f} |" for t, m, c, mean, worst in rows]
    return "\n".join(lines)
