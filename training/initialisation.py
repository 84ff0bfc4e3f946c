"""Weight initialisation schemes for training from scratch.

- ``pytorch``: the layers' own defaults (what ``DPANet()`` builds).
- ``he``: He et al.'s normal initialisation (fan-in, ReLU gain) for every convolution and
  deformable convolution, zero biases; the paper says DPANet is initialised this way.
- ``release``: what the release's code does (:func:`release_init`), whatever the paper says; the
  paper configurations use it.
- ``identity``: the network starts as (nearly) the mean of its two views, so training begins at
  the blurry input's quality instead of at a constant image. Every convolution is a Dirac (centre
  tap 1 from each input channel to the output channel of the same index) plus ``noise`` times a He
  draw; the pyramid's downsampling branches start (nearly) silent; the last decoder block averages
  the aligned left and right features; and the head's two convolutions are set to a
  piecewise-linear inverse of its sigmoid on the first three channels. Only the residual paths
  of the data carry the image at first; gradients reach every weight.

Every scheme but ``release`` keeps the offset predictors at zero (offsets 0, masks 0.5: the paper's).
``zero_init_residual`` zeroes the second convolution of every residual block, so each block starts
as the identity (as torchvision's ResNets offer); ``identity`` implies it. Without normalisation
layers, DPANet's long residual chains otherwise shrink (PyTorch's default) or blow up (plain He)
the signal at the start, and a narrow network then needs many steps to pass its input through.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dpanet.training.blocks import OffsetPredictor, ResidualBlock, SameConv2d
from dpanet.training.ops import ModulatedDeformConv2d

SCHEMES = ("pytorch", "he", "release", "identity")
RELEASE_RESIDUAL_SCALE = 0.1
_KNOTS = ((1, 0.0), (1, 0.85), (-1, 0.15))
"""Head units per colour channel: ReLU(sign * (x - knot)); channel 2 gets the first two only when
the network is 8 wide."""


def initialise(
    model: nn.Module, scheme: str = "pytorch", zero_init_residual: bool = False, noise: float = 0.05
) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"init must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    keep = {id(m.conv) for m in model.modules() if isinstance(m, OffsetPredictor)}
    if scheme == "release":
        release_init(model)
    if scheme in ("he", "identity"):
        for module in _convolutions(model, keep):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    if zero_init_residual or scheme == "identity":
        for module in model.modules():
            if isinstance(module, ResidualBlock):
                nn.init.zeros_(module.conv2.weight)
                nn.init.zeros_(module.conv2.bias)
                keep.add(id(module.conv2))
    if scheme == "identity":
        _identity(model, keep, noise)


@torch.no_grad()
def release_init(model: nn.Module) -> None:
    """The release's initialisation, module by module (its ``VGG_Deblur.__init_weight``, its
    residual block's ``initialize_weights(..., 0.1)`` and its layers' own defaults):

    - same-padding convolutions (feature blocks' first conv, cost embeddings, the decoder's 2 x 2
      convs, the head; the release's own ``Conv2d`` class): He normal, **fan_out**, ReLU gain;
      biases keep their default draw, uniform in +-1/sqrt(fan_in) (the release's class draws the
      same);
    - residual blocks' convolutions: He normal, fan_in, ReLU gain, times 0.1; zero biases;
    - offset predictors: PyTorch's default (not zero: offsets and mask logits start small and
      random);
    - deformable convolutions: weights uniform in +-1/sqrt(fan_in) (PyTorch's default draw), zero
      biases (the release's DCN class zeroes them);
    - the rest (the pyramid extractor's plain convolutions): PyTorch's default, as built.
    """
    for module in model.modules():
        if isinstance(module, SameConv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, ResidualBlock):
            for conv in (module.conv1, module.conv2):
                nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
                conv.weight.mul_(RELEASE_RESIDUAL_SCALE)
                nn.init.zeros_(conv.bias)
        elif isinstance(module, OffsetPredictor):
            module.conv.reset_parameters()
        elif isinstance(module, ModulatedDeformConv2d):
            bound = 1 / math.sqrt(module.weight[0].numel())
            nn.init.uniform_(module.weight, -bound, bound)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def _convolutions(model: nn.Module, skip: set[int]):
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, ModulatedDeformConv2d)) and id(module) not in skip:
            yield module


@torch.no_grad()
def _identity(model: nn.Module, keep: set[int], noise: float) -> None:
    config = model.config
    if config.in_channels != 3 or config.out_channels != 3 or config.width < 3:
        raise ValueError("init identity needs 3 input and output channels and a width of at least 3")
    if not config.pyramid_extractor:
        raise ValueError("init identity needs the pyramid extractor")
    fuse = model.decoder[-1].fuse.conv  # input: cat[left aligned, right aligned, upsampled], w each
    quiet = [fuse] + [branch for e in model.extractor for branch in (e.down2, e.down3)]
    for module in quiet:  # noise only: the pyramid branches and the fusion start (nearly) silent
        module.weight.mul_(noise)
    for module in _convolutions(model, keep | {id(m) for m in quiet}):
        dirac = torch.zeros_like(module.weight)
        nn.init.dirac_(dirac)
        module.weight.mul_(noise).add_(dirac)
    w = config.width
    for c in range(w):  # the fusion averages the aligned views
        fuse.weight[c, c, 1, 1] += 0.5
        fuse.weight[c, w + c, 1, 1] += 0.5
    _invert_sigmoid(model)


@torch.no_grad()
def _invert_sigmoid(model: nn.Module) -> None:
    """Set the head so that its output is (nearly) the first three channels it receives, divided by
    their measured gain: a weighted least-squares piecewise-linear logit through ReLU units."""
    first, last = model.head[0], model.head[2]
    received = []
    hook = first.register_forward_hook(lambda module, args, output: received.append(args[0]))
    probe = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    model(probe, probe)
    hook.remove()
    centre = (slice(8, 24), slice(8, 24))  # away from the borders' zero padding
    image = probe[0][(slice(None), *centre)]
    gain = float((received[0][0, :3][(slice(None), *centre)] * image).sum() / image.square().sum())
    units = [(c, sign, knot) for c in range(3) for sign, knot in _KNOTS][: first.out_channels]
    first.weight.zero_()
    first.bias.zero_()
    last.weight.zero_()
    last.bias.zero_()
    for k, (c, sign, knot) in enumerate(units):
        first.weight[k, c, 1, 1] = sign / gain
        first.bias[k] = -sign * knot
    grid = torch.linspace(0.001, 0.999, 999, dtype=torch.float64)
    weights = (grid * (1 - grid))[:, None]  # d sigmoid / d logit: the fit's error in output terms
    for c in range(3):
        mine = [k for k, unit in enumerate(units) if unit[0] == c]
        basis = [torch.relu(units[k][1] * (grid - units[k][2])) for k in mine]
        design = torch.stack([*basis, torch.ones_like(grid)], 1)
        solution = torch.linalg.lstsq(design * weights, torch.logit(grid)[:, None] * weights).solution[:, 0]
        for j, k in enumerate(mine):
            last.weight[c, k, 1, 1] = float(solution[j])
        last.bias[c] = float(solution[-1])
