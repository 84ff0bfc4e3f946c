"""`dpanet doctor`: the command without torch, its lines and JSON on this machine (no GPU, no
TensorRT: every GPU line skipped with its reason, every CPU line ok), a failing check's line and
exit code, and the pure logic behind the GPU lines (architectures, memory, the Jetson release)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dpanet.cli import main
from dpanet.plugins import cpu
from dpanet.plugins.op_cases import correlation_case, dcn_case
from dpanet.runtime import checks
from dpanet.runtime.checks import (
    Failed,
    Skipped,
    jetson_release,
    largest_fitting,
    memory_needed,
    memory_verdict,
)
from dpanet.runtime.kernel_checks import compare, compare_cpu_correlation, parse_cuobjdump, runs_on

CPU_LINES = ["python", "numpy", "onnxruntime", "cpu correlation", "cpu deform_conv"]
GPU_LINES = [
    "pycuda",
    "tensorrt",
    "cuda driver",
    "gpu",
    "cuda architecture",
    "cuda correlation",
    "cuda deform_conv",
    "plugin library",
    "engine correlation",
    "engine deform_conv",
]
HAS_GPU_STACK = any(importlib.util.find_spec(name) is not None for name in ("pycuda", "tensorrt"))
WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
from dpanet.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH, "doctor", *args], capture_output=True, text=True, check=False
    )


def _lines(stdout: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in stdout.splitlines():
        status, rest = line.split(maxsplit=1)
        name, detail = rest.split(": ", 1)
        rows[name] = (status, detail)
    return rows


@pytest.fixture(scope="module")
def doctor_run():
    return _doctor(), _doctor("--json")


def test_doctor_without_torch_prints_one_line_per_check(doctor_run):
    done, _ = doctor_run
    assert done.returncode == 0, done.stdout + done.stderr
    rows = _lines(done.stdout)
    assert list(rows)[:5] == ["python", "numpy", "onnxruntime", "pycuda", "tensorrt"]
    assert set(CPU_LINES + GPU_LINES + ["jetpack", "model engine", "memory"]) == set(rows)
    for name in CPU_LINES:
        assert rows[name][0] == "ok", (name, rows[name])
    assert "8 correlation cases within atol 1e-05" in rows["cpu correlation"][1]
    assert "8 DCN cases within atol 1e-05" in rows["cpu deform_conv"][1]
    assert rows["model engine"][0] == "skipped" and "pass --onnx FILE" in rows["model engine"][1]
    assert all(status != "FAIL" for status, _ in rows.values())


@pytest.mark.skipif(HAS_GPU_STACK, reason="pycuda or tensorrt is installed: the GPU lines run here")
def test_on_this_machine_every_gpu_line_is_skipped_with_its_reason(doctor_run):
    rows = _lines(doctor_run[0].stdout)
    for name in GPU_LINES:
        status, why = rows[name]
        assert status == "skipped" and why, (name, rows[name])
    assert "pycuda is not installed" in rows["cuda correlation"][1]
    assert "TensorRT is not installed" in rows["engine deform_conv"][1]


def test_json_report_has_the_same_checks(doctor_run):
    lines, done = doctor_run
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["passed"] is True and report["failed"] == 0
    by_name = {c["name"]: c for c in report["checks"]}
    assert {name: (c["status"], c["detail"]) for name, c in by_name.items()} == _lines(lines.stdout)
    assert all(c["fix"] is None for c in report["checks"])


def test_a_failing_check_is_a_fail_line_with_its_fix_and_exit_1(monkeypatch, capsys):
    def broken():
        raise Failed("correlation off by 0.5", "reinstall")

    monkeypatch.setattr(checks, "check_cpu_correlation", broken)
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert "FAIL    cpu correlation: correlation off by 0.5; fix: reinstall" in out
    assert any(line.startswith("ok      cpu deform_conv: ") for line in out)  # the others still run


def test_kernels_that_were_not_built_fail_with_how_to_build_them(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "dpanet", "doctor", "--json"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "DPANET_PLUGINS_LIB_DIR": str(tmp_path)},
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["passed"] is False
    failed = {c["name"]: c for c in report["checks"] if c["status"] == "FAIL"}
    assert {"cpu correlation", "cpu deform_conv"} <= set(failed)
    if not HAS_GPU_STACK:  # without a GPU, the CUDA library not being there is no failure
        assert report["failed"] == 2 == len(failed)
    assert failed["cpu correlation"]["detail"] == f"libdpanet_cpu.so was not built (looked in {tmp_path})"
    assert failed["cpu correlation"]["fix"].startswith("Reinstall with `pip install -e .`")


def test_an_unexpected_error_is_a_fail_line_not_a_traceback():
    def crash():
        raise ZeroDivisionError("boom")

    result = checks.run_check("x", crash)
    assert (result.status, result.detail) == ("FAIL", "ZeroDivisionError: boom")
    assert checks.run_check("y", lambda: (_ for _ in ()).throw(Skipped("why"))).line() == "skipped y: why"


def test_a_missing_model_file_is_one_line(tmp_path, capsys):
    assert main(["doctor", "--onnx", str(tmp_path / "none.onnx")]) == 1
    assert (
        capsys.readouterr().err.strip()
        == f"dpanet doctor: error: {tmp_path / 'none.onnx'}: no such file (--onnx)"
    )


def test_the_cpu_check_fails_on_a_wrong_kernel(monkeypatch):
    right = cpu.correlation
    monkeypatch.setattr(cpu, "correlation", lambda a, b, d: right(a, b, d) * np.float32(1.001))
    comparison = compare_cpu_correlation((1, 8, 9, 6), 4)
    assert not comparison.passed and "outside atol 1e-05" in comparison.describe()


def test_compare_rejects_non_finite_and_mismatched_outputs():
    a = np.zeros((1, 2, 3, 3), np.float32)
    assert compare("a", a, a, 1e-5).passed
    assert not compare("a", np.full_like(a, np.nan), a, 1e-5).passed
    assert not compare("a", a[:, :1], a, 1e-5).passed
    expected = a + 1.0
    assert compare("a", expected + 1.5e-3, expected, 1e-3, 1e-3).passed  # rtol * |expected| counts
    assert not compare("a", expected + 2.5e-3, expected, 1e-3, 1e-3).passed


def test_one_node_models_are_the_nodes_onnx_runtime_runs_with_our_kernels():
    """The one-node graphs doctor hands TensorRT, run here by ONNX Runtime's custom ops (CPU kernels)."""
    import onnxruntime as ort

    from dpanet.contract import CORRELATION, DEFORM_CONV
    from dpanet.runtime.engine_checks import one_node_model
    from dpanet.runtime.ort_plugin_ops import register_plugin_ops

    options = ort.SessionOptions()
    assert register_plugin_ops(options) is None
    first, second = correlation_case((1, 8, 9, 6), 4)
    model = one_node_model(
        CORRELATION, [("first", first.shape), ("second", second.shape)], [], {"max_displacement": 4}, "fp32"
    )
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(
        session.run(None, {"first": first, "second": second})[0], cpu.correlation(first, second, 4)
    )
    case = (1, 3, 7, 9, 4, 3, (2, 1), (2, 0), (1, 2), 1.5)
    x, offset, mask, weight, bias = dcn_case(*case)
    fields = dict(zip(cpu.plugin_field_names(DEFORM_CONV), (2, 1, 2, 0, 1, 2), strict=True))
    inputs = [("x", x.shape), ("offset", offset.shape), ("mask", mask.shape)]
    model = one_node_model(DEFORM_CONV, inputs, [("weight", weight), ("bias", bias)], fields, "fp32")
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x, "offset": offset, "mask": mask})[0]
    np.testing.assert_array_equal(
        got, cpu.modulated_deform_conv2d(x, offset, mask, weight, bias, (2, 1), (2, 0), (1, 2))
    )


