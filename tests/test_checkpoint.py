"""Checkpoint import from the release's format, our own format, and their errors."""

from __future__ import annotations

import pytest
import torch

from dpanet.cli import main
from dpanet.training.checkpoint import (
    CheckpointError,
    convert_official,
    convert_state_dict,
    load_checkpoint,
    save_checkpoint,
)
from dpanet.training.config import DPANetConfig
from dpanet.training.model import DPANet

from fake_data import release_like_state
from release_reference import synthesize_release_checkpoint


@pytest.fixture(scope="module")
def release_checkpoint(official_keys):
    return synthesize_release_checkpoint(official_keys, seed=3)


def test_release_format_converts_and_loads_strictly(release_checkpoint, tmp_path):
    source = tmp_path / "final.pth"
    torch.save(release_checkpoint, source)
    assert main(["convert-official", str(source), str(tmp_path / "ours.pt")]) == 0
    loaded = load_checkpoint(tmp_path / "ours.pt")
    assert loaded.channel_order == "BGR"
    assert loaded.config == DPANetConfig()
    ours = loaded.model.state_dict()
    release = release_checkpoint["G_state_dict"]
    assert len(ours) == len(release)
    # spot-check that values travel to the right place
    torch.testing.assert_close(
        ours["extractor.0.rb_out.2.conv1.weight"], release["module.predeblur.RB_L1_5.conv1.weight"]
    )
    torch.testing.assert_close(ours["decoder.0.reduce.weight"], release["module.up4.upsample.up.1.weight"])
    torch.testing.assert_close(
        ours["encoder.3.cost_embed.2.bias"], release["module.encoder.encoder4.flow_conv.2.bias"]
    )


def test_plain_state_dict_without_prefix_converts(release_checkpoint):
    plain = {k.removeprefix("module."): v for k, v in release_checkpoint["G_state_dict"].items()}
    assert len(convert_state_dict(plain)) == len(plain)


def test_corrupted_release_checkpoint_lists_every_problem(tmp_path):
    state = release_like_state()
    assert len(convert_state_dict(state)) == len(state)
    del state["module.up2.offset_r.bias"]
    state["module.encoder.encoder3.deform.weight"] = torch.zeros(256, 128, 3, 3)
    state["module.extra.weight"] = torch.zeros(3)
    source = tmp_path / "broken.pth"
    torch.save({"G_state_dict": state}, source)
    with pytest.raises(CheckpointError) as info:
        convert_official(source, tmp_path / "ours.pt")
    message = str(info.value)
    assert "missing keys (1): up2.offset_r.bias" in message
    assert "unexpected keys (1): extra.weight" in message
    assert "encoder.encoder3.deform.weight (256, 128, 3, 3) (expected (256, 256, 3, 3))" in message
    assert not (tmp_path / "ours.pt").exists()


def test_cli_reports_a_bad_release_file_in_one_line(tmp_path, capsys):
    source = tmp_path / "final.pth"
    source.write_bytes(b"not a checkpoint")
    assert main(["convert-official", str(source), str(tmp_path / "ours.pt")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "final.pth: not a PyTorch checkpoint" in err[0]
    assert list(tmp_path.iterdir()) == [source]


def test_our_format_round_trips_configuration_and_order(tmp_path):
    config = DPANetConfig(width=4, offset_source="cost", max_displacement=2)
    model = DPANet(config)
    save_checkpoint(tmp_path / "m.pt", model, "RGB", {"note": "test"})
    loaded = load_checkpoint(tmp_path / "m.pt")
    assert loaded.config == config and loaded.channel_order == "RGB"
    assert loaded.metadata == {"note": "test"}
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[key], value)


def test_weights_that_do_not_fit_the_configuration_are_refused(tmp_path):
    model = DPANet(DPANetConfig(width=4))
    save_checkpoint(tmp_path / "m.pt", model, "BGR")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    payload["config"]["width"] = 8
    torch.save(payload, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="weights do not fit its configuration: mismatched shapes"):
        load_checkpoint(tmp_path / "m.pt")


def test_loading_a_release_checkpoint_directly_hints_at_conversion(tmp_path):
    torch.save({"G_state_dict": {"module.out.0.weight": torch.zeros(1)}}, tmp_path / "final.pth")
    with pytest.raises(CheckpointError, match="convert it with `dpanet convert-official`"):
        load_checkpoint(tmp_path / "final.pth")
