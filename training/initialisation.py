"""Weight initialisation schemes for training from scratch.

- ``pytorch``: the layers' own defaults (what ``DPANet()`` builds).
- ``he``: He et al.'s normal initialisation (fan-in, ReLU gain) for every convolution and
  deformable convolution, zero biases; the paper says DPANet is initialised this way.

Either way the offset predictors keep their zero initialisation (offsets 0, masks 0.5: the
paper's). ``zero_init_residual`` zeroes the second convolution of every residual block, so each
block starts as the identity (as torchvision's ResNets offer): without normalisation layers, the
network's long chains of residual blocks otherwise shrink or blow up the signal at the start.
"""

from __future__ import annotations

from dpanet.training.blocks import OffsetPredictor, ResidualBlock
from dpanet.training.ops import ModulatedDeformConv2d
from torch import nn

SCHEMES = ("pytorch", "he")


def initialise(model: nn.Module, scheme: str = "pytorch", zero_init_residual: bool = False) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"init must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    keep = {id(m.conv) for m in model.modules() if isinstance(m, OffsetPredictor)}
    if scheme == "he":
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, ModulatedDeformConv2d)) and id(module) not in keep:
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
    if zero_init_residual:
        for module in model.modules():
            if isinstance(module, ResidualBlock):
                nn.init.zeros_(module.conv2.weight)
                nn.init.zeros_(module.conv2.bias)
