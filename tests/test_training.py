"""The training loop: a step lowers the loss, resume is exact, configs, the CLI, and DDP with gloo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dpanet.cli import main
from dpanet.training.checkpoint import DEMO_CHECKPOINT, load_checkpoint
from dpanet.training.distributed import Context
from dpanet.training.model import DPANet, DPANetConfig
from dpanet.training.train_config import LOSSES, ConfigError, load_config, parse_config
from dpanet.training.trainer import BEST_FILE, MODEL_FILE, STATE_FILE, Trainer, build_dataset

from fake_data import make_dpdd

CPU = Context(rank=0, world_size=1, device=torch.device("cpu"))


def tiny_config(out: Path, epochs: int = 2, batch_size: int = 2, extra: str = "") -> str:
    return f"""
[model]
width = 4
[train]
epochs = {epochs}
batch_size = {batch_size}
lr = 1e-3
lr_step_epochs = 1
lr_gamma = 0.5
precision = "fp32"
threads = 1
[data]
kind = "synthetic"
count = 4
size = 16
seed = 1
[output]
dir = "{out}"
log_every = 1000
tensorboard = false
{extra}"""


@pytest.mark.parametrize("loss", LOSSES)
def test_one_step_lowers_the_loss_on_a_fixed_batch(tmp_path, loss):
    config = parse_config(tiny_config(tmp_path).replace("precision", f'loss = "{loss}"\nprecision'))
    assert config.train.loss == loss
    trainer = Trainer(config, CPU)
    dataset = build_dataset(config.data, "BGR")
    batch = torch.utils.data.default_collate([dataset[i] for i in range(2)])
    loss_fn = trainer.loss_function(0)
    before = trainer.batch_loss(batch, loss_fn)
    trainer.train_step(batch, loss_fn)
    assert trainer.batch_loss(batch, loss_fn) < before


def test_resume_restores_optimizer_and_schedule_and_continues_exactly(tmp_path):
    straight = Trainer(parse_config(tiny_config(tmp_path / "straight", epochs=2)), CPU)
    straight.fit()

    first = Trainer(parse_config(tiny_config(tmp_path / "resumed", epochs=1)), CPU)
    first.fit()
    saved = torch.load(tmp_path / "resumed" / STATE_FILE, weights_only=True)
    resumed = Trainer(parse_config(tiny_config(tmp_path / "resumed", epochs=2)), CPU)
    resumed.resume()
    assert resumed.epoch == 1 and resumed.step == first.step
    assert resumed.scheduler.last_epoch == 1
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)
    for name, value in saved["optimizer"]["state"][0].items():
        torch.testing.assert_close(resumed.optimizer.state_dict()["state"][0][name], value)
    resumed.fit()

    assert [r["lr"] for r in resumed.history] == [r["lr"] for r in straight.history] == [1e-3, 5e-4]
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=0)


def test_init_from_starts_from_a_checkpoint_and_refuses_another_network(tmp_path):
    source = Trainer(parse_config(tiny_config(tmp_path / "first", epochs=1)), CPU)
    source.fit()
    model_file = (tmp_path / "first" / MODEL_FILE).as_posix()
    config = tiny_config(tmp_path / "second").replace("width = 4", f'width = 4\ninit_from = "{model_file}"')
    tuned = Trainer(parse_config(config), CPU)
    for key, value in source.model.state_dict().items():
        torch.testing.assert_close(tuned.model.state_dict()[key], value, rtol=0, atol=0)
    wider = config.replace("width = 4", "width = 8")
    with pytest.raises(ConfigError, match="init_from"):
        Trainer(parse_config(wider), CPU)
    with pytest.raises(ConfigError, match="init_from"):
        Trainer(parse_config(config.replace(model_file, (tmp_path / "none.pt").as_posix())), CPU)


def test_mse_pretraining_then_charbonnier(tmp_path):
    trainer = Trainer(
        parse_config(
            tiny_config(tmp_path, epochs=2).replace("precision", "mse_pretrain_epochs = 1\nprecision")
        ),
        CPU,
    )
    assert [r["loss_kind"] for r in trainer.fit()] == ["mse", "charbonnier"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (("[output]", "[outputs]"), "unknown section"),
        (("width = 4", "width = 4\ndepth = 3"), r"\[model\]: unknown key\(s\) depth"),
        (('kind = "synthetic"', 'kind = "imagenet"'), "kind: 'imagenet' is not one of"),
        (("lr = 1e-3", "lr = 1e-3\nema_decay = 1.0"), r"ema_decay: 1.0 is not in \[0, 1\)"),
        (("lr = 1e-3", 'lr = "fast"'), r"\[train\] lr: expected float"),
        (('precision = "fp32"', 'precision = "fp8"'), "precision: 'fp8' is not one of fp32, tf32, bf16"),
        (("width = 4", 'width = 4\ninit = "xavier"'), r"\[model\] init: 'xavier'"),
        (("size = 16", "size = 12"), "multiple of 8"),
        (("seed = 1", "seed = 1\neight_bit = true"), r"\[data\] eight_bit: only for data read from files"),
        (("epochs = 2", "epochs = ["), "not valid TOML"),
    ],
)
def test_config_errors_are_one_line(tmp_path, edit, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(tiny_config(tmp_path).replace(*edit))


def test_validation_needs_data(tmp_path):
    with pytest.raises(ConfigError, match="needs a data description"):
        parse_config(tiny_config(tmp_path, extra="[validation]\nevery = 1\n"))


def test_selecting_on_the_test_split_must_be_asked_for(tmp_path):
    on_test = """
