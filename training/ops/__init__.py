"""DPANet's two non-standard ops as PyTorch custom ops (contract: docs/ops.md).

Importing this package registers ``torch.ops.dpanet.correlation`` and
``torch.ops.dpanet.modulated_deform_conv2d`` with their fake kernels, autograd formulas and
autocast rules.
"""

from dpanet.training.ops.correlation import correlation
from dpanet.training.ops.deform_conv import ModulatedDeformConv2d, modulated_deform_conv2d

__all__ = ["ModulatedDeformConv2d", "correlation", "modulated_deform_conv2d"]
