"""Shared fixtures. Data from ../shared is read only when present; tests that need it skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DPANET_SHARED", REPO.parent / "shared"))
OFFICIAL_KEYS = SHARED / "reference" / "official-state-dict.json"
DP_REAL = SHARED / "data" / "dp-real"


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """A small checkpoint of ours (width 4, random weights of seed 0) for command-line tests."""
    import torch

    from dpanet.training.checkpoint import save_checkpoint
    from dpanet.training.config import DPANetConfig
    from dpanet.training.model import DPANet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "small.pt"
    save_checkpoint(path, DPANet(DPANetConfig(width=4)), "BGR")
    return path


@pytest.fixture(scope="session")
def official_keys() -> Path:
    if not OFFICIAL_KEYS.is_file():
        pytest.skip(
            f"needs the release's key list at {OFFICIAL_KEYS} (set DPANET_SHARED to the shared folder)"
        )
    return OFFICIAL_KEYS


@pytest.fixture(scope="session")
def dp_real() -> Path:
    if not (DP_REAL / "canon_00_L.png").is_file():
        pytest.skip(f"needs the real DP pairs at {DP_REAL} (set DPANET_SHARED to the shared folder)")
    return DP_REAL


@pytest.fixture(scope="session")
def small_export(tmp_path_factory) -> tuple[Path, Path]:
    """(checkpoint, dynamic fp32 portable .onnx) of a small lively DPANet (BGR): the runtime tests'
    model, exported once per session (about a minute on two cores)."""
    from dpanet.export.exporter import ExportOptions, export_checkpoint
    from dpanet.training.checkpoint import save_checkpoint
    from dpanet.training.config import DPANetConfig

    from lively import lively_model

    folder = tmp_path_factory.mktemp("small_export")
    checkpoint = folder / "small.pt"
    save_checkpoint(checkpoint, lively_model(DPANetConfig(width=4), seed=2), "BGR")
    model = folder / "small.onnx"
    export_checkpoint(checkpoint, model, ExportOptions(flavor="portable"))
    return checkpoint, model