[validation]
every = 1
kind = "dpdd"
root = "data"
split = "test"
augment = "center"
patch = 0
"""
    with pytest.raises(ConfigError, match="select_on_test = true to do so"):
        parse_config(tiny_config(tmp_path, extra=on_test))
    assert parse_config(
        tiny_config(tmp_path, extra=on_test + "select_on_test = true\n")
    ).validation.select_on_test
    on_val = on_test.replace('"test"', '"val"') + "select_on_test = true\n"
    with pytest.raises(ConfigError, match="select_on_test = true needs"):
        parse_config(tiny_config(tmp_path, extra=on_val))


def test_validation_on_eight_bit_data_scores_the_truncated_output(tmp_path):
    from dpanet.training.data import PairDataset, center_crop, list_dpdd
    from dpanet.training.metrics import scores

    make_dpdd(tmp_path / "dpdd", "val", count=2, size=(16, 24))
    dataset = PairDataset(list_dpdd(tmp_path / "dpdd", "val"), center_crop(None), eight_bit=True)
    trainer = Trainer(parse_config(tiny_config(tmp_path / "run")), CPU)
    psnrs = []
    for i in range(2):
        item = dataset[i]
        with torch.no_grad():
            output = trainer.model.eval()(item["left"][None], item["right"][None])[0]
        truncated = np.uint8(output.numpy().transpose(1, 2, 0) * 255) / 255.0  # the release's test code
        psnrs.append(scores(truncated, item["target"].numpy().transpose(1, 2, 0)).psnr)
    assert trainer.validate(dataset)["psnr"] == pytest.approx(np.mean(psnrs), rel=1e-6)


def test_model_best_holds_the_epoch_with_the_best_validation_psnr(tmp_path, monkeypatch):
    scripted = iter([20.0, 25.0, 22.0])
    monkeypatch.setattr(Trainer, "validate", lambda self, dataset: {"psnr": next(scripted)})
    validation = '[validation]\nevery = 1\nkind = "synthetic"\ncount = 1\nsize = 16\nvary_per_epoch = false\n'
    trainer = Trainer(parse_config(tiny_config(tmp_path / "run", epochs=3, extra=validation)), CPU)
    trainer.fit()
    best = load_checkpoint(tmp_path / "run" / BEST_FILE)
    assert best.metadata["epochs"] == 2 and best.metadata["selected_on"]["kind"] == "synthetic"
    two = Trainer(parse_config(tiny_config(tmp_path / "two", epochs=2)), CPU)
    two.fit()  # the same run stopped after epoch 2 (data and schedule depend on the epoch alone)
    for key, value in two.model.state_dict().items():
        torch.testing.assert_close(best.model.state_dict()[key], value, rtol=0, atol=0)
    assert not (tmp_path / "two" / BEST_FILE).exists()  # no validation: no best checkpoint


def test_train_command_end_to_end(tmp_path, capsys):
    pytest.importorskip(
        "tensorboard", reason="TensorBoard logging needs the tensorboard package (dpanet[train])"
    )
    validation = """
