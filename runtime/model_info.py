"""What an exported DPANet ONNX model declares about itself (torch- and onnx-free; docs/export.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from dpanet.errors import DPANetError

INPUT_NAMES = ("left", "right")
OUTPUT_NAME = "output"
METADATA_PREFIX = "dpanet."
INT8_PREFIX = "int8."  # after METADATA_PREFIX: dpanet.int8.target etc. (written by dpanet calibrate)


@dataclass(frozen=True)
class ModelInfo:
    config: dict
    channel_order: str
    flavor: str
    precision: str
    size: str  # "dynamic" or "HxW"
    checkpoint_sha256: str
    version: str
    int8: dict[str, str] = field(default_factory=dict)  # target, method, count, ... (docs/int8.md)

    @property
    def input_channels(self) -> int:
        """Channels of ``left`` and ``right`` (the configuration's ``in_channels``, DPANet's 3 if absent)."""
        return self.config.get("in_channels", 3)

    @property
    def output_channels(self) -> int:
        return self.config.get("out_channels", 3)


def model_info_from_metadata(metadata: dict[str, str], label: str) -> ModelInfo:
    """The model's ``dpanet.*`` metadata (e.g. ONNX Runtime's ``custom_metadata_map``)."""
    props = {k.removeprefix(METADATA_PREFIX): v for k, v in metadata.items() if k.startswith(METADATA_PREFIX)}
    missing = {"config", "channel_order", "flavor", "precision"} - set(props)
    if missing:
        raise DPANetError(f"{label}: not exported by dpanet (metadata {', '.join(sorted(missing))} missing)")
    try:
        config = json.loads(props["config"])
    except json.JSONDecodeError as exc:
        raise DPANetError(f"{label}: metadata {METADATA_PREFIX}config is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise DPANetError(f"{label}: metadata {METADATA_PREFIX}config is not a JSON object")
    return ModelInfo(
        config=config,
        channel_order=props["channel_order"],
        flavor=props["flavor"],
        precision=props["precision"],
        size=props.get("size", "dynamic"),
        checkpoint_sha256=props.get("checkpoint_sha256", ""),
        version=props.get("version", ""),
        int8={k.removeprefix(INT8_PREFIX): v for k, v in props.items() if k.startswith(INT8_PREFIX)},
    )


Port = tuple[str, Sequence[int | str | None]]
"""A model input or output: its name and shape (a dimension is a number, or a name or None if free)."""


def check_interface(inputs: Sequence[Port], outputs: Sequence[Port], info: ModelInfo, label: str) -> None:
    """Refuse a model whose inputs and outputs are not DPANet's (names, N x C x H x W, channel counts
    of its ``dpanet.config``): metadata alone does not make a graph DPANet. Backend-neutral, so every
    backend checks the same interface before running."""
    names = [name for name, _ in inputs]
    if sorted(names) != sorted(INPUT_NAMES):
        raise DPANetError(
            f"{label}: inputs are {', '.join(names) or 'none'}; a DPANet model has {', '.join(INPUT_NAMES)}"
        )
    out_names = [name for name, _ in outputs]
    if out_names != [OUTPUT_NAME]:
        raise DPANetError(
            f"{label}: outputs are {', '.join(out_names) or 'none'}; a DPANet model has {OUTPUT_NAME}"
        )
    channels = {"input": info.input_channels, "output": info.output_channels}
    for role, ports in (("input", inputs), ("output", outputs)):
        for name, shape in ports:
            if len(shape) != 4:
                raise DPANetError(f"{label}: {role} {name} has rank {len(shape)}; DPANet's are N x C x H x W")
            if isinstance(shape[1], int) and shape[1] != channels[role]:
                raise DPANetError(
                    f"{label}: {role} {name} has {shape[1]} channel(s), its metadata says {channels[role]}"
                )


def plugins_run_in_float16(metadata: dict[str, str]) -> bool:
    """Whether a model's ``dpanet.*`` metadata (prefix removed) describes a plugin-flavour graph
    whose plugin nodes are float16: an fp16 export, or an int8 file for TensorRT (fp16 elsewhere)."""
    if metadata.get("flavor") != "plugin":
        return False
    precision = metadata.get("precision")
    return precision == "fp16" or (precision == "int8" and metadata.get(f"{INT8_PREFIX}target") == "tensorrt")
