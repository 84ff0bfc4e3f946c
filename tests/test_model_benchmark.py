"""dpanet bench model: op shares that count each op call once, and no profiler log lines on stderr."""

from __future__ import annotations

import os
from types import SimpleNamespace

import torch

from dpanet.training.benchmark import OP_NAMES, kineto_quiet, op_seconds, time_model
from dpanet.training.config import DPANetConfig
from dpanet.training.model import DPANet


def _event(name, microseconds, parent=None):
    return SimpleNamespace(name=name, cpu_time_total=microseconds, cpu_parent=parent)


def test_op_seconds_counts_a_call_nested_in_itself_once():
    outer = _event("op", 300.0, _event("forward", 1000.0))
    inner = _event("op", 250.0, _event("aten::to", 260.0, outer))  # autocast's call of the op
    other = _event("op", 100.0)
    assert op_seconds([outer, inner, other, _event("aten::add", 50.0)], "op") == 400e-6


def test_kineto_quiet_keeps_other_stderr_lines(capfd):
    with kineto_quiet():
        os.write(
            2, b"USDT:2026-12-03 07:27:19 14049:14049 SyncActivityProfilerHandler.cpp:52] profiler_start\n"
        )
        os.write(2, b"a warning of our own\n")
        os.write(2, b"STAGE:2026-12-03 07:28:36 1:1 SyncActivityProfilerHandler.cpp:60] Completed Stage\n")
    assert capfd.readouterr().err == "a warning of our own\n"


def test_bfloat16_shares_stay_below_the_whole_and_the_profiler_is_silent(capfd):
    """Under bfloat16 autocast every op call was counted twice (117 % at --width 8 --size 64x64)."""
    torch.manual_seed(0)
    model = DPANet(DPANetConfig(width=4)).eval()
    views = torch.rand(1, 3, 32, 32)
    timing = time_model(model, views, torch.bfloat16, repeats=1)
    assert set(timing.op_share) == set(OP_NAMES)
    assert 0 < sum(timing.op_share.values()) <= 1
    assert capfd.readouterr().err == ""