[validation]
every = 1
kind = "synthetic"
count = 2
size = 16
seed = 9
vary_per_epoch = false
"""
    text = tiny_config(tmp_path / "run", extra=validation).replace(
        "tensorboard = false", "tensorboard = true"
    )
    config = tmp_path / "tiny.toml"
    config.write_text(text)
    assert main(["train", "--config", str(config)]) == 0
    assert "done: 2 epochs" in capsys.readouterr().out
    loaded = load_checkpoint(tmp_path / "run" / MODEL_FILE)
    assert loaded.config.width == 4 and loaded.channel_order == "BGR"
    assert loaded.metadata["trained_with"] == f"dpanet train --config {config}"
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in history] == [1, 2] and all("val_psnr" in r for r in history)
    assert any((tmp_path / "run" / "tensorboard").iterdir())
    assert main(["train", "--config", str(config), "--resume"]) == 0  # already done: nothing to run


def test_resume_without_state_is_an_error(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(tiny_config(tmp_path / "nothing"))
    assert main(["train", "--config", str(config), "--resume"]) == 1
    assert "no training state" in capsys.readouterr().err


def test_ddp_two_gloo_processes_match_one_process(tmp_path):
    """torchrun, 2 CPU processes (gloo), batch 1 each == one process with batch 2."""
    single = tmp_path / "single.toml"
    single.write_text(tiny_config(tmp_path / "single", epochs=1))
    assert main(["train", "--config", str(single)]) == 0
    ddp = tmp_path / "ddp.toml"
    ddp.write_text(tiny_config(tmp_path / "ddp", epochs=1))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    result = subprocess.run(
        [*command, "-m", "dpanet", "train", "--config", str(ddp)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("epoch 1 step") == 1  # rank 0 alone reports
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == sorted(
        p.name for p in (tmp_path / "single").iterdir()
    )
    one = load_checkpoint(tmp_path / "single" / MODEL_FILE).model.state_dict()
    two = load_checkpoint(tmp_path / "ddp" / MODEL_FILE).model.state_dict()
    for key, value in one.items():
        torch.testing.assert_close(two[key], value, rtol=1e-4, atol=1e-5)


def test_initialisation_schemes():
    from dpanet.training.blocks import OffsetPredictor, ResidualBlock
    from dpanet.training.initialisation import initialise

    model = DPANet(DPANetConfig(width=4))
    initialise(model, "he", zero_init_residual=True)
    block = next(m for m in model.modules() if isinstance(m, ResidualBlock))
    x = torch.rand(1, 4, 8, 8)
    torch.testing.assert_close(block(x), x)  # every residual block starts as the identity
    for predictor in (m for m in model.modules() if isinstance(m, OffsetPredictor)):
        assert not predictor.conv.weight.any() and not predictor.conv.bias.any()  # offsets 0, masks 0.5
    std = model.head[0].weight.std().item()
    fan_in = model.head[0].weight[0].numel()
    assert std == pytest.approx((2 / fan_in) ** 0.5, rel=0.3)
    with pytest.raises(ValueError, match="init must be one of"):
        initialise(model, "xavier")


def test_release_initialisation_follows_the_release_module_by_module():
    """Width 8 (64 channels at the bottleneck): each group's draws are compared with the
    distribution the release's code gives that layer (utils/arch_util.py, models/model.py)."""
    from dpanet.training.blocks import OffsetPredictor, ResidualBlock, SameConv2d
    from dpanet.training.initialisation import initialise
    from dpanet.training.ops import ModulatedDeformConv2d

    torch.manual_seed(0)
    model = DPANet(DPANetConfig(width=8))
    initialise(model, "release")

    def fans(weight):
        field = weight[0, 0].numel()
        return weight.shape[1] * field, weight.shape[0] * field

    def pooled(modules, attr="weight"):
        return torch.cat([getattr(m, attr).detach().flatten() for m in modules])

    def groups(kind):
        found = {}
        for m in model.modules():
            if isinstance(m, kind):
                found.setdefault(fans(m.weight), []).append(m)
        return found

    for (fan_in, fan_out), modules in groups(SameConv2d).items():  # He normal, fan_out
        if len(pooled(modules)) >= 500:
            assert pooled(modules).std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.15)
        biases = pooled(modules, "bias")
        assert biases.abs().max() <= fan_in**-0.5 and biases.any()  # the default bias draw
    convs = [c for b in model.modules() if isinstance(b, ResidualBlock) for c in (b.conv1, b.conv2)]
    by_fan_in = {}
    for conv in convs:
        by_fan_in.setdefault(fans(conv.weight)[0], []).append(conv)
    for fan_in, modules in by_fan_in.items():
        assert pooled(modules).std().item() == pytest.approx(0.1 * (2 / fan_in) ** 0.5, rel=0.15)
        assert not pooled(modules, "bias").any()
    predictors = [m.conv for m in model.modules() if isinstance(m, OffsetPredictor)]
    for conv in predictors:  # PyTorch's default, not zero
        bound = conv.weight[0].numel() ** -0.5
        assert conv.weight.abs().max() <= bound and conv.weight.std() > bound / 3
        assert conv.bias.any()
    for (fan_in, _), modules in groups(ModulatedDeformConv2d).items():
        weights = pooled(modules)
        assert weights.abs().max() <= fan_in**-0.5
        assert weights.std().item() == pytest.approx(fan_in**-0.5 / 3**0.5, rel=0.15)  # uniform
        assert not pooled(modules, "bias").any()
    first = model.extractor[0].conv_in  # a plain convolution keeps PyTorch's default
    assert first.weight.abs().max() <= first.weight[0].numel() ** -0.5


