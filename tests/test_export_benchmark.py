"""`bench export --profile`: the operator times read from ONNX Runtime's own profiler trace."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper, save_model

from dpanet.export.benchmark import kernel_seconds_by_op


def _profiled_runs(tmp_path, runs: int) -> str:
    """A Conv -> Relu -> Add graph run ``runs`` times under the profiler; the trace's path."""
    weight = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Add", ["r", "c"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 64, 64])],
        [weight],
    )
    save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "g.onnx")
    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(tmp_path / "trace")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep the 3 nodes
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    for _ in range(runs):
        session.run(None, {"x": x})
    return session.end_profiling()


def test_operator_times_come_from_the_runs_after_the_warm_up(tmp_path):
    trace = _profiled_runs(tmp_path, 3)
    seconds = kernel_seconds_by_op(trace)
    assert set(seconds) == {"Conv", "Relu", "Add"}
    events = json.loads(Path(trace).read_text())
    runs = sorted((e["ts"], e["dur"]) for e in events if e.get("name") == "model_run")
    later_runs = sum(d for _, d in runs[1:]) * 1e-6 / 2  # mean of the two runs after the warm-up
    assert 0 < sum(seconds.values()) <= later_runs


def test_a_trace_without_a_warm_up_is_refused(tmp_path):
    with pytest.raises(ValueError, match="needs a warm-up run and a profiled run, found 1"):
        kernel_seconds_by_op(_profiled_runs(tmp_path, 1))
