"""The network: sizes of the release and its ablations, every variant runs, input checks."""

from __future__ import annotations

import pytest
import torch

from dpanet.training.complexity import measure
from dpanet.training.config import VARIANTS, DPANetConfig, variant_config
from dpanet.training.model import DPANet, count_parameters


def _parameters_on_meta(config: DPANetConfig) -> int:
    with torch.device("meta"):
        return count_parameters(DPANet(config))


def test_released_architecture_has_the_release_parameter_count():
    assert _parameters_on_meta(DPANetConfig()) == 63_983_859


def test_baseline_without_eam_and_dam_has_the_paper_parameter_count():
    assert _parameters_on_meta(variant_config("baseline")) == 60_756_227


def test_macs_at_256_match_the_release():
    c = measure(DPANetConfig(), 256, 256)
    assert round(c.total_macs / 1e9, 2) == 317.54
    assert round((c.conv_macs + c.same_conv_macs) / 1e9, 2) == 278.89
    assert round(c.deform_conv_macs / 1e9, 2) == 38.65
    assert round(c.conv_macs / 1e9, 2) == 213.71  # the paper's nn.Conv2d-only counter


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_builds_and_runs(variant):
    torch.manual_seed(0)
    model = DPANet(variant_config(variant, width=4)).eval()
    left, right = torch.rand(2, 1, 3, 24, 40).unbind(0)
    with torch.no_grad():
        out = model(left, right)
    assert out.shape == (1, 3, 24, 40)
    assert torch.all((out >= 0) & (out <= 1))


def test_variants_differ_where_the_paper_says():
    def params(name):
        return _parameters_on_meta(variant_config(name))

    assert params("unshared-encoder") > params("dpanet")
    assert params("paper-decoder") == params("dpanet")
    assert params("no-eam") < params("dpanet") and params("no-dam") < params("dpanet")
    paper = measure(variant_config("paper-decoder"), 256, 256).total_macs
    assert paper < measure(DPANetConfig(), 256, 256).total_macs  # no 1/4-scale conv in block 1


def test_release_decoder_quirk_upsamples_then_crops_back():
    """The first decoder block of the release works at 1/4 scale and centre-crops to 1/8."""
    torch.manual_seed(1)
    release = DPANet(DPANetConfig(width=4)).decoder[0]
    paper = DPANet(variant_config("paper-decoder", width=4)).decoder[0]
    paper.load_state_dict(release.state_dict())
    x = torch.rand(1, 64, 4, 6)  # both bottleneck outputs at 1/8 scale (2 x 8 x width)
    skip = torch.rand(1, 32, 4, 6)
    reduced = release.reduce(torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest"))
    assert reduced.shape[2:] == (8, 12)
    with torch.no_grad():
        out_release, out_paper = release(x, skip, skip), paper(x, skip, skip)
    assert out_release.shape == out_paper.shape == (1, 32, 4, 6)
    assert (out_release - out_paper).abs().max() > 1e-2


def test_offsets_start_at_zero_and_masks_at_one_half():
    model = DPANet(DPANetConfig(width=4))
    predictor = model.encoder[0].offset_left
    offset, mask = predictor(torch.rand(1, predictor.conv.in_channels, 8, 8))
    assert torch.count_nonzero(offset) == 0
    assert torch.allclose(mask, torch.full_like(mask, 0.5))


@pytest.mark.parametrize("size", [(20, 40), (24, 36), (0, 8)])
def test_sizes_must_be_multiples_of_8(size):
    model = DPANet(DPANetConfig(width=2))
    views = torch.rand(1, 3, *size)
    with pytest.raises(ValueError, match="multiples of 8"):
        model(views, views)


def test_mismatched_views_are_refused():
    model = DPANet(DPANetConfig(width=2))
    with pytest.raises(ValueError, match="differ in shape"):
        model(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 24))


def test_gradients_reach_every_parameter():
    torch.manual_seed(2)
    model = DPANet(DPANetConfig(width=4))
    for module in model.modules():  # non-zero offsets so that offset gradients are exercised
        if hasattr(module, "taps") and hasattr(module, "conv"):
            torch.nn.init.normal_(module.conv.weight, std=0.01)
    views = torch.rand(2, 1, 3, 16, 24).unbind(0)
    model(*views).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []


def test_config_round_trips_through_a_dict():
    config = variant_config("offsets-from-cost", width=16, max_displacement=3)
    assert DPANetConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown DPANet configuration keys"):
        DPANetConfig.from_dict({"width": 8, "depth": 3})
