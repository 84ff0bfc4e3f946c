"""What an exported DPANet ONNX model declares about itself (torch- and onnx-free; docs/export.md)."""

from __future__ import annotations

import json
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


def model_info_from_metadata(metadata: dict[str, str], label: str) -> ModelInfo:
    """The model's ``dpanet.*`` metadata (e.g. ONNX Runtime's ``custom_metadata_map``)."""
    props = {k.removeprefix(METADATA_PREFIX): v for k, v in metadata.items() if k.startswith(METADATA_PREFIX)}
    missing = {"config", "channel_order", "flavor", "precision"} - set(props)
    if missing:
        raise DPANetError(f"{label}: not exported by dpanet (metadata {', '.join(sorted(missing))} missing)")
    return ModelInfo(
        config=json.loads(props["config"]),
        channel_order=props["channel_order"],
        flavor=props["flavor"],
        precision=props["precision"],
        size=props.get("size", "dynamic"),
        checkpoint_sha256=props.get("checkpoint_sha256", ""),
        version=props.get("version", ""),
        int8={k.removeprefix(INT8_PREFIX): v for k, v in props.items() if k.startswith(INT8_PREFIX)},
    )


def plugins_run_in_float16(metadata: dict[str, str]) -> bool:
    """Whether a model's ``dpanet.*`` metadata (prefix removed) describes a plugin-flavour graph
    whose plugin nodes are float16: an fp16 export, or an int8 file for TensorRT (fp16 elsewhere)."""
    if metadata.get("flavor") != "plugin":
        return False
    precision = metadata.get("precision")
    return precision == "fp16" or (precision == "int8" and metadata.get(f"{INT8_PREFIX}target") == "tensorrt")
