"""Random weights that make a small DPANet do something visible: O(1) activations, small
residual branches, offsets of a pixel or two, and an output spread over the sigmoid's range.
(A freshly initialised network outputs nearly a constant, which would make comparisons weak.)"""

from __future__ import annotations

import torch

from dpanet.training.blocks import OffsetPredictor, ResidualBlock
from dpanet.training.config import DPANetConfig
from dpanet.training.model import DPANet


def lively_model(config: DPANetConfig, seed: int = 0) -> DPANet:
    g = torch.Generator().manual_seed(seed)
    model = DPANet(config)
    gains = {}
    for module in model.modules():
        if isinstance(module, ResidualBlock):
            gains[module.conv2.weight] = 0.3
        elif isinstance(module, OffsetPredictor):
            gains[module.conv.weight] = 1.5
    for conv in (model.head[0], model.head[2]):
        gains[conv.weight] = 3.0
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * gains.get(p, 2**0.5) / fan_in**0.5)
    return model.eval()
