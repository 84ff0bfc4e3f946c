"""dpanet train: train DPANet as a TOML configuration describes (torchrun for several processes)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train DPANet from a configuration file",
        description="Train DPANet as a TOML configuration describes (docs/training.md). For several "
        "GPUs or processes: torchrun --nproc_per_node N -m dpanet train --config FILE. The whole "
        "configuration is checked before any work; [output] dir, if relative, is relative to the "
        "working folder, and the files in it are replaced.",
    )
    p.add_argument("--config", required=True, type=Path, help="training configuration (.toml)")
    p.add_argument("--resume", action="store_true", help="continue from the output folder's training state")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dpanet.files import check_not_input
    from dpanet.training.train_config import check_paths, load_config
    from dpanet.training.trainer import MODEL_FILE, train

    config = load_config(args.config)
    check_paths(config)
    check_not_input(Path(config.output.dir) / MODEL_FILE, config.model.init_from or None)
    command = shlex.join(
        ["dpanet", "train", "--config", str(args.config), *(["--resume"] if args.resume else [])]
    )
    history = train(config, resume=args.resume, command=command)
    if history:
        print(f"done: {history[-1]['epoch']} epochs; model in {Path(config.output.dir) / MODEL_FILE}")
    return 0
