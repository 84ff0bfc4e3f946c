"""``dpanet evaluate``: score a model (and optional baselines) on a DPDD-layout split.

Two protocols:

- ``release``: the release's test protocol. Views and target are read as 8-bit, the way OpenCV's
  ``imread`` reads a 16-bit PNG (value >> 8), and the output is truncated to uint8 before scoring
  (``np.uint8(output * 255)`` in float32, as the release's test code does: not rounded).
- ``16bit``: the files' own precision; the output is rounded to 16 bits.

Every method (the model, the combined input, the baselines) is quantised the same way. On a GPU the
network runs in IEEE float32, without TensorFloat-32 (:func:`dpanet.training.inference.float32_mode`):
the release's GPU had none.

Every image gets PSNR, SSIM and MAE (scikit-image's implementations; LPIPS as well when its weights
are on this machine) for the model, for the blurry combined input and for each baseline. The
summary sets the means beside the paper's Table I row for DPANet on the DPDD test set.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dpanet.files import write_text_atomic
from dpanet.runtime.images import Image, read_image, to_integer
from dpanet.runtime.pairs import PairFiles
from dpanet.runtime.pipeline import Backend, deblur_pair
from dpanet.training.data import read_eight_bit
from dpanet.training.metrics import LpipsFn, scores

PROTOCOLS = ("release", "16bit")
PAPER_TABLE_I = {"psnr": 26.80, "ssim": 0.835, "mae": 0.035, "lpips": 0.159}
"""DPANet on the DPDD test set (76 scenes, 1680 x 1120), paper Table I."""
Method = Callable[[np.ndarray], np.ndarray]
"""A non-learned baseline: combined image (H x W x C) -> estimate of the sharp image."""


def read_as_protocol(path: Path, protocol: str) -> Image:
    """An image as the protocol reads it (``release``: 8-bit as OpenCV's imread makes it)."""
    return read_eight_bit(path) if protocol == "release" else read_image(path)


def quantise(pixels: np.ndarray, bit_depth: int, protocol: str = "16bit") -> np.ndarray:
    """[0, 1] floats to ``bit_depth`` integers and back to [0, 1]: truncated to 8 bits under the
    release protocol (its ``np.uint8(output * 255)``, the product in float32), rounded otherwise."""
    if protocol == "release":
        scaled = np.clip(pixels, 0.0, 1.0).astype(np.float32) * np.float32(255)
        return np.floor(scaled) / np.float32(255)
    return to_integer(pixels, bit_depth).astype(np.float32) / float(2**bit_depth - 1)


@dataclass
class Evaluation:
    protocol: str
    rows: list[dict] = field(default_factory=list)

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(r["method"] for r in self.rows))

    def means(self, method: str) -> dict[str, float]:
        rows = [r for r in self.rows if r["method"] == method]
        keys = [k for k in ("psnr", "ssim", "mae", "lpips") if rows and rows[0].get(k) is not None]
        return {k: float(np.mean([r[k] for r in rows])) for k in keys}


def evaluate_split(
    scenes: list[PairFiles],
    backend: Backend,
    channel_order: str,
    protocol: str = "release",
    baselines: dict[str, Method] | None = None,
    lpips: LpipsFn | None = None,
    progress: bool = True,
    label: str = "model",
    with_inputs: bool = True,
    max_memory: int | None = None,
    note: Callable[[str], object] | None = None,
) -> Evaluation:
    """Score ``backend`` (rows named ``label``), plus the combined input and ``baselines`` unless
    ``with_inputs`` is False (when another backend's run already scored them). ``max_memory`` and
    ``note`` as in :func:`dpanet.runtime.pipeline.run_network`."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    result = Evaluation(protocol)
    for scene in tqdm(scenes, desc=f"evaluate ({protocol})", unit="image", disable=not progress or None):
        left, right = read_as_protocol(scene.left, protocol), read_as_protocol(scene.right, protocol)
        target = read_as_protocol(scene.target, protocol).pixels
        combined = read_as_protocol(scene.combined, protocol).pixels
        start = time.perf_counter()
        output = deblur_pair(left, right, backend, channel_order, note=note, max_memory=max_memory)
        seconds = time.perf_counter() - start
        bit_depth = left.bit_depth
        candidates = {label: output.pixels}
        if with_inputs:
            candidates["combined input"] = combined
            candidates.update({name: method(combined) for name, method in (baselines or {}).items()})
        for method, pixels in candidates.items():
            pixels = quantise(pixels, bit_depth, protocol)
            s = scores(pixels, target)
            result.rows.append(
                {
                    "image": scene.name,
                    "method": method,
                    "psnr": s.psnr,
                    "ssim": s.ssim,
                    "mae": s.mae,
                    "lpips": lpips(pixels, target) if lpips else None,
                    "seconds": seconds if method == label else None,
                }
            )
    return result


CSV_FIELDS = ("protocol", "image", "method", "psnr", "ssim", "mae", "lpips", "seconds")


def write_csv(path: Path, evaluations: list[Evaluation]) -> Path:
    """One row per image, method and protocol (atomic)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for evaluation in evaluations:
        for row in evaluation.rows:
            writer.writerow(
                {"protocol": evaluation.protocol, **{k: "" if v is None else v for k, v in row.items()}}
            )
    return write_text_atomic(path, buffer.getvalue())


def summary_table(evaluations: list[Evaluation], images: int, lpips_note: str = "") -> str:
    """Mean scores per protocol and method, then the paper's Table I row."""

    def cell(value: float | None, digits: int) -> str:
        return f"{value:>8.{digits}f}" if value is not None else f"{'-':>8}"

    lines = [f"{'protocol':<10}{'method':<34}{'PSNR':>8}{'SSIM':>8}{'MAE':>8}{'LPIPS':>8}"]
    for evaluation in evaluations:
        for method in evaluation.methods:
            m = evaluation.means(method)
            lines.append(
                f"{evaluation.protocol:<10}{method:<34}{cell(m.get('psnr'), 2)}{cell(m.get('ssim'), 3)}"
                f"{cell(m.get('mae'), 4)}{cell(m.get('lpips'), 3)}"
            )
    p = PAPER_TABLE_I
    lines.append(
        f"{'paper':<10}{'DPANet, Table I (DPDD test, 76)':<34}{cell(p['psnr'], 2)}{cell(p['ssim'], 3)}"
        f"{cell(p['mae'], 4)}{cell(p['lpips'], 3)}"
    )
    lines.append(
        f"means over {images} image(s); the paper's row is the DPDD test split under the release protocol"
    )
    if lpips_note:
        lines.append(f"LPIPS: {lpips_note}")
    return "\n".join(lines)
