"""Finding dual-pixel view pairs in folders (torch-free): what the training loaders read and what
``dpanet deblur --pairs`` and ``dpanet parity --pairs`` process.

- **DPDD** (official layout, 16-bit PNG)::

      ROOT/{train,val,test}_c/source/NAME.png   combined (blurry) image
      ROOT/{train,val,test}_c/target/NAME.png   all-in-focus image
      ROOT/{train,val,test}_l/source/NAME.png   left view
      ROOT/{train,val,test}_r/source/NAME.png   right view

  as the release renamed it, or DPDD's own naming (``NAME_L.png``, ``NAME_R.png`` views, the
  all-in-focus image under its own name): :func:`list_dpdd`.
- **Triplets**: any folder of ``NAME_L.ext`` and ``NAME_R.ext`` (ext png/tif/tiff/jpg/jpeg), with
  ``NAME_S.ext`` (sharp) needed for training and ``NAME_C.ext`` (combined) optional.

Training wants complete scenes (:func:`list_dpdd`, :func:`list_triplets` refuse a folder with
missing files); inference wants every pair it can find and a list of the incomplete ones
(:func:`find_pairs`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dpanet.errors import DPANetError
from dpanet.runtime.images import READ_SUFFIXES

SPLITS = ("train", "val", "test")
VIEWS = ("left", "right", "combined", "target")
_LISTED = 5  # missing files named in an error message; the rest are counted


class DatasetError(DPANetError):
    """A dataset folder that does not have the expected layout or contents."""


@dataclass(frozen=True)
class PairFiles:
    """The files of one scene. ``target`` and ``combined`` may be absent (no ground truth)."""

    name: str
    left: Path
    right: Path
    target: Path | None = None
    combined: Path | None = None


def _missing_error(root: Path, missing: list[str], what: str) -> DatasetError:
    more = f", ... and {len(missing) - _LISTED} more" if len(missing) > _LISTED else ""
    return DatasetError(f"{root}: {len(missing)} {what} missing: {', '.join(missing[:_LISTED])}{more}")


def dpdd_folders(root: Path, split: str) -> dict[str, Path]:
    return {
        "combined": root / f"{split}_c" / "source",
        "target": root / f"{split}_c" / "target",
        "left": root / f"{split}_l" / "source",
        "right": root / f"{split}_r" / "source",
    }


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in READ_SUFFIXES)


def list_dpdd(root: str | Path, split: str) -> list[PairFiles]:
    """The scenes of one DPDD split, in either naming:

    - DPDD's own: ``{split}_c/source/NAME.png``, ``{split}_l/source/NAME_L.png``,
      ``{split}_r/source/NAME_R.png``, and all-in-focus images under names of their own (the next
      frame number), paired with the sources in sorted order as DPDNet's loader pairs them;
    - renamed (the release's, and what ``dpanet synth`` and ``prepare-patches`` write): one
      ``NAME.png`` in all four folders.

    DPDD's naming is recognised by ``NAME_L`` views; every scene must have all four images."""
    root = Path(root)
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r} (use {', '.join(SPLITS)})")
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    folders = dpdd_folders(root, split)
    absent = [str(f.relative_to(root)) for f in folders.values() if not f.is_dir()]
    if absent:
        raise DatasetError(f"{root}: not the DPDD layout, missing folder(s) {', '.join(absent)}")
    sources = _images(folders["combined"])
    left_names = {p.name for p in _images(folders["left"])}
    if any(f"{p.stem}_L{p.suffix}" in left_names for p in sources):
        return _list_dpdd_own_naming(root, folders, sources)
    names = sorted({p.name for f in folders.values() for p in _images(f)})
    if not names:
        raise DatasetError(f"{root}: split {split} has no images")
    missing = [
        str((folders[view] / name).relative_to(root))
        for name in names
        for view in VIEWS
        if not (folders[view] / name).is_file()
    ]
    if missing:
        raise _missing_error(root, missing, "file(s)")
    return [
        PairFiles(
            Path(n).stem,
            folders["left"] / n,
            folders["right"] / n,
            folders["target"] / n,
            folders["combined"] / n,
        )
        for n in names
    ]


def _list_dpdd_own_naming(root: Path, folders: dict[str, Path], sources: list[Path]) -> list[PairFiles]:
    targets = _images(folders["target"])
    if len(targets) != len(sources):
        raise DatasetError(
            f"{root}: {len(sources)} source image(s) in {folders['combined'].relative_to(root)} but "
            f"{len(targets)} all-in-focus image(s) in {folders['target'].relative_to(root)} "
            "(DPDD's naming pairs them in sorted order)"
        )
    views = {
        role: [folders[role] / f"{p.stem}_{tag}{p.suffix}" for p in sources]
        for role, tag in (("left", "L"), ("right", "R"))
    }
    missing = [str(p.relative_to(root)) for paths in views.values() for p in paths if not p.is_file()]
    if missing:
        raise _missing_error(root, sorted(missing), "file(s)")
    return [
        PairFiles(s.stem, left, right, target, s)
        for s, left, right, target in zip(sources, views["left"], views["right"], targets, strict=True)
    ]


