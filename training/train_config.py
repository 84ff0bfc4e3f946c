"""The training configuration file (TOML), read into dataclasses with one-line errors.

Sections (docs/training.md lists every key with the paper's values)::

    [model]        variant, width, channel_order, init, zero_init_residual, init_from
    [train]        epochs, batch_size (global), lr, lr_step_epochs, lr_gamma, loss,
                   charbonnier_eps, mse_pretrain_epochs, ema_decay, precision, seed, device, threads,
                   num_workers
    [data]         the training data: kind = "dpdd" | "triplets" | "synthetic", and its keys
    [data.recipe]  synthetic scenes (dpanet.training.scenes.SceneRecipe)
    [validation]   every (epochs; 0 = never), select_on_test, and a data description like [data]
    [output]       dir, log_every (steps), checkpoint_every (epochs), tensorboard
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dpanet.errors import DPANetError
from dpanet.training.config import VARIANTS, DPANetConfig, variant_config
from dpanet.training.data import AUGMENTATIONS, SPLITS
from dpanet.training.initialisation import SCHEMES
from dpanet.training.scenes import SceneRecipe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DATA_KINDS = ("dpdd", "triplets", "synthetic")
LOSSES = ("charbonnier", "mse", "psnr")
PRECISIONS = ("fp32", "tf32", "bf16")


class ConfigError(DPANetError):
    """A training configuration that cannot be used."""


@dataclass(frozen=True)
class ModelSection:
    variant: str = "dpanet"
    width: int = 64
    channel_order: str = "BGR"
    init: str = "pytorch"
    """pytorch (the layers' defaults), he (the paper's) or identity: dpanet.training.initialisation."""
    zero_init_residual: bool = False
    """Start every residual block as the identity (its second convolution zeroed)."""
    init_from: str = ""
    """Fine-tune: start from this checkpoint of ours (same variant, width and channel order)
    instead of ``init``; a path relative to the working folder."""

    def network_config(self) -> DPANetConfig:
        return variant_config(self.variant, width=self.width)


@dataclass(frozen=True)
class TrainSection:
    """The paper's schedule by default."""

    epochs: int = 150
    batch_size: int = 4
    """Global batch: split evenly over the processes of a distributed run."""
    lr: float = 2e-5
    lr_step_epochs: int = 60
    lr_gamma: float = 0.5
    loss: str = "charbonnier"
    charbonnier_eps: float = 1e-3
    mse_pretrain_epochs: int = 0
    """The release's MSE pre-training: this many first epochs use MSE, the rest ``loss``."""
    ema_decay: float = 0.0
    """0: off. Otherwise the weights that are validated and written to model.pt are an exponential
    moving average of the trained ones, updated after every step with this decay (0.999: about
    the last 1,000 steps), which smooths the noise of small batches."""
    precision: str = "fp32"
    """fp32: IEEE float32, TensorFloat-32 off on CUDA (the release's GPU had none); tf32: float32
    with TF32 allowed for CUDA convolutions and matrix products; bf16: bfloat16 autocast (CPU and
    CUDA)."""
    seed: int = 0
    device: str = "auto"
    """auto (CUDA when available), cpu or cuda."""
    threads: int = 0
    """torch CPU threads per process (0: torch's default)."""
    num_workers: int = 0


@dataclass(frozen=True)
class DataSection:
    kind: str = "dpdd"
    root: str = ""
    """dpdd / triplets: the data folder."""
    split: str = "train"
    augment: str = "release"
    """release (resize, shared offset, vertical flip), crop (random crop) or center (centred crop)."""
    patch: int = 512
    """Crop size; 0 with augment = center: the largest multiple-of-8 crop (full frames)."""
    count: int = 0
    """synthetic: scenes per epoch."""
    size: int = 0
    """synthetic: scene size in pixels (square)."""
    seed: int = 0
    vary_per_epoch: bool = True
    """synthetic: new scenes every epoch (True) or one fixed set (False)."""
    limit: int = 0
    """Use only the first ``limit`` scenes (0: all)."""
    eight_bit: bool = False
    """dpdd / triplets: read 16-bit files as 8-bit (value >> 8), as the release does."""
    recipe: SceneRecipe = field(default_factory=SceneRecipe)


