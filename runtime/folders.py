"""Deblurring a folder of pairs (``dpanet deblur --pairs DIR -o OUTDIR``), torch-free.

One output per pair, ``OUTDIR/NAME.ext`` with the left view's format, bit depth and channel count
(NAME: the DPDD file name, or the NAME of ``NAME_L``/``NAME_R``). A pair that cannot be deblurred
(unreadable, views that do not match, a view without its partner) is reported and skipped; the
others go on. Outputs already present are skipped unless ``overwrite``, so an interrupted run
resumes where it stopped; every output is written atomically, so none is ever half-written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from dpanet.errors import DPANetError
from dpanet.files import check_not_input
from dpanet.runtime.images import read_image, write_image
from dpanet.runtime.pairs import FoundPairs, PairFiles

if TYPE_CHECKING:
    from dpanet.runtime.deblurrer import Deblurrer
from dpanet.runtime.pipeline import deblur_pair


@dataclass
class FolderSummary:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # present already
    failed: list[str] = field(default_factory=list)  # one message per pair

    def __str__(self) -> str:
        lines = [f"deblurred {len(self.written)} pair(s)"]
        if self.skipped:
            lines[0] += f", skipped {len(self.skipped)} already present (--overwrite redoes them)"
        if self.failed:
            lines[0] += f", {len(self.failed)} failed:"
            lines += [f"  {message}" for message in self.failed]
        return "\n".join(lines)


def output_path(out_dir: Path, pair: PairFiles) -> Path:
    return out_dir / f"{pair.name}{pair.left.suffix}"


def prepare_output_folder(out_dir: str | os.PathLike) -> Path:
    """Create ``out_dir`` if needed; raise :class:`DPANetError` if it cannot hold the outputs."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DPANetError(f"{out_dir}: not a folder (--pairs writes one image per pair into a folder)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DPANetError(f"{out_dir}: cannot create the folder ({exc.strerror})") from None
    if not os.access(out_dir, os.W_OK):
        raise DPANetError(f"{out_dir}: folder is not writable")
    return out_dir


def deblur_folder(
    found: FoundPairs, out_dir: Path, deblurrer: Deblurrer, overwrite: bool = False
) -> FolderSummary:
    """Deblur every pair of ``found`` into ``out_dir`` with ``deblurrer``'s model, tiling and
    memory bound (see the module docstring)."""
    summary = FolderSummary(failed=list(found.incomplete))
    todo = []
    for pair in found.pairs:
        target = output_path(out_dir, pair)
        if target.exists() and not overwrite:
            summary.skipped.append(target)
        else:
            todo.append((pair, target))
    notes: set[str] = set()

    def note_once(message: str) -> None:  # tiling notes repeat for every pair of one size
        if message not in notes:
            notes.add(message)
            deblurrer.note(message)

    for pair, target in tqdm(todo, desc="deblur", unit="image", disable=None):
        try:
            check_not_input(target, pair.left, pair.right)
            left, right = read_image(pair.left), read_image(pair.right)
            result = deblur_pair(
                left,
                right,
                deblurrer.backend,
                deblurrer.channel_order,
                deblurrer.tile,
                deblurrer.overlap,
                note_once,
                deblurrer.max_memory,
            )
            summary.written.append(write_image(target, result.pixels, result.bit_depth))
        except DPANetError as exc:
            summary.failed.append(f"{pair.name}: {exc}")
    return summary
