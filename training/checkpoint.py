"""Checkpoints: our format, and import of the authors' released weights (``final.pth``).

Our format is a ``torch.save`` of a plain dict (loadable with ``weights_only=True``)::

    {"format": "dpanet-checkpoint", "version": 1,
     "config": DPANetConfig.to_dict(), "channel_order": "BGR" | "RGB",
     "state_dict": {...}, "metadata": {...}}

so that loading needs nothing but the file: the configuration rebuilds the network and the channel
order tells the caller how to feed it. The release saved ``{"G_state_dict": {"module.<key>": ...}}``
(DataParallel prefix); :func:`convert_official` maps its names to ours and checks every key and
shape. docs/checkpoints.md lists the mapping.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from dpanet.contract import CHANNEL_ORDERS
from dpanet.errors import DPANetError
from dpanet.files import check_not_input, check_writable_folder, write_bytes_atomic
from dpanet.training.model import DPANet, DPANetConfig

FORMAT = "dpanet-checkpoint"
VERSION = 1
RELEASE_CHANNEL_ORDER = "BGR"  # the release reads images with OpenCV


class CheckpointError(DPANetError):
    """A checkpoint that cannot be read or does not fit the network."""


def _module_table() -> dict[str, str]:
    """Release module name (without ``module.``) -> ours, for every module with weights."""
    table = {
        "predeblur.conv_first": "extractor.0.conv_in",
        "predeblur.deblur_L2_conv": "extractor.0.down2",
        "predeblur.deblur_L3_conv": "extractor.0.down3",
        "predeblur.RB_L3_1": "extractor.0.rb_l3",
        "predeblur.RB_L2_1": "extractor.0.rb_l2_skip",
        "predeblur.RB_L2_2": "extractor.0.rb_l2_up",
        "predeblur.RB_L1_1": "extractor.0.rb_l1_skip.0",
        "predeblur.RB_L1_2": "extractor.0.rb_l1_skip.1",
        "predeblur.RB_L1_3": "extractor.0.rb_out.0",
        "predeblur.RB_L1_4": "extractor.0.rb_out.1",
        "predeblur.RB_L1_5": "extractor.0.rb_out.2",
        "encoder_5.block.conv_block.0": "bottleneck.0.conv",
        "encoder_5.block.RB_1": "bottleneck.0.rb1",
        "encoder_5.block.RB_2": "bottleneck.0.rb2",
        "out.0": "head.0",
        "out.2": "head.2",
    }
    for n in range(1, 5):
        enc, level = f"encoder.encoder{n}", f"encoder.{n - 1}"
        table[f"{enc}.block.block.conv_block.0"] = f"{level}.features.0.conv"
        table[f"{enc}.block.block.RB_1"] = f"{level}.features.0.rb1"
        table[f"{enc}.block.block.RB_2"] = f"{level}.features.0.rb2"
        table[f"{enc}.offset_l.offset_conv"] = f"{level}.offset_left.conv"
        table[f"{enc}.offset_r.offset_conv"] = f"{level}.offset_right.conv"
        table[f"{enc}.flow_conv.0"] = f"{level}.cost_embed.0"
        table[f"{enc}.flow_conv.2"] = f"{level}.cost_embed.2"
        table[f"{enc}.deform"] = f"{level}.align.0"
        up, block = f"up{n}", f"decoder.{4 - n}"  # up4 is the first decoder block
        table[f"{up}.upsample.up.1"] = f"{block}.reduce"
        table[f"{up}.offset_l"] = f"{block}.offset_left.conv"
        table[f"{up}.offset_r"] = f"{block}.offset_right.conv"
        table[f"{up}.deform_l"] = f"{block}.align_left"
        table[f"{up}.deform_r"] = f"{block}.align_right"
        table[f"{up}.cv.conv_block.0"] = f"{block}.fuse.conv"
        table[f"{up}.cv.RB_1"] = f"{block}.fuse.rb1"
        table[f"{up}.cv.RB_2"] = f"{block}.fuse.rb2"
    return table


_OFFICIAL_TO_OURS = _module_table()
_OURS_TO_OFFICIAL = {ours: official for official, ours in _OFFICIAL_TO_OURS.items()}


def _rename(key: str, table: Mapping[str, str]) -> str | None:
    """Rename ``key`` by the longest module prefix in ``table``; None if no prefix matches."""
    parts = key.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in table:
            return ".".join([table[prefix], *parts[cut:]])
    return None


def official_to_ours(key: str) -> str | None:
    """Our name for a key of the release (without ``module.``), or None if it is not one."""
    return _rename(key, _OFFICIAL_TO_OURS)


def ours_to_official(key: str) -> str:
    """The release's name for one of our keys of the default network (ours if it has none)."""
    return _rename(key, _OURS_TO_OFFICIAL) or key