TRIPLET_TAGS = {"L": "left", "R": "right", "S": "target", "C": "combined"}


def _scan_triplets(root: Path) -> dict[str, dict[str, Path]]:
    """{NAME: {role: path}} of a folder's ``NAME_{L,R,S,C}.ext`` files."""
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    scenes: dict[str, dict[str, Path]] = {}
    for path in sorted(root.iterdir()):
        stem, _, tag = path.stem.rpartition("_")
        if path.suffix.lower() in READ_SUFFIXES and stem and tag.upper() in TRIPLET_TAGS:
            views = scenes.setdefault(stem, {})
            role = TRIPLET_TAGS[tag.upper()]
            if role in views:
                raise DatasetError(f"{root}: two {role} files for {stem}: {views[role].name}, {path.name}")
            views[role] = path
    if not scenes:
        raise DatasetError(f"{root}: no NAME_L / NAME_R image files")
    return scenes


def list_triplets(root: str | Path, require_target: bool = True) -> list[PairFiles]:
    """Scenes of a folder of ``NAME_{L,R,S,C}.ext`` files (see the module docstring)."""
    root = Path(root)
    scenes = _scan_triplets(root)
    required = ("left", "right", "target") if require_target else ("left", "right")
    tag_of = {role: tag for tag, role in TRIPLET_TAGS.items()}
    missing = [f"{stem}_{tag_of[r]}" for stem, views in scenes.items() for r in required if r not in views]
    if missing:
        raise _missing_error(root, missing, "image(s)")
    return [
        PairFiles(stem, v["left"], v["right"], v.get("target"), v.get("combined"))
        for stem, v in sorted(scenes.items())
    ]


@dataclass
class FoundPairs:
    """The pairs of a folder, and one message per incomplete one (a view without its partner)."""

    pairs: list[PairFiles] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)


def _view_key(path: Path, tag: str) -> str:
    """The scene's file name of a view: ``NAME.png`` for ``NAME_L.png`` (DPDD's own naming) or itself."""
    return f"{path.stem[: -len(tag)]}{path.suffix}" if path.stem.endswith(tag) else path.name


def _dpdd_prefixes(root: Path) -> list[str]:
    """``P`` of every ``P_l/source`` folder in ``root`` (DPDD splits: train, val, test)."""
    return sorted(f.parent.name[:-2] for f in root.glob("*_l/source") if f.is_dir())


def find_pairs(root: str | Path) -> FoundPairs:
    """Every view pair under ``root``: the DPDD layout when ``root`` has ``*_l/source`` folders
    (all splits found; names get the split as a prefix when there are several), else
    ``NAME_L``/``NAME_R`` files. Ground truth (``*_c/target``, ``NAME_S``) is attached when present."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    prefixes = _dpdd_prefixes(root)
    found = FoundPairs()
    if not prefixes:
        for stem, views in sorted(_scan_triplets(root).items()):
            if "left" in views and "right" in views:
                found.pairs.append(
                    PairFiles(stem, views["left"], views["right"], views.get("target"), views.get("combined"))
                )
            else:
                lacking = " or ".join(f"{stem}_{tag}" for tag, role in (("L", "left"), ("R", "right"))
                                      if role not in views)  # fmt: skip
                found.incomplete.append(f"{next(iter(views.values()))}: no {lacking} view")
        return found
    for prefix in prefixes:
        folders = dpdd_folders(root, prefix)
        images = {
            view: {_view_key(p, tag): p for p in folders[view].glob("*") if p.suffix.lower() in READ_SUFFIXES}
            for view, tag in (("left", "_L"), ("right", "_R"))
            if folders[view].is_dir()
        }
        left, right = images.get("left", {}), images.get("right", {})
        for name in sorted(left.keys() | right.keys()):
            label = f"{prefix}_{Path(name).stem}" if len(prefixes) > 1 else Path(name).stem
            if name not in left or name not in right:
                have, lack = (left, folders["right"]) if name in left else (right, folders["left"])
                found.incomplete.append(f"{have[name]}: no partner in {lack}")
                continue
            target, combined = folders["target"] / name, folders["combined"] / name
            found.pairs.append(
                PairFiles(
                    label,
                    left[name],
                    right[name],
                    target if target.is_file() else None,
                    combined if combined.is_file() else None,
                )
            )
    return found