def test_cuobjdump_listing_and_what_runs_on_a_gpu():
    listing = (
        "ELF file    1: libdpanet_cuda.1.sm_80.cubin\nELF file    2: libdpanet_cuda.2.sm_87.cubin\n"
        "ELF file    3: libdpanet_cuda.3.sm_90a.cubin\nPTX file    1: libdpanet_cuda.1.sm_90.ptx\n"
    )
    cubins, ptx = parse_cuobjdump(listing)
    assert (cubins, ptx) == ([80, 87, 90], [90])
    assert runs_on(cubins, ptx, "8.6") == "sm_80 code"  # same major, lower minor: binary compatible
    assert runs_on(cubins, ptx, "8.7") == "sm_87 code"
    assert runs_on(cubins, ptx, "12.0") == "PTX of compute_90, compiled for sm_120 at first load"
    assert runs_on(cubins, ptx, "7.5") is None  # a T4: no kernel image
    assert runs_on([87], [], "8.6") is None  # sm_87 code does not run on sm_86


def test_memory_estimate_and_the_advice():
    # 100 MiB of activations at 96x128 -> 153.1x the pixels at 1120x1680, plus 3 float32 buffers
    needed = memory_needed(100 << 20, (96, 128), (1120, 1680))
    assert needed == int((100 << 20) * 1120 * 1680 / (96 * 128)) + 3 * 3 * 4 * 1120 * 1680
    h, w = largest_fitting(needed // 4, needed, (1120, 1680))
    assert h % 8 == 0 and w % 8 == 0 and memory_needed(100 << 20, (96, 128), (h, w)) <= 0.8 * needed / 4
    assert (h, w) == (496, 744)  # sqrt(0.8 / 4) of each side, rounded down to a multiple of 8
    assert "needs about 15.02 GiB of 32.00 GiB free" in memory_verdict(32 << 30, 100 << 20, (96, 128))
    with pytest.raises(Failed) as failed:
        memory_verdict(8 << 30, 100 << 20, (96, 128))
    assert "needs about 15.02 GiB, 8.00 GiB is free" in failed.value.reason
    assert "--max 728x1096" in failed.value.fix and "--tile 728x1096" in failed.value.fix


def test_jetson_release():
    assert jetson_release("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic\n") == (
        "L4T R36.4.3 (JetPack 6.1 or newer)"
    )
    with pytest.raises(Failed, match="L4T R35.5.0: older than JetPack 6.1"):
        jetson_release("# R35 (release), REVISION: 5.0, GCID: 1, BOARD: t186ref\n")
    with pytest.raises(Failed, match="unrecognised"):
        jetson_release("garbage")


def test_a_kernel_without_code_for_this_gpu_is_the_architecture_fail():
    def launches(message):
        raise ValueError(message)
        yield

    no_image = "correlation kernel: no kernel image is available for execution on the device"
    with pytest.raises(Failed) as failed:
        checks._launched("correlation", launches(no_image))
    assert "built without this GPU's architecture" in failed.value.reason
    assert "CMAKE_CUDA_ARCHITECTURES" in failed.value.fix
    with pytest.raises(ValueError, match="differ in shape"):
        checks._launched("correlation", launches("first and second differ in shape"))


def test_a_model_engine_passes_only_within_both_parity_tolerances():
    from dpanet.runtime.engine_checks import ModelEngineResult
    from dpanet.runtime.parity import TOLERANCES

    fp16 = TOLERANCES["fp16"]
    result = ModelEngineResult("fp16", "plugin", 0.01, 50.0, fp16.atol, fp16.min_psnr, 1 << 20, (96, 128))
    assert result.passed and "within the parity tolerance (atol 0.02, 45 dB)" in result.describe()
    assert not ModelEngineResult("fp16", "plugin", 0.01, 44.9, fp16.atol, fp16.min_psnr, 1, (96, 128)).passed
    assert not ModelEngineResult("fp16", "plugin", 0.03, 60.0, fp16.atol, fp16.min_psnr, 1, (96, 128)).passed
