"""DPANet's building blocks, named after what the paper and docs/model.md call them."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dpanet.training.ops import ModulatedDeformConv2d, correlation

LEAKY_SLOPE = 0.1


def lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, LEAKY_SLOPE)


class SameConv2d(nn.Conv2d):
    """Convolution whose output has the input's size, padded the way the release pads it.

    Odd kernels pad (k - 1) / 2 on every side. Even kernels pad TensorFlow-style: the extra row and
    column of zeros go to the bottom and right only. The release implements these convolutions as
    a class of its own, which is why the paper's FLOP counter (nn.Conv2d only) skipped them; see
    :mod:`dpanet.training.complexity`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        symmetric = kernel_size % 2 == 1
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2 if symmetric else 0)
        total = kernel_size - 1
        # F.pad order: left, right, top, bottom; None when the convolution pads symmetrically itself
        self.pad = None if symmetric else (total // 2, total - total // 2, total // 2, total - total // 2)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x if self.pad is None else F.pad(x, self.pad))


class ResidualBlock(nn.Module):
    """x + conv3x3(ReLU(conv3x3(x))), with biases and no normalisation."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class FeatureBlock(nn.Module):
    """The paper's feature extractor / fusion block F(in, out): same-conv3x3, ReLU, two RBs."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = SameConv2d(in_channels, out_channels, 3)
        self.rb1 = ResidualBlock(out_channels)
        self.rb2 = ResidualBlock(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.rb2(self.rb1(F.relu(self.conv(x))))


def upsample2_bilinear(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class PyramidExtractor(nn.Module):
    """The initial feature extractor F_E^0: a three-level pyramid with eight residual blocks."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.down2 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        self.down3 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        self.rb_l3 = ResidualBlock(channels)
        self.rb_l2_skip = ResidualBlock(channels)
        self.rb_l2_up = ResidualBlock(channels)
        self.rb_l1_skip = nn.Sequential(ResidualBlock(channels), ResidualBlock(channels))
        self.rb_out = nn.Sequential(*(ResidualBlock(channels) for _ in range(3)))

    def forward(self, x: Tensor) -> Tensor:
        l1 = lrelu(self.conv_in(x))
        l2 = lrelu(self.down2(l1))
        l3 = lrelu(self.down3(l2))
        l2 = self.rb_l2_skip(l2) + upsample2_bilinear(self.rb_l3(l3))
        l1 = self.rb_l1_skip(l1) + upsample2_bilinear(self.rb_l2_up(l2))
        return self.rb_out(l1)


class PerView(nn.ModuleList):
    """A module applied to both views: one shared instance, or one per view (index 0 left, -1 right)."""

    def __init__(self, make: Callable[[], nn.Module], shared: bool) -> None:
        super().__init__([make()] if shared else [make(), make()])

    @property
    def left(self) -> nn.Module:
        return self[0]

    @property
    def right(self) -> nn.Module:
        return self[-1]


class CostVolume(nn.Module):
    """LeakyReLU(0.1) of the correlation between left and right features."""

    def __init__(self, max_displacement: int) -> None:
        super().__init__()
        self.max_displacement = max_displacement

    @property
    def channels(self) -> int:
        return (2 * self.max_displacement + 1) ** 2

    def forward(self, left: Tensor, right: Tensor) -> Tensor:
        return lrelu(correlation(left, right, self.max_displacement))

    def extra_repr(self) -> str:
        return f"max_displacement={self.max_displacement}"


class CostEmbedding(nn.Sequential):
    """v = ReLU(conv1x1(ReLU(conv1x1(cost)))): the cost volume brought to the level's width."""

    def __init__(self, cost_channels: int, channels: int) -> None:
        super().__init__(
            SameConv2d(cost_channels, channels, 1),
            nn.ReLU(),
            SameConv2d(channels, channels, 1),
            nn.ReLU(),
        )


class OffsetPredictor(nn.Module):
    """conv3x3 -> (offset, mask) for a 3x3 DCN; zero-initialised: offsets 0, masks sigmoid(0) = 0.5."""

    def __init__(self, in_channels: int, taps: int = 9) -> None:
        super().__init__()
        self.taps = taps
        self.conv = nn.Conv2d(in_channels, 3 * taps, 3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raw = self.conv(x)
        offset = raw[:, : 2 * self.taps]  # concat(o1, o2) of the three chunks (o1, o2, m)
        mask = torch.sigmoid(raw[:, 2 * self.taps :])
        return offset, mask


def alignment_conv(channels: int, deformable: bool) -> nn.Module:
    """The 3x3 DCN of an alignment module, or the plain conv of the same shape that replaces it
    when the module is ablated."""
    if deformable:
        return ModulatedDeformConv2d(channels, channels, 3, padding=1)
    return nn.Conv2d(channels, channels, 3, padding=1)


def match_size(x: Tensor, reference: Tensor) -> Tensor:
    """Pad (or, for negative amounts, crop) ``x`` to ``reference``'s height and width the way the
    release does: ``d // 2`` before and the rest after, ``d`` being the size difference."""
    dy = reference.shape[2] - x.shape[2]
    dx = reference.shape[3] - x.shape[3]
    if dx == 0 and dy == 0:
        return x
    top, bottom = _split(dy)
    left, right = _split(dx)
    return F.pad(x, (left, right, top, bottom))


def _split(d: int) -> tuple[int, int]:
    """``(d // 2, d - d // 2)`` using floor divisions of non-negative numbers only: the ONNX exporter
    turns ``//`` of symbolic sizes into a truncating ``Div``, which differs for negative ``d``."""
    if d >= 0:
        return d // 2, d - d // 2
    before = -((1 - d) // 2)
    return before, d - before
