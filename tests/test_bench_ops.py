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


def test_another_build_of_the_cpu_kernels_is_timed_beside_ours():
    """--cpu-library: each level runs through the other library too (here the installed one again,
    which must give the same numbers), named by the instruction set it runs."""
    from dpanet.plugins import cpu
    from dpanet.plugins._library import library_path
    from dpanet.plugins.benchmark import CORRELATION_LEVELS, LEVELS, cpu_rows

    rows = cpu_rows(scale=0.02, repeats=1, threads=2, library=library_path("cpu"))
    other = [r for r in rows if r.impl.startswith("ours, ")]
    assert {r.impl for r in other} == {f"ours, {cpu.kernels_isa()} build"}
    assert len(other) == len(LEVELS) + len(CORRELATION_LEVELS)
    assert all(r.max_diff == 0.0 for r in other)


def test_cli_rejects_a_folder_without_the_cpu_library(capsys, tmp_path):
    assert main(["bench", "ops", "--cpu-library", str(tmp_path)]) == 1
    assert f"--cpu-library: no libdpanet_cpu.so in {tmp_path}" in capsys.readouterr().err
