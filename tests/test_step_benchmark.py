"""`dpanet bench train` at a tiny width: both precisions timed, the recipe's hours follow from them."""

from __future__ import annotations

import pytest

from dpanet.cli import main
from dpanet.training.step_benchmark import RECIPE_PATCHES


def test_bench_train_table(capsys):
    assert RECIPE_PATCHES == 450 * 7000  # 300 + 150 epochs of DPDD's 7,000 training patches
    assert main(["bench", "train", "--width", "2", "--size", "16", "--batch", "2", "--steps", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "batch 2 of 16x16" in lines[0]
    rows = {line[:20].strip(): line[20:].split() for line in lines[2:4]}
    assert set(rows) == {"float32", "bfloat16 autocast"}
    assert rows["float32"][2] == "1.00"
    per_second = RECIPE_PATCHES / 2 / 3600  # hours of the recipe per CPU second of a batch-2 step
    for _, seconds, _, _, hours in rows.values():  # seconds printed to 0.01, hours to 1
        assert float(hours) == pytest.approx(float(seconds) * per_second, abs=0.005 * per_second + 0.5)


def test_bench_train_refuses_bad_sizes(capsys):
    assert main(["bench", "train", "--size", "12", "--width", "2"]) == 1
    assert "multiples of 8" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["bench", "train", "--batch", "0"])
    assert usage.value.code == 2
    assert "--batch: must be at least 1" in capsys.readouterr().err
