"""DPANet (Li et al., "Learning Dual-Pixel Alignment for Defocus Deblurring"), as released.

``DPANet()`` is the released architecture (63,983,859 parameters) and loads the authors' weights
through :mod:`dpanet.training.checkpoint`. The paper's ablations and the decoder without the
release's first-block upsampling are configurations (:mod:`dpanet.training.config`). docs/model.md
describes the network and every variant.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dpanet.contract import SIZE_MULTIPLE
from dpanet.training.blocks import (
    CostEmbedding,
    CostVolume,
    FeatureBlock,
    OffsetPredictor,
    PerView,
    PyramidExtractor,
    SameConv2d,
    alignment_conv,
    match_size,
)
from dpanet.training.config import VARIANTS, DPANetConfig, variant_config

__all__ = ["VARIANTS", "DPANet", "DPANetConfig", "count_parameters", "variant_config"]


class EncoderLevel(nn.Module):
    """One encoder level: (pool), shared feature block F, and the encoder alignment module (EAM)."""

    def __init__(self, in_channels: int, channels: int, config: DPANetConfig, pool: bool) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2) if pool else None
        shared = config.shared_encoder
        self.features = PerView(lambda: FeatureBlock(in_channels, channels), shared)
        self.offset_source = config.offset_source if config.eam else None
        if config.eam:
            cost_channels = (2 * config.max_displacement + 1) ** 2
            if config.uses_cost_volume:
                self.cost_embed = CostEmbedding(cost_channels, channels)
            predictor_in = {"features+cost": 3 * channels, "features": 2 * channels, "cost": channels}
            self.offset_left = OffsetPredictor(predictor_in[config.offset_source])
            self.offset_right = OffsetPredictor(predictor_in[config.offset_source])
        self.align = PerView(lambda: alignment_conv(channels, config.eam), shared)

    def _predictor_input(self, left: Tensor, right: Tensor, cost: Tensor | None) -> Tensor:
        if self.offset_source == "features":
            return torch.cat((left, right), 1)
        embedded = self.cost_embed(cost)
        if self.offset_source == "cost":
            return embedded
        return torch.cat((left, right, embedded), 1)

    def forward(self, left: Tensor, right: Tensor, cost: Tensor | None) -> tuple[Tensor, Tensor]:
        if self.pool is not None:
            left, right = self.pool(left), self.pool(right)
            cost = self.pool(cost) if cost is not None else None
        left = self.features.left(left)
        right = self.features.right(right)
        if self.offset_source is None:
            return self.align.left(left), self.align.right(right)
        context = self._predictor_input(left, right, cost)
        aligned_left = self.align.left(left, *self.offset_left(context))
        aligned_right = self.align.right(right, *self.offset_right(context))
        return aligned_left, aligned_right


class DecoderBlock(nn.Module):
    """One decoder block: upsample + same-conv2x2, the decoder alignment module (DAM), fusion F."""

    def __init__(self, in_channels: int, dam: bool, upsample: bool) -> None:
        super().__init__()
        channels = in_channels // 2
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest") if upsample else None
        self.reduce = SameConv2d(in_channels, channels, 2)
        self.dam = dam
        if dam:
            self.offset_left = OffsetPredictor(3 * channels)
            self.offset_right = OffsetPredictor(3 * channels)
        self.align_left = alignment_conv(channels, dam)
        self.align_right = alignment_conv(channels, dam)
        self.fuse = FeatureBlock(3 * channels, channels)

    def forward(self, x: Tensor, skip_left: Tensor, skip_right: Tensor) -> Tensor:
        if self.upsample is not None:
            x = self.upsample(x)
        x = match_size(self.reduce(x), skip_left)
        if self.dam:
            left = self.align_left(skip_left, *self.offset_left(torch.cat((skip_left, skip_right, x), 1)))
            # the right view's offsets see the already aligned left view (as released)
            right = self.align_right(skip_right, *self.offset_right(torch.cat((left, skip_right, x), 1)))
        else:
            left, right = self.align_left(skip_left), self.align_right(skip_right)
        return self.fuse(torch.cat((left, right, x), 1))


class Head(nn.Sequential):
    """same-conv3x3, ReLU, same-conv3x3 to the output channels, sigmoid."""

    def __init__(self, channels: int, out_channels: int) -> None:
        super().__init__(
            SameConv2d(channels, channels, 3),
            nn.ReLU(),
            SameConv2d(channels, out_channels, 3),
            nn.Sigmoid(),
        )


class DPANet(nn.Module):
    """Dual-pixel alignment network: (left, right) views in [0, 1] -> deblurred image in [0, 1].

    Inputs are N x C x H x W with H and W multiples of 8, in the channel order the weights were
    trained with (the release: BGR).
    """

    def __init__(self, config: DPANetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or DPANetConfig()
        w = config.width
        widths = [w, 2 * w, 4 * w, 8 * w]
        if config.pyramid_extractor:
            self.extractor = PerView(lambda: PyramidExtractor(config.in_channels, w), config.shared_encoder)
            first_in = w
        else:
            self.extractor = None
            first_in = config.in_channels
        self.cost_volume = CostVolume(config.max_displacement) if config.uses_cost_volume else None
        self.encoder = nn.ModuleList(
            EncoderLevel(cin, c, config, pool=i > 0)
            for i, (cin, c) in enumerate(zip([first_in] + widths[:-1], widths, strict=True))
        )
        self.bottleneck = PerView(lambda: FeatureBlock(widths[-1], widths[-1]), config.shared_encoder)
        self.decoder = nn.ModuleList(
            DecoderBlock(2 * c, config.dam, upsample=i > 0 or config.first_decoder_upsample)
            for i, c in enumerate(reversed(widths))
        )
        self.head = Head(w, config.out_channels)

    def forward(self, left: Tensor, right: Tensor) -> Tensor:
        check_input_pair(left, right, self.config.in_channels)
        if self.extractor is not None:
            left, right = self.extractor.left(left), self.extractor.right(right)
        cost = self.cost_volume(left, right) if self.cost_volume is not None else None
        skips = []
        for i, level in enumerate(self.encoder):
            left, right = level(left, right, cost)
            skips.append((left, right))
            last = i == len(self.encoder) - 1
            cost = self.cost_volume(left, right) if self.cost_volume is not None and not last else None
        x = torch.cat((self.bottleneck.left(left), self.bottleneck.right(right)), 1)
        for block, (skip_left, skip_right) in zip(self.decoder, reversed(skips), strict=True):
            x = block(x, skip_left, skip_right)
        return self.head(x)


def check_input_pair(left: Tensor, right: Tensor, channels: int) -> None:
    """Same shape, the configured channels, and H, W multiples of 8 (three 2x poolings)."""
    if left.shape != right.shape:
        raise ValueError(f"left {tuple(left.shape)} and right {tuple(right.shape)} views differ in shape")
    if left.dim() != 4 or left.shape[1] != channels:
        raise ValueError(f"expected N x {channels} x H x W views, got {tuple(left.shape)}")
    h, w = left.shape[2:]
    if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE or h == 0 or w == 0:
        raise ValueError(f"height and width must be positive multiples of {SIZE_MULTIPLE}, got {h}x{w}")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