def _release_state_dict(obj: object) -> Mapping[str, Tensor]:
    """The tensors of a release checkpoint or a plain state dict, without the DataParallel prefix."""
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        raise CheckpointError("already converted: this is a DPANet checkpoint of this project (use it as is)")
    if isinstance(obj, Mapping) and "G_state_dict" in obj:
        obj = obj["G_state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError("not a state dict: expected {'G_state_dict': {...}} or a mapping of tensors")
    out = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise CheckpointError(f"not a state dict: entry {key!r} is a {type(value).__name__}")
        out[key.removeprefix("module.")] = value
    return out


_LISTED = 12  # keys named per category in an error message; the rest are counted


def _listed(items: list[str]) -> str:
    more = f", ... and {len(items) - _LISTED} more" if len(items) > _LISTED else ""
    return ", ".join(items[:_LISTED]) + more


def _check_finite(state: Mapping[str, Tensor], name=lambda key: key) -> None:
    """Refuse NaN or Inf weights (they give an all-black image), naming the tensors (by ``name``)."""
    bad = [name(k) for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"non-finite weights (NaN or Inf) in {len(bad)} tensor(s): {_listed(bad)}")


def _mismatch_report(missing, unexpected, mismatched) -> str:
    parts = []
    for label, items in (
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("mismatched shapes", mismatched),
    ):
        if items:
            parts.append(f"{label} ({len(items)}): {_listed(items)}")
    return "; ".join(parts)


def convert_state_dict(release: object) -> dict[str, Tensor]:
    """Map the release's weights (``{"G_state_dict": ...}`` or a plain state dict, with or without
    ``module.``) to our names; raise :class:`CheckpointError` listing missing, unexpected and
    mismatched keys (in the release's names)."""
    official = _release_state_dict(release)
    with torch.device("meta"):
        model = DPANet(DPANetConfig())
    expected = model.state_dict()
    source_name = {}
    converted: dict[str, Tensor] = {}
    unexpected = []
    for key, value in official.items():
        ours = official_to_ours(key)
        if ours is None or ours not in expected:
            unexpected.append(key)
            continue
        source_name[ours] = key
        converted[ours] = value
    mismatched = [
        f"{source_name[k]} {tuple(v.shape)} (expected {tuple(expected[k].shape)})"
        for k, v in converted.items()
        if v.shape != expected[k].shape
    ]
    missing = [ours_to_official(k) for k in expected if k not in converted]
    if missing or unexpected or mismatched:
        raise CheckpointError(
            "checkpoint does not match the released DPANet: "
            + _mismatch_report(missing, unexpected, mismatched)
        )
    _check_finite(converted, lambda key: source_name[key])
    return {k: v.detach().to(torch.float32).contiguous() for k, v in converted.items()}


_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's archive
_PICKLE_MAGIC = b"\x80"  # torch.save's legacy format starts with a pickle protocol opcode


def load_weights_only(path: Path) -> object:
    """``torch.load`` with ``weights_only=True`` (a file's code is never run), one-line errors."""
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(len(_ZIP_MAGIC))
    if not head:
        raise CheckpointError(f"{path}: file is empty")
    if not head.startswith((_ZIP_MAGIC, _PICKLE_MAGIC)):
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither a torch.save archive nor a pickle)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        if isinstance(exc, pickle.UnpicklingError) and str(exc).startswith("Weights only load failed"):
            raise CheckpointError(  # without torch's advice to load unsafely: the CLI never does
                f"{path}: holds Python objects besides tensors and plain values: not a checkpoint "
                "this tool accepts (it never runs code from a file)"
            ) from None
        raise CheckpointError(f"{path}: damaged or not a PyTorch checkpoint ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    path: str | os.PathLike,
    model: DPANet,
    channel_order: str,
    metadata: Mapping[str, object] | None = None,
) -> None:
    """Write our format atomically: a temporary file in the target folder, renamed when complete."""
    write_checkpoint(path, model.config, model.state_dict(), channel_order, metadata)


