"""Parameter and multiply-accumulate counts of a DPANet configuration.

MACs are counted per layer with forward hooks while the model runs on the ``meta`` device (no
memory, no arithmetic), so any size is instant. Three kinds of layers are counted:

- ``conv``: plain ``nn.Conv2d`` layers (residual blocks, offset predictors, pyramid convs);
- ``same_conv``: the release's same-padding convolutions (:class:`SameConv2d`: feature-block
  inputs, cost embeddings, decoder 2x2 convs, head);
- ``deform_conv``: the modulated deformable convolutions.

The paper's "213.77G FLOPs" is the ``conv`` figure alone (a counter that only knows
``nn.Conv2d``); the total is what the network computes. Correlation, pooling, interpolation,
sampling and activations are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dpanet.training.blocks import SameConv2d
from dpanet.training.model import DPANet, DPANetConfig, count_parameters
from dpanet.training.ops import ModulatedDeformConv2d


@dataclass(frozen=True)
class Complexity:
    parameters: int
    height: int
    width: int
    conv_macs: int
    same_conv_macs: int
    deform_conv_macs: int

    @property
    def total_macs(self) -> int:
        return self.conv_macs + self.same_conv_macs + self.deform_conv_macs


def _kind(module: nn.Module) -> str | None:
    if type(module) is nn.Conv2d:
        return "conv"
    if isinstance(module, SameConv2d):
        return "same_conv"
    if isinstance(module, ModulatedDeformConv2d):
        return "deform_conv"
    return None


def measure(config: DPANetConfig, height: int, width: int) -> Complexity:
    """Parameters and per-image MACs of ``config`` at ``height`` x ``width``."""
    with torch.device("meta"):
        model = DPANet(config)
    totals = {"conv": 0, "same_conv": 0, "deform_conv": 0}

    def hook(module: nn.Module, inputs, output) -> None:
        per_output = module.weight[0].numel()  # C_in / groups * KH * KW
        totals[_kind(module)] += per_output * output[0].numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if _kind(m) is not None]
    views = torch.empty(1, config.in_channels, height, width, device="meta")
    with torch.no_grad():
        model(views, views)
    for handle in handles:
        handle.remove()
    return Complexity(
        parameters=count_parameters(model),
        height=height,
        width=width,
        conv_macs=totals["conv"],
        same_conv_macs=totals["same_conv"],
        deform_conv_macs=totals["deform_conv"],
    )


def format_report(name: str, c: Complexity) -> str:
    g = 1e9
    lines = [
        f"variant            {name}",
        f"parameters         {c.parameters:,} ({c.parameters / 1e6:.2f} M)",
        f"input              {c.height}x{c.width}",
        f"MACs, all layers   {c.total_macs / g:.2f} G",
        f"  standard convs   {(c.conv_macs + c.same_conv_macs) / g:.2f} G",
        f"  deformable convs {c.deform_conv_macs / g:.2f} G",
        f"MACs, nn.Conv2d only (the paper's counter) {c.conv_macs / g:.2f} G",
        "(correlation, pooling, sampling and activations are not counted)",
    ]
    return "\n".join(lines)