def test_identity_initialisation_starts_at_the_mean_of_the_views():
    from dpanet.training.initialisation import initialise

    model = DPANet(DPANetConfig(width=8))
    initialise(model, "identity", noise=0.0)
    g = torch.Generator().manual_seed(1)
    left, right = (
        0.1 + 0.8 * torch.rand(1, 3, 32, 32, generator=g),
        0.1 + 0.8 * torch.rand(1, 3, 32, 32, generator=g),
    )
    with torch.no_grad():
        output = model(left, right)
    inner = (slice(None), slice(None), slice(4, 28), slice(4, 28))  # zero padding blurs the border
    torch.testing.assert_close(output[inner], ((left + right) / 2)[inner], atol=0.04, rtol=0)
    with pytest.raises(ValueError, match="pyramid extractor"):
        initialise(DPANet(DPANetConfig(width=8, pyramid_extractor=False)), "identity")


def ema_config(out: Path, epochs: int):
    return parse_config(tiny_config(out, epochs).replace("precision", "ema_decay = 0.9\nprecision"))


def test_ema_weights_are_the_moving_average_and_survive_resume(tmp_path):
    trainer = Trainer(ema_config(tmp_path / "a", 1), CPU)
    dataset = build_dataset(trainer.config.data, "BGR")
    batch = torch.utils.data.default_collate([dataset[i] for i in range(2)])
    weights = []
    for _ in range(3):
        trainer.train_step(batch, trainer.loss_function(0))
        weights.append({k: v.clone() for k, v in trainer.model.named_parameters()})
    for name, value in trainer.result.named_parameters():
        # the first update copies, the next ones mix: e = 0.9 e + 0.1 w
        expected = 0.9 * (0.9 * weights[0][name] + 0.1 * weights[1][name]) + 0.1 * weights[2][name]
        torch.testing.assert_close(value, expected)

    straight = Trainer(ema_config(tmp_path / "b", 2), CPU)
    straight.fit()
    Trainer(ema_config(tmp_path / "c", 1), CPU).fit()
    resumed = Trainer(ema_config(tmp_path / "c", 2), CPU)
    resumed.resume()
    resumed.fit()
    saved = load_checkpoint(tmp_path / "c" / MODEL_FILE).model.state_dict()
    for key, value in straight.result.state_dict().items():
        torch.testing.assert_close(saved[key], value, rtol=0, atol=0)
    trained = resumed.model.state_dict()
    assert any(not torch.equal(saved[key], trained[key]) for key in saved)


CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DEMO_STAGES = ("demo", "demo-refine")


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.name)
def test_committed_configs_parse(path):
    assert load_config(path).train.epochs >= 1


def test_demo_stages_chain_each_from_the_previous_output():
    stages = [load_config(CONFIGS / f"{name}.toml") for name in DEMO_STAGES]
    assert not stages[0].model.init_from and stages[0].model.init == "identity"
    for i in range(1, len(stages)):
        before, after = stages[i - 1], stages[i]
        assert after.model.init_from == f"{before.output.dir}/{MODEL_FILE}"
        assert after.data.seed not in {s.data.seed for s in stages[:i]}
        assert after.model.network_config() == before.model.network_config()


def test_paper_stages_chain_and_follow_the_release():
    mse, charbonnier = (load_config(CONFIGS / f"{name}.toml") for name in ("dpdd-paper-mse", "dpdd-paper"))
    assert not mse.model.init_from and mse.model.init == "release"
    assert charbonnier.model.init_from == f"{mse.output.dir}/{BEST_FILE}"
    assert (mse.train.loss, mse.train.epochs) == ("mse", 300)
    assert (charbonnier.train.loss, charbonnier.train.charbonnier_eps, charbonnier.train.epochs) == (
        "charbonnier",
        1e-3,
        150,
    )
    for stage in (mse, charbonnier):
        t = stage.train
        assert (t.lr, t.lr_step_epochs, t.lr_gamma, t.batch_size, t.precision) == (2e-5, 60, 0.5, 4, "fp32")
        assert stage.model.network_config() == DPANetConfig() and stage.model.channel_order == "BGR"
        assert (stage.data.augment, stage.data.patch, stage.data.eight_bit) == ("release", 512, True)
        assert stage.validation.every == 1 and stage.validation.data.split == "val"
        assert stage.validation.data.eight_bit and not stage.validation.select_on_test


def test_bundled_demo_model_was_trained_with_the_last_stage_keys():
    """The bundled file ran under runs/w10b/ (docs/training.md): only its folders may differ."""
    ran = parse_config(
        load_checkpoint(DEMO_CHECKPOINT).metadata["config"], "the bundled model's configuration"
    )
    committed = load_config(CONFIGS / f"{DEMO_STAGES[-1]}.toml")
    for section in ("train", "data", "validation"):
        assert getattr(ran, section) == getattr(committed, section), section
    assert ran.model.network_config() == committed.model.network_config()
    assert Path(ran.model.init_from).parent.name == "stage1"