def write_checkpoint(
    path: str | os.PathLike,
    config: DPANetConfig,
    state_dict: Mapping[str, Tensor],
    channel_order: str,
    metadata: Mapping[str, object] | None = None,
) -> None:
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": config.to_dict(),
        "channel_order": channel_order,
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "metadata": dict(metadata or {}),
    }
    atomic_torch_save(payload, Path(path))


def atomic_torch_save(payload: object, path: Path) -> None:
    """``torch.save`` through :func:`dpanet.files.write_bytes_atomic` (serialised in memory first,
    so that a failed write, such as a full disk, is an OSError the policy reports in one line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes_atomic(path, buffer.getvalue())


class LoadedCheckpoint:
    """A network rebuilt from our format, with what the file says about feeding it."""

    def __init__(self, model: DPANet, channel_order: str, metadata: dict, sha256: str) -> None:
        self.model = model
        self.channel_order = channel_order
        self.metadata = metadata
        self.sha256 = sha256

    @property
    def config(self) -> DPANetConfig:
        return self.model.config


def load_checkpoint(path: str | os.PathLike) -> LoadedCheckpoint:
    """Load our format (weights only) into a fresh DPANet in eval mode."""
    path = Path(path)
    payload = load_weights_only(path)
    if not isinstance(payload, Mapping) or payload.get("format") != FORMAT:
        hint = (
            " (a release checkpoint? convert it with `dpanet convert-official`)"
            if isinstance(payload, Mapping)
            and ("G_state_dict" in payload or any(str(k).startswith("module.") for k in payload))
            else ""
        )
        raise CheckpointError(f"{path}: not a DPANet checkpoint of this project{hint}")
    if payload.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {payload.get('version')} is not supported (need {VERSION})"
        )
    try:
        config = DPANetConfig.from_dict(dict(payload["config"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: invalid model configuration ({exc})") from exc
    channel_order = payload.get("channel_order")
    if channel_order not in CHANNEL_ORDERS:
        raise CheckpointError(f"{path}: channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
    with torch.device("meta"):  # no random initialisation: every weight comes from the file
        model = DPANet(config)
    state = payload.get("state_dict")
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: no state_dict")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            kind = type(value).__name__
            raise CheckpointError(f"{path}: state_dict entry {key!r} is of type {kind}, not a tensor")
    metadata = payload.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise CheckpointError(f"{path}: metadata is of type {type(metadata).__name__}, not a table")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"{path}: weights do not fit its configuration: "
            + _mismatch_report(missing, unexpected, mismatched)
        )
    try:
        _check_finite(state)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True, assign=True)
    model.eval()
    return LoadedCheckpoint(model, channel_order, dict(metadata), file_sha256(path))


def convert_official(source: str | os.PathLike, destination: str | os.PathLike) -> LoadedCheckpoint:
    """Convert the release's ``final.pth`` (or a plain state dict of it) to our format."""
    source, destination = Path(source), Path(destination)
    check_not_input(destination, source)
    check_writable_folder(destination)
    release = load_weights_only(source)
    try:
        state = convert_state_dict(release)
    except CheckpointError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
    write_checkpoint(
        destination,
        DPANetConfig(),
        state,
        RELEASE_CHANNEL_ORDER,
        {
            "source": "official DPANet release",
            "source_file": source.name,
            "source_sha256": file_sha256(source),
        },
    )
    return load_checkpoint(destination)


DEMO_CHECKPOINT = Path(__file__).parent / "assets" / "dpanet-demo.pt"


def default_checkpoint_path() -> Path:
    """The bundled demo model (a width-reduced DPANet trained on synthetic DP data)."""
    if not DEMO_CHECKPOINT.is_file():
        raise CheckpointError(
            f"no --checkpoint given and the bundled demo model is missing ({DEMO_CHECKPOINT})"
        )
    return DEMO_CHECKPOINT
