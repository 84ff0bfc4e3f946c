"""DPANet's configuration and its named variants (torch-free, so the CLI and runtime can read it)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

OffsetSource = Literal["features+cost", "features", "cost"]


@dataclass(frozen=True)
class DPANetConfig:
    """Everything that shapes the network. The defaults are the released model."""

    width: int = 64
    """Channels of the first level; levels 2-4 use 2x, 4x and 8x."""
    max_displacement: int = 4
    """Correlation range d: (2d + 1)^2 cost channels (the release: 4, 81 channels)."""
    in_channels: int = 3
    out_channels: int = 3
    shared_encoder: bool = True
    """Paper Table III #1 when False: every encoder module has one copy per view."""
    pyramid_extractor: bool = True
    """Paper Table III #2 when False: the encoder starts from the input views."""
    eam: bool = True
    """Paper Table IV #5 when False: encoder DCNs become plain convs, no cost volumes."""
    dam: bool = True
    """Paper Table IV #8 when False: decoder DCNs become plain convs."""
    offset_source: OffsetSource = "features+cost"
    """EAM offsets from cat[left, right, cost] (release), cat[left, right] (#6) or cost only (#7)."""
    first_decoder_upsample: bool = True
    """The release's quirk: the first decoder block upsamples 1/8 -> 1/4 and crops back to 1/8."""

    def __post_init__(self) -> None:
        if self.width < 1 or self.max_displacement < 0 or self.in_channels < 1 or self.out_channels < 1:
            raise ValueError(f"invalid DPANet configuration: {self}")
        if self.offset_source not in ("features+cost", "features", "cost"):
            raise ValueError(
                f"offset_source must be features+cost, features or cost, got {self.offset_source!r}"
            )

    @property
    def uses_cost_volume(self) -> bool:
        return self.eam and self.offset_source != "features"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DPANetConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown DPANet configuration keys: {', '.join(unknown)}")
        return cls(**data)


VARIANTS: dict[str, dict] = {
    "dpanet": {},
    "unshared-encoder": {"shared_encoder": False},
    "no-pyramid": {"pyramid_extractor": False},
    "no-eam": {"eam": False},
    "no-cost-volume": {"offset_source": "features"},
    "offsets-from-cost": {"offset_source": "cost"},
    "no-dam": {"dam": False},
    "baseline": {"eam": False, "dam": False},
    "paper-decoder": {"first_decoder_upsample": False},
}
"""Named configurations: the release, the paper's ablations (Tables III and IV) and the paper's
decoder. Combine with a width, e.g. ``variant_config("baseline", width=16)``."""


def variant_config(name: str, **overrides) -> DPANetConfig:
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
    return DPANetConfig(**{**VARIANTS[name], **overrides})
