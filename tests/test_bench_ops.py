"""`dpanet bench ops` at a tiny scale: every peer computes the same op as ours, the table adds up."""

from __future__ import annotations

import pytest

from dpanet.cli import main

pytest.importorskip("onnxruntime", reason="bench ops needs onnxruntime (the bench extra)")


def test_cpu_peers_agree_with_our_kernels():
    from dpanet.plugins.benchmark import CORRELATION_LEVELS, LEVELS, cpu_rows, level_shapes

    rows = cpu_rows(scale=0.02, repeats=1, threads=2)
    dcn = [r for r in rows if r.op == "DCN"]
    assert [r.impl for r in dcn[:3]] == ["ours (C++)", "ONNX Runtime DeformConv", "PyTorch op"]
    assert {r.shape for r in dcn} == {f"{c}x{h}x{w}" for c, h, w in level_shapes(LEVELS, 0.02)}
    corr = [r for r in rows if r.op == "correlation"]
    assert len(corr) == 2 * len(CORRELATION_LEVELS)
    for r in rows:
        assert r.seconds > 0
        if r.max_diff is not None:  # ONNX Runtime's DeformConv and the PyTorch ops vs ours
            assert r.max_diff < 1e-4, r


def test_totals_sum_each_implementation_over_levels():
    from dpanet.plugins.benchmark import Row, format_table, with_totals

    rows = [
        Row("CPU", "DCN", "a", "ours (C++)", 1.0, 1.0, 4e9),
        Row("CPU", "DCN", "a", "peer", 3.0, 1.0, 4e9, 1e-7),
        Row("CPU", "DCN", "b", "ours (C++)", 2.0, 2.0, 2e9),
        Row("CPU", "DCN", "b", "peer", 3.0, 2.0, 2e9, 2e-7),
    ]
    totals = [r for r in with_totals(rows) if r.shape == "all levels"]
    assert [(r.impl, r.seconds, r.ours_seconds, r.work) for r in totals] == [
        ("ours (C++)", 3.0, 3.0, 6e9),
        ("peer", 6.0, 3.0, 6e9),
    ]
    assert totals[1].max_diff == 2e-7
    table = format_table(with_totals(rows))
    assert "2.00x" in table  # the peer's total over ours


def test_cli_rejects_a_bad_scale(capsys):
    assert main(["bench", "ops", "--scale", "2"]) == 1
    assert "--scale must be in (0, 1]" in capsys.readouterr().err
