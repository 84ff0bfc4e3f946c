"""``dpanet parity``: do deployed models reproduce the PyTorch reference on these images? (torch-free)

Built on Polygraphy's comparison machinery: every backend is a Polygraphy runner
(:class:`BackendRunner`), :meth:`Comparator.run` runs them over the pairs, and
:meth:`Comparator.compare_accuracy` checks each candidate against the reference with
``SimpleCompareFunc`` (maximum absolute error within ``atol``) and ``PsnrCompareFunc`` (PSNR at
least ``min_psnr``; Polygraphy's definition: peak = the reference's maximum). The reference is a
Polygraphy ``RunResults``: computed here by the PyTorch model (float32), or loaded from the JSON
``RunResults.save`` wrote, so a device without torch compares its engine against outputs computed
elsewhere. The reference's runner name records what produced it::

    pytorch-fp32 channel_order=BGR sha256=<the checkpoint file's sha256>

Outputs are compared as the network returns them (1 x 3 x H x W, padded to multiples of 8, the
reference's channel order). Candidates that record another checkpoint or channel order, and
references for other pairs or sizes, are refused. Default tolerances per precision:
:data:`TOLERANCES` (docs/runtime.md has the table and how it was chosen).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from polygraphy.backend.base import BaseRunner
from polygraphy.common import TensorMetadata
from polygraphy.comparator import Comparator, PsnrCompareFunc, RunResults, SimpleCompareFunc
from polygraphy.exception import PolygraphyException
from polygraphy.logger import G_LOGGER
from tqdm import tqdm

from dpanet.errors import DPANetError
from dpanet.runtime.images import Image, read_image
from dpanet.runtime.metrics import scores
from dpanet.runtime.model_info import INPUT_NAMES, OUTPUT_NAME
from dpanet.runtime.pipeline import Backend, check_pair, from_network, plan_tiling, run_network, to_network


@dataclass(frozen=True)
class Tolerance:
    atol: float  # maximum absolute error, pixel values in [0, 1]
    min_psnr: float  # dB against the reference


TOLERANCES = {
    "fp32": Tolerance(atol=1e-3, min_psnr=70.0),
    "fp16": Tolerance(atol=2e-2, min_psnr=45.0),
    "int8": Tolerance(atol=7e-2, min_psnr=40.0),
}
"""Default tolerances per candidate precision (docs/runtime.md, "Parity")."""

_REFERENCE_NAME = re.compile(r"^pytorch-fp32 channel_order=(\w+) sha256=([0-9a-f]*)$")


def reference_name(channel_order: str, sha256: str) -> str:
    return f"pytorch-fp32 channel_order={channel_order} sha256={sha256}"


@dataclass
class Pair:
    name: str
    left: Image
    right: Image
    target: Image | None = None


def read_pairs(named_files: list[tuple[str, Path, Path, Path | None]]) -> list[Pair]:
    """Read and check every pair (name, left, right, optional ground truth)."""
    pairs = []
    for name, left, right, target in named_files:
        pair = Pair(name, read_image(left), read_image(right), read_image(target) if target else None)
        check_pair(pair.left, pair.right)
        if pair.target is not None and pair.target.pixels.shape != pair.left.pixels.shape:
            raise DPANetError(f"{target}: ground truth does not match the size and channels of {left}")
        pairs.append(pair)
    return pairs


def feeds(pairs: list[Pair], channel_order: str) -> list[dict[str, np.ndarray]]:
    """Polygraphy feed dicts: the network inputs of each pair in ``channel_order``."""
    views = [(p.left, p.right) for p in pairs]
    return [
        {name: to_network(v.pixels, channel_order) for name, v in zip(INPUT_NAMES, pair, strict=True)}
        for pair in views
    ]


@dataclass
class SharedTiling:
    """One tiling per image size for every runner of a parity run: each backend's own plan under
    ``max_memory``, the smallest tile of them, so the reference and the candidates see the same
    tiles and their difference is the backends' alone (tiling changes outputs a little). A
    static-size model tiles at its own size, as always."""

    backends: list[Backend]
    max_memory: int | None
    note: Callable[[str], object] | None = None
    _noted: set[str] = field(default_factory=set)

    def __call__(self, size: tuple[int, int]) -> tuple[tuple[int, int] | None, int | None]:
        tilings = []
        for backend in self.backends:
            if getattr(backend, "fixed_size", None) is None:
                tiling, message = plan_tiling(backend, size, max_memory=self.max_memory)
                if tiling is not None:
                    tilings.append(tiling)
                if message and self.note and message not in self._noted:
                    self._noted.add(message)
                    self.note(message)
        if not tilings:
            return None, None
        smallest = min(tilings, key=lambda t: t.tile[0] * t.tile[1])
        return smallest.tile, smallest.overlap


class BackendRunner(BaseRunner):
    """A Polygraphy runner around any dpanet backend callable (static-size models tile), tiled as
    ``tiling`` says (None: untiled unless the backend needs tiles)."""

    def __init__(self, name: str, backend: Backend, tiling: SharedTiling | None = None) -> None:
        super().__init__(name=name)
        self.backend = backend
        self.tiling = tiling

    def get_input_metadata_impl(self) -> TensorMetadata:
        meta = TensorMetadata()
        for name in INPUT_NAMES:
            meta.add(name, np.float32, (1, 3, None, None))
        return meta

    def infer_impl(self, feed_dict: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        start = time.perf_counter()
        left, right = (feed_dict[name] for name in INPUT_NAMES)
        tile, overlap = (None, None)
        if self.tiling is not None and getattr(self.backend, "fixed_size", None) is None:
            tile, overlap = self.tiling(left.shape[2:])
        out = run_network(self.backend, left, right, tile, overlap)
        self.inference_time = time.perf_counter() - start
        return {OUTPUT_NAME: out}


@dataclass
class Candidate:
    label: str  # the file given
    backend: Backend | None
    precision: str
    channel_order: str
    sha256: str  # of the checkpoint it was made from ("" if not recorded)
    skipped: str = ""  # why it was not run


def run_quietly(call: Callable, *args, **kwargs):
    """Call Polygraphy with its logger silenced (our report says it all); its exceptions become
    one-line errors."""
    severity = G_LOGGER.module_severity
    G_LOGGER.module_severity = G_LOGGER.CRITICAL
    try:
        return call(*args, **kwargs)
    except PolygraphyException as exc:
        raise DPANetError(f"polygraphy: {str(exc).strip().splitlines()[-1]}") from None
    finally:
        G_LOGGER.module_severity = severity


def run_backend(runner: BackendRunner, inputs: list[dict], label: str) -> RunResults:
    """``Comparator.run`` of one runner over the inputs, with a progress bar (stderr)."""
    bar = tqdm(inputs, desc=f"parity: {label}", unit="pair", leave=False, disable=None)
    return run_quietly(Comparator.run, [runner], data_loader=bar)


def compute_reference(
    backend: Backend, channel_order: str, sha256: str, inputs: list[dict], tiling: SharedTiling | None = None
) -> RunResults:
    runner = BackendRunner(reference_name(channel_order, sha256), backend, tiling)
    return run_backend(runner, inputs, "PyTorch reference")


def save_reference(results: RunResults, path: Path) -> None:
    from dpanet.files import atomic_write

    atomic_write(path, lambda tmp: run_quietly(results.save, tmp))


def load_reference(path: Path) -> tuple[RunResults, str, str]:
    """A saved reference: (results, channel order, checkpoint sha256); check it with
    :func:`check_reference` once the inputs are known."""
    if not path.is_file():
        raise DPANetError(f"{path}: no such file")
    try:
        results = run_quietly(RunResults.load, str(path))
    except Exception as exc:  # Polygraphy's JSON decoding raises many kinds
        raise DPANetError(f"{path}: not a Polygraphy RunResults JSON ({type(exc).__name__})") from None
    names = list(results.keys()) if isinstance(results, RunResults) else []
    match = _REFERENCE_NAME.match(names[0]) if len(names) == 1 else None
    if match is None:
        raise DPANetError(f"{path}: not a dpanet parity reference (one runner named 'pytorch-fp32 ...')")
    return results, match.group(1), match.group(2)


def check_reference(results: RunResults, inputs: list[dict], path: Path) -> None:
    """Refuse a reference computed for another number of pairs or other image sizes."""
    iterations = results[next(iter(results.keys()))]
    if len(iterations) != len(inputs):
        raise DPANetError(f"{path}: holds {len(iterations)} pair(s), these inputs are {len(inputs)}")
    for i, (iteration, feed) in enumerate(zip(iterations, inputs, strict=True)):
        theirs, ours = tuple(iteration[OUTPUT_NAME].shape), feed[INPUT_NAMES[0]].shape
        if theirs != tuple(ours):
            raise DPANetError(
                f"{path}: pair {i + 1} is {theirs[2]}x{theirs[3]} (padded) in the reference, "
                f"{ours[2]}x{ours[3]} here"
            )


def check_candidates(candidates: list[Candidate], channel_order: str, sha256: str) -> None:
    for c in candidates:
        if c.backend is None:
            continue
        if c.channel_order != channel_order:
            raise DPANetError(f"{c.label}: expects {c.channel_order} input, the reference is {channel_order}")
        if c.sha256 and sha256 and c.sha256 != sha256:
            raise DPANetError(
                f"{c.label}: made from checkpoint sha256 {c.sha256[:12]}..., the reference from "
                f"{sha256[:12]}... (another model)"
            )
        if c.precision not in TOLERANCES:
            raise DPANetError(f"{c.label}: no default tolerance for precision {c.precision!r}")


@dataclass
class PairResult:
    pair: str
    max_abs: float
    mean_abs: float
    psnr: float  # against the reference
    passed: bool
    psnr_truth: float | None = None
    ssim_truth: float | None = None


@dataclass
class CandidateResult:
    label: str
    precision: str
    tolerance: Tolerance | None
    skipped: str = ""
    pairs: list[PairResult] = field(default_factory=list)
    heat_map: np.ndarray | None = None  # H x W x 3 BGR in [0, 1], of the worst pair

    @property
    def passed(self) -> bool:
        return not self.skipped and all(p.passed for p in self.pairs)


def heat_map(candidate: np.ndarray, reference: np.ndarray, atol: float, size: tuple[int, int]) -> np.ndarray:
    """|candidate - reference| (largest over channels) as a colour map; yellow-white = atol or more."""
    h, w = size
    diff = np.abs(candidate[0, :, :h, :w] - reference[0, :, :h, :w]).max(axis=0)
    scaled = np.rint(np.clip(diff / atol, 0.0, 1.0) * 255).astype(np.uint8)
    return cv2.applyColorMap(scaled, cv2.COLORMAP_INFERNO).astype(np.float32) / 255.0


def compare(
    reference: RunResults,
    candidates: list[Candidate],
    pairs: list[Pair],
    inputs: list[dict],
    channel_order: str,
    atol: float | None = None,
    min_psnr: float | None = None,
    tiling: SharedTiling | None = None,
) -> list[CandidateResult]:
    """Run the candidates and compare each with the reference (tolerances: per precision unless
    ``atol``/``min_psnr`` override them), tiled as ``tiling`` says."""
    ref_name = next(iter(reference.keys()))
    ref_iterations = reference[ref_name]
    results = []
    for c in candidates:
        if c.backend is None:
            results.append(CandidateResult(c.label, c.precision, None, c.skipped))
            continue
        default = TOLERANCES[c.precision]
        tolerance = Tolerance(
            default.atol if atol is None else atol, default.min_psnr if min_psnr is None else min_psnr
        )
        run = run_backend(BackendRunner(c.label, c.backend, tiling), inputs, c.label)
        merged = RunResults()
        merged[ref_name] = ref_iterations  # RunResults.update() raises TypeError in Polygraphy 0.53.6
        merged[c.label] = run[c.label]
        simple, psnr = run_quietly(
            Comparator.compare_accuracy,
            merged,
            compare_func=[
                SimpleCompareFunc(atol=tolerance.atol, rtol=0.0, check_error_stat="max"),
                PsnrCompareFunc(psnr_threshold=tolerance.min_psnr),
            ],
        )
        result = CandidateResult(c.label, c.precision, tolerance)
        key = (ref_name, c.label)
        worst = -1.0
        for i, pair in enumerate(pairs):
            stats, quality = simple[key][i][OUTPUT_NAME], psnr[key][i][OUTPUT_NAME]
            row = PairResult(pair.name, stats.max_absdiff, stats.mean_absdiff, float(quality.psnr),
                             bool(stats) and bool(quality))  # fmt: skip
            output = merged[c.label][i][OUTPUT_NAME]
            if pair.target is not None:
                h, w = pair.left.size
                truth = scores(
                    from_network(output, h, w, pair.left.channels, channel_order), pair.target.pixels
                )
                row.psnr_truth, row.ssim_truth = truth.psnr, truth.ssim
            if row.max_abs > worst:
                worst = row.max_abs
                result.heat_map = heat_map(
                    output, ref_iterations[i][OUTPUT_NAME], tolerance.atol, pair.left.size
                )
            result.pairs.append(row)
        results.append(result)
    return results


def _number(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    return "inf" if np.isinf(value) else f"{value:.{digits}f}"


def markdown_report(results: list[CandidateResult], reference: str, heat_maps: dict[str, str]) -> str:
    lines = [f"# dpanet parity\n\nReference: `{reference}`\n"]
    lines.append(
        "| candidate | precision | pair | max abs | mean abs | PSNR vs ref (dB) | atol / min PSNR "
        "| PSNR vs truth | SSIM vs truth | result |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if r.skipped:
            lines.append(f"| {r.label} | {r.precision} | - | - | - | - | - | - | - | skipped: {r.skipped} |")
            continue
        t = r.tolerance
        for p in r.pairs:
            lines.append(
                f"| {r.label} | {r.precision} | {p.pair} | {p.max_abs:.2e} | {p.mean_abs:.2e} "
                f"| {_number(p.psnr, 2)} | {t.atol:g} / {t.min_psnr:g} | {_number(p.psnr_truth, 2)} "
                f"| {_number(p.ssim_truth, 4)} | {'pass' if p.passed else 'FAIL'} |"
            )
    verdicts = [f"- {r.label}: {'skipped' if r.skipped else 'pass' if r.passed else 'FAIL'}" for r in results]
    lines += ["", *verdicts]
    if heat_maps:
        lines += ["", "Difference heat maps (worst pair; yellow-white = the tolerance or more):"]
        lines += [f"- {label}: `{path}`" for label, path in heat_maps.items()]
    return "\n".join(lines) + "\n"


def json_report(results: list[CandidateResult], reference: str) -> str:
    def clean(value):
        return None if value is None or (isinstance(value, float) and not np.isfinite(value)) else value

    data = {
        "reference": reference,
        "candidates": [
            {
                "candidate": r.label,
                "precision": r.precision,
                "skipped": r.skipped or None,
                "atol": r.tolerance.atol if r.tolerance else None,
                "min_psnr": r.tolerance.min_psnr if r.tolerance else None,
                "passed": r.passed,
                "pairs": [{k: clean(v) for k, v in vars(p).items()} for p in r.pairs],
            }
            for r in results
        ],
    }
    return json.dumps(data, indent=2) + "\n"