@dataclass(frozen=True)
class ValidationSection:
    every: int = 0
    data: DataSection | None = None
    select_on_test: bool = False
    """Allow a DPDD test split here: model-best.pt is then chosen on the test set, as the release
    chose its checkpoint (its test score is optimistic). Without it a test split is refused."""


@dataclass(frozen=True)
class OutputSection:
    dir: str = "runs/dpanet"
    log_every: int = 50
    checkpoint_every: int = 1
    tensorboard: bool = True


@dataclass(frozen=True)
class TrainConfig:
    model: ModelSection
    train: TrainSection
    data: DataSection
    validation: ValidationSection
    output: OutputSection
    source: str = ""
    """The configuration file's text, stored with checkpoints."""


def _section(cls, table: Any, where: str):
    if not isinstance(table, dict):
        raise ConfigError(f"[{where}] must be a table")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(f"[{where}]: unknown key(s) {', '.join(unknown)} (known: {', '.join(known)})")
    values = {}
    for name, value in table.items():
        default = known[name].default
        if name == "recipe":
            try:
                value = SceneRecipe.from_dict(value)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"[{where}.recipe]: {exc}") from exc
        elif isinstance(default, bool) or isinstance(value, bool):
            if not isinstance(value, bool) or not isinstance(default, bool):
                raise ConfigError(f"[{where}] {name}: expected {type(default).__name__}, got {value!r}")
        elif isinstance(default, float) and isinstance(value, int):
            value = float(value)
        elif default is not dataclasses.MISSING and not isinstance(value, type(default)):
            raise ConfigError(f"[{where}] {name}: expected {type(default).__name__}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"[{where}] {name}: {value} is not a finite number")
        values[name] = value
    return cls(**values)


def _check_data(data: DataSection, where: str) -> None:
    if data.kind not in DATA_KINDS:
        raise ConfigError(f"[{where}] kind: {data.kind!r} is not one of {', '.join(DATA_KINDS)}")
    if data.kind == "synthetic":
        if data.count < 1 or data.size < 8 or data.size % 8:
            raise ConfigError(f"[{where}]: synthetic data needs count >= 1 and size a multiple of 8")
        if data.eight_bit:
            raise ConfigError(f"[{where}] eight_bit: only for data read from files (dpdd, triplets)")
        return
    if not data.root:
        raise ConfigError(f"[{where}]: kind {data.kind} needs root (the data folder)")
    if data.kind == "dpdd" and data.split not in SPLITS:
        raise ConfigError(f"[{where}] split: {data.split!r} is not one of {', '.join(SPLITS)}")
    if data.augment not in AUGMENTATIONS:
        raise ConfigError(f"[{where}] augment: {data.augment!r} is not one of {', '.join(AUGMENTATIONS)}")
    if data.patch % 8 or data.patch < 0 or (data.patch == 0 and data.augment != "center"):
        raise ConfigError(f"[{where}] patch: a positive multiple of 8 (0 only with augment = center)")


def _check(config: TrainConfig) -> None:
    m, t = config.model, config.train
    if m.variant not in VARIANTS:
        raise ConfigError(f"[model] variant: {m.variant!r} is not one of {', '.join(VARIANTS)}")
    if m.channel_order not in ("BGR", "RGB"):
        raise ConfigError(f"[model] channel_order: {m.channel_order!r} is not BGR or RGB")
    if m.width < 1:
        raise ConfigError("[model] width must be positive")
    if m.init not in SCHEMES:
        raise ConfigError(f"[model] init: {m.init!r} is not one of {', '.join(SCHEMES)}")
    if t.loss not in LOSSES:
        raise ConfigError(f"[train] loss: {t.loss!r} is not one of {', '.join(LOSSES)}")
    if t.precision not in PRECISIONS:
        raise ConfigError(f"[train] precision: {t.precision!r} is not one of {', '.join(PRECISIONS)}")
    if t.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"[train] device: {t.device!r} is not auto, cpu or cuda")
    if t.epochs < 1 or t.batch_size < 1 or t.lr <= 0 or t.lr_step_epochs < 1:
        raise ConfigError("[train] epochs, batch_size, lr and lr_step_epochs must be positive")
    if not 0 <= t.ema_decay < 1:
        raise ConfigError(f"[train] ema_decay: {t.ema_decay} is not in [0, 1)")
    if not 0 < t.lr_gamma <= 1 or t.charbonnier_eps <= 0:
        raise ConfigError("[train] lr_gamma must be in (0, 1] and charbonnier_eps positive")
    for name in ("threads", "num_workers", "seed", "mse_pretrain_epochs"):
        if getattr(t, name) < 0:
            raise ConfigError(f"[train] {name}: {getattr(t, name)} is negative")
    o = config.output
    if not o.dir or o.log_every < 1 or o.checkpoint_every < 1:
        raise ConfigError("[output] dir must be given, log_every and checkpoint_every at least 1")
    _check_data(config.data, "data")
    if config.validation.every:
        if config.validation.data is None:
            raise ConfigError("[validation] every > 0 needs a data description (kind, root, ...)")
        _check_data(config.validation.data, "validation")
    _check_test_selection(config.validation)


