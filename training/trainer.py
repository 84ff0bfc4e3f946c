"""``dpanet train``: the training loop, with resume, validation, logs and DistributedDataParallel.

One process, or one per device under ``torchrun`` (``--nproc_per_node N``): each process builds the
same network (same seed), a DistributedSampler hands each its share of every global batch, DDP
averages gradients, and only rank 0 logs, validates and writes files. Files in ``[output] dir``:

- ``training-state.pt``: network, optimizer, LR schedule, epoch and history (``--resume``);
- ``model.pt``: the network in our checkpoint format, with the command, configuration and scores;
- ``model-best.pt``: the same for the epoch with the best validation PSNR so far (written when
  that improves; the release kept its best checkpoint too, chosen on the test set);
- ``history.jsonl``: one line per epoch (loss, learning rate, validation scores, seconds);
- ``tensorboard/``: TensorBoard logs (loss per logged step, epoch scalars).

Resuming continues at the epoch after the last saved one; since data randomness is seeded by
(seed, epoch, index) and the sampler by (seed, epoch), a resumed run sees the same data as an
uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from dpanet.errors import DPANetError
from dpanet.extras import pip_command
from dpanet.files import write_text_atomic
from dpanet.training import distributed
from dpanet.training.checkpoint import atomic_torch_save, load_checkpoint, load_weights_only, save_checkpoint
from dpanet.training.data import (
    AUGMENTATIONS,
    PairDataset,
    SyntheticDPDataset,
    list_dpdd,
    list_triplets,
)
from dpanet.training.evaluation import quantise
from dpanet.training.inference import float32_mode
from dpanet.training.initialisation import initialise
from dpanet.training.losses import charbonnier, mse, psnr_loss
from dpanet.training.metrics import scores
from dpanet.training.model import DPANet
from dpanet.training.train_config import ConfigError, DataSection, TrainConfig

STATE_FORMAT = "dpanet-training-state"
STATE_FILE = "training-state.pt"
MODEL_FILE = "model.pt"
BEST_FILE = "model-best.pt"
HISTORY_FILE = "history.jsonl"


def load_weights(model: DPANet, path: str, channel_order: str) -> None:
    """Copy the weights of our checkpoint at ``path`` into ``model`` ([model] init_from)."""
    try:
        loaded = load_checkpoint(path)
    except (OSError, DPANetError) as exc:
        raise ConfigError(f"[model] init_from: {exc}") from None
    if loaded.model.config != model.config or loaded.channel_order != channel_order:
        raise ConfigError(
            f"[model] init_from: {path} holds {loaded.model.config} ({loaded.channel_order}), "
            f"this configuration builds {model.config} ({channel_order})"
        )
    model.load_state_dict(loaded.model.state_dict())


def build_dataset(data: DataSection, channel_order: str):
    """The dataset a ``[data]`` or ``[validation]`` section describes."""
    if data.kind == "synthetic":
        count = min(data.count, data.limit) if data.limit else data.count
        return SyntheticDPDataset(
            count, data.size, data.recipe, data.seed, data.vary_per_epoch, channel_order
        )
    files = list_dpdd(data.root, data.split) if data.kind == "dpdd" else list_triplets(data.root)
    files = files[: data.limit] if data.limit else files
    transform = AUGMENTATIONS[data.augment](data.patch or None)
    return PairDataset(files, transform, data.seed, channel_order, data.eight_bit)


def log(message: str) -> None:
    """A line on stdout that keeps progress bars intact and reaches a redirected log at once."""
    tqdm.write(message)
    sys.stdout.flush()


def _tensor_image(x: torch.Tensor) -> np.ndarray:
    """3 x H x W tensor -> H x W x 3 float array."""
    return x.detach().float().cpu().numpy().transpose(1, 2, 0)


class Trainer:
    def __init__(self, config: TrainConfig, context: distributed.Context, command: str = "") -> None:
        self.config = config
        self.context = context
        self.command = command
        t = config.train
        if t.batch_size % context.world_size:
            raise ConfigError(
                f"[train] batch_size {t.batch_size} is not divisible by the {context.world_size} processes"
            )
        if t.threads:
            torch.set_num_threads(t.threads)
        torch.manual_seed(t.seed)
        self.device = context.device
        self.model = DPANet(config.model.network_config())
        if config.model.init_from:
            load_weights(self.model, config.model.init_from, config.model.channel_order)
        else:
            initialise(self.model, config.model.init, config.model.zero_init_residual)
        self.model.to(self.device)
        self.network = DistributedDataParallel(self.model) if context.distributed else self.model
        self.ema = (
            AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(t.ema_decay), use_buffers=True)
            if t.ema_decay
            else None
        )
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=t.lr)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, t.lr_step_epochs, t.lr_gamma)
        self.epoch = 0  # the next epoch to run
        self.step = 0
        self.history: list[dict] = []
        self.out = Path(config.output.dir)

    # --- one step -----------------------------------------------------------------------------------

    def loss_kind(self, epoch: int) -> str:
        t = self.config.train
        return "mse" if epoch < t.mse_pretrain_epochs else t.loss

    def loss_function(self, epoch: int):
        kind = self.loss_kind(epoch)
        if kind == "charbonnier":
            eps = self.config.train.charbonnier_eps
            return lambda output, target: charbonnier(output, target, eps)
        return {"mse": mse, "psnr": psnr_loss}[kind]

    def _autocast(self):
        if self.config.train.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_step(self, batch: dict, loss_fn) -> float:
        self.network.train()
        left, right, target = (batch[k].to(self.device) for k in ("left", "right", "target"))
        with self._autocast():
            output = self.network(left, right)
        loss = loss_fn(output.float(), target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        self.step += 1
        return float(loss.detach())

    @torch.no_grad()
    def batch_loss(self, batch: dict, loss_fn) -> float:
        self.model.eval()
        left, right, target = (batch[k].to(self.device) for k in ("left", "right", "target"))
        with self._autocast():
            output = self.model(left, right)
        return float(loss_fn(output.float(), target))

    @property
    def result(self) -> DPANet:
        """The network that is validated and written to model.pt: the moving average if any."""
        return self.ema.module if self.ema is not None else self.model

    @torch.no_grad()
    def validate(self, dataset) -> dict[str, float]:
        """Mean PSNR / SSIM of the network (float32) and of the combined input on a dataset. Data
        read as 8-bit (``eight_bit``) is scored under the release protocol: the output truncated to
        8 bits, as the release's test code (where it chose its checkpoint) does."""
        network = self.result.eval()
        release = getattr(dataset, "eight_bit", False)
        rows = []
        for i in range(len(dataset)):
            item = dataset[i]
            output = network(item["left"][None].to(self.device), item["right"][None].to(self.device))
            target = _tensor_image(item["target"])
            output = np.clip(_tensor_image(output[0]), 0, 1)
            net = scores(quantise(output, 8, "release") if release else output, target)
            blurry = scores(_tensor_image(item["combined"]), target)
            rows.append((net.psnr, net.ssim, blurry.psnr, blurry.ssim))
        means = np.mean(rows, axis=0).tolist()  # Python floats: checkpoints load weights-only
        return dict(zip(("psnr", "ssim", "input_psnr", "input_ssim"), means, strict=True))

    # --- state --------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "format": STATE_FORMAT,
            "version": 1,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "epoch": self.epoch,
            "step": self.step,
            "history": self.history,
            "config": self.config.source,
        }

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ConfigError("not a training state written by dpanet train")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.history = list(state["history"])

    def resume(self) -> None:
        path = self.out / STATE_FILE
        if not path.is_file():
            raise ConfigError(f"--resume: no training state at {path}")
        state = load_weights_only(path)  # one-line errors; never runs code from the file
        self.load_state_dict(state)
        if self.context.is_main and state.get("config") != self.config.source:
            log(f"note: {path} was saved with a different configuration; going on with this one")

    def _metadata(self) -> dict:
        return {
            "trained_with": self.command,
            "config": self.config.source,
            "epochs": self.epoch,
            "steps": self.step,
            "data": dataclasses.asdict(self.config.data),
            "history": self.history,
            "torch": str(torch.__version__),
        }

    def save(self) -> None:
        atomic_torch_save(self.state_dict(), self.out / STATE_FILE)
        save_checkpoint(self.out / MODEL_FILE, self.result, self.config.model.channel_order, self._metadata())

    def best_psnr(self) -> float:
        """The best validation PSNR in the history (-inf before any validation)."""
        return max((r["val_psnr"] for r in self.history if "val_psnr" in r), default=-math.inf)

    def save_best(self) -> None:
        """model-best.pt: the network after the last epoch of the history, its best so far."""
        metadata = {**self._metadata(), "selected_on": dataclasses.asdict(self.config.validation.data)}
        save_checkpoint(self.out / BEST_FILE, self.result, self.config.model.channel_order, metadata)

    # --- the loop -----------------------------------------------------------------------------------

    def _loader(self, dataset) -> tuple[DataLoader, DistributedSampler]:
        t = self.config.train
        sampler = DistributedSampler(
            dataset, num_replicas=self.context.world_size, rank=self.context.rank, shuffle=True, seed=t.seed
        )
        loader = DataLoader(
            dataset,
            batch_size=t.batch_size // self.context.world_size,
            sampler=sampler,
            num_workers=t.num_workers,
            drop_last=True,
        )
        if len(loader) == 0:
            raise ConfigError(f"the training data ({len(dataset)} scenes) is smaller than one batch")
        return loader, sampler

    def _writer(self):
        if not (self.config.output.tensorboard and self.context.is_main):
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ConfigError(
                "[output] tensorboard = true needs the tensorboard package "
                f"({pip_command('train')}, or set tensorboard = false)"
            ) from exc
        return SummaryWriter(str(self.out / "tensorboard"))

    def fit(self) -> list[dict]:
        """Train from ``self.epoch`` to the configured number of epochs; return the history."""
        config, t, main = self.config, self.config.train, self.context.is_main
        channel_order = config.model.channel_order
        dataset = build_dataset(config.data, channel_order)
        val_every = config.validation.every
        val_set = build_dataset(config.validation.data, channel_order) if val_every else None
        loader, sampler = self._loader(dataset)
        writer = self._writer()
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.out / "config.toml", config.source)
        try:
            with float32_mode("tf32" if t.precision == "tf32" else "ieee"):
                for epoch in range(self.epoch, t.epochs):
                    sampler.set_epoch(epoch)
                    dataset.set_epoch(epoch)
                    record = self._train_epoch(epoch, loader, writer)
                    best = self.best_psnr()
                    if val_set is not None and ((epoch + 1) % val_every == 0 or epoch + 1 == t.epochs):
                        if main:
                            record.update({f"val_{k}": v for k, v in self.validate(val_set).items()})
                        distributed.barrier(self.context)
                    self.epoch = epoch + 1
                    self.history.append(record)
                    if main:
                        self._report(record, writer)
                        if record.get("val_psnr", -math.inf) > best:
                            self.save_best()
                            log(f"validation PSNR {record['val_psnr']:.3f} dB, the best so far: {BEST_FILE}")
                        if self.epoch % config.output.checkpoint_every == 0 or self.epoch == t.epochs:
                            self.save()
                    distributed.barrier(self.context)
        finally:
            if writer is not None:
                writer.close()
        return self.history

    def _train_epoch(self, epoch: int, loader: DataLoader, writer) -> dict:
        t, main = self.config.train, self.context.is_main
        loss_fn = self.loss_function(epoch)
        lr = self.optimizer.param_groups[0]["lr"]
        start = time.perf_counter()
        total, count = 0.0, 0
        bar = tqdm(
            loader, desc=f"epoch {epoch + 1}/{t.epochs}", unit="batch", disable=True if not main else None
        )
        for batch in bar:
            loss = self.train_step(batch, loss_fn)
            if not math.isfinite(loss):
                raise FloatingPointError(f"loss became {loss} at step {self.step} (epoch {epoch + 1})")
            total, count = total + loss, count + 1
            bar.set_postfix(loss=f"{loss:.4f}")
            if main and self.step % self.config.output.log_every == 0:
                log(f"epoch {epoch + 1} step {self.step} loss {loss:.5f} lr {lr:.3g}")
                if writer is not None:
                    writer.add_scalar("train/loss_step", loss, self.step)
        self.scheduler.step()
        return {
            "epoch": epoch + 1,
            "step": self.step,
            "loss": distributed.mean_across_processes(total / max(count, 1), self.context),
            "loss_kind": self.loss_kind(epoch),
            "lr": lr,
            "seconds": time.perf_counter() - start,
        }

    def _report(self, record: dict, writer) -> None:
        write_text_atomic(self.out / HISTORY_FILE, "".join(json.dumps(r) + "\n" for r in self.history))
        text = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items())
        log(text)
        if writer is not None:
            for key, value in record.items():
                if isinstance(value, float):
                    writer.add_scalar(f"epoch/{key}", value, record["epoch"])
            writer.flush()


def train(config: TrainConfig, resume: bool = False, command: str = "") -> list[dict]:
    """Run (or resume) the training a configuration describes, in this process's group."""
    context = distributed.setup(config.train.device)
    try:
        trainer = Trainer(config, context, command)
        if resume:
            trainer.resume()
        return trainer.fit()
    finally:
        distributed.teardown()