def _check_test_selection(validation: ValidationSection) -> None:
    data = validation.data
    on_test = data is not None and data.kind == "dpdd" and data.split == "test"
    if on_test and not validation.select_on_test:
        raise ConfigError(
            '[validation] split = "test" would choose model-best.pt on the test set (the release\'s '
            "choice, an optimistic score): set select_on_test = true to do so, or validate on val"
        )
    if validation.select_on_test and not on_test:
        raise ConfigError('[validation] select_on_test = true needs kind = "dpdd" and split = "test"')


def parse_config(text: str, name: str = "config") -> TrainConfig:
    """Parse a configuration's TOML text (``name`` labels errors). Paths stay as written."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML ({exc})") from exc
    unknown = sorted(set(doc) - {"model", "train", "data", "validation", "output"})
    if unknown:
        raise ConfigError(f"{name}: unknown section(s) {', '.join(unknown)}")
    if "data" not in doc:
        raise ConfigError(f"{name}: a [data] section is required")
    validation = dict(doc.get("validation", {}))
    every = validation.pop("every", 0)
    if not isinstance(every, int) or every < 0:
        raise ConfigError("[validation] every: a non-negative number of epochs")
    select_on_test = validation.pop("select_on_test", False)
    if not isinstance(select_on_test, bool):
        raise ConfigError(f"[validation] select_on_test: expected bool, got {select_on_test!r}")
    config = TrainConfig(
        model=_section(ModelSection, doc.get("model", {}), "model"),
        train=_section(TrainSection, doc.get("train", {}), "train"),
        data=_section(DataSection, doc["data"], "data"),
        validation=ValidationSection(
            every, _section(DataSection, validation, "validation") if validation else None, select_on_test
        ),
        output=_section(OutputSection, doc.get("output", {}), "output"),
        source=text,
    )
    _check(config)
    return config


def check_paths(config: TrainConfig) -> None:
    """What :func:`parse_config` cannot see in the text, checked before a run starts: the data
    folders and ``[model] init_from`` exist, and ``[output] dir`` is, or can be made, a writable
    folder. Relative paths are relative to the working folder, like every path a user types
    (docs/training.md)."""
    m = config.model
    if m.init_from and not Path(m.init_from).is_file():
        raise ConfigError(f"[model] init_from: {m.init_from}: no such file")
    described = [("data", config.data)]
    if config.validation.every and config.validation.data is not None:
        described.append(("validation", config.validation.data))
    for where, data in described:
        if data.kind != "synthetic" and not Path(data.root).is_dir():
            raise ConfigError(f"[{where}] root: {data.root}: no such folder")
    out = Path(config.output.dir)
    existing = next(p for p in (out, *out.parents) if p.exists())  # '.' or '/' at the latest
    if not existing.is_dir():
        raise ConfigError(f"[output] dir {out}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"[output] dir {out}: folder {existing} is not writable")


def load_config(path: str | Path) -> TrainConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    return parse_config(path.read_text(encoding="utf-8"), str(path))
