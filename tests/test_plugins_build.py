"""The plugins' CMake project: its C++ unit tests (ctest) and which libraries the install built."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dpanet.plugins._library import LibraryNotBuilt, library_path

from conftest import SHARED

REPO = Path(__file__).resolve().parents[1]
# the TensorRT headers each plugin library is compiled and unit-tested against, by major version
TENSORRT_HEADERS = {
    major: SHARED / "third_party" / "tensorrt" / version / "include"
    for major, version in (("10", "10.3"), ("11", "11.1"))
}
CTEST_BUILD = REPO / "build" / "ctest"


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _headers_or_skip(major: str) -> Path:
    headers = TENSORRT_HEADERS[major]
    if shutil.which("nvcc") is None:
        pytest.skip("no nvcc on PATH: the plugin libraries need the CUDA kernels")
    if not (headers / "NvInferRuntime.h").is_file():
        pytest.skip(f"needs the TensorRT {major} headers at {headers} (set DPANET_SHARED to ../shared)")
    return headers


@pytest.fixture(scope="module")
def ctest_build() -> Path:
    """A standalone build of plugins/ with its tests (kept in build/ctest, so reruns are incremental):
    warnings as errors, one CUDA architecture (the default list is checked on the installed library),
    the CUDA objects compiled once and linked into both plugin libraries."""
    if shutil.which("cmake") is None:
        pytest.skip("needs cmake on PATH to build the C++ tests")
    headers = [h for h in TENSORRT_HEADERS.values() if (h / "NvInferRuntime.h").is_file()]
    _run(
        [
            "cmake",
            "-S",
            str(REPO / "plugins"),
            "-B",
            str(CTEST_BUILD),
            "-DDPANET_BUILD_TESTS=ON",
            "-DDPANET_WARNINGS_AS_ERRORS=ON",  # the project's own builds; users' builds only warn
            "-DCMAKE_CUDA_ARCHITECTURES=87",
            f"-DPython3_EXECUTABLE={sys.executable}",  # the one with scipy-openblas32 installed
            f"-DTensorRT_INCLUDE_DIR={';'.join(str(h) for h in headers)}",
        ]
    )
    _run(["cmake", "--build", str(CTEST_BUILD), "-j", "2"])
    return CTEST_BUILD


@pytest.mark.slow
def test_cpp_unit_tests_pass(ctest_build):
    out = _run(["ctest", "--output-on-failure"], cwd=ctest_build)
    assert "100% tests passed" in out
    assert "op_rules" in out


@pytest.mark.slow
@pytest.mark.parametrize("major", sorted(TENSORRT_HEADERS))
def test_plugin_library_is_built_and_tested_per_tensorrt_major(ctest_build, major):
    _headers_or_skip(major)
    assert (ctest_build / f"libdpanet_trt{major}_plugins.so").is_file()
    out = _run(["ctest", "--output-on-failure", "-R", f"trt{major}_plugins"], cwd=ctest_build)
    assert "1/1 Test #" in out and "Passed" in out


@pytest.mark.slow
@pytest.mark.parametrize("major", sorted(TENSORRT_HEADERS))
def test_plugins_follow_tensorrts_call_sequence_per_major(ctest_build, major):
    """Both plugins through the ONNX parser's, builder's and runtime's calls with that major's
    headers, without libnvinfer (plugins/tests/test_trt_harness.cpp); it prints its case counts."""
    _headers_or_skip(major)
    out = _run(["ctest", "--output-on-failure", "-V", "-R", f"trt{major}_harness"], cwd=ctest_build)
    assert "1/1 Test #" in out and "Passed" in out
    for plugin in ("DPANetCorrelation", "DPANetModulatedDeformConv2d"):
        counts = re.search(rf"{plugin}, TensorRT {major}\.\d+\.\d+ headers: (\d+) call sequences", out)
        assert counts and int(counts.group(1)) > 0, out


@pytest.mark.slow
def test_libraries_export_only_their_entry_points(ctest_build):
    """Internal symbols stay hidden: the CUDA launchers linked into a plugin library do not clash
    with libdpanet_cuda's in one process, and only TensorRT's two entry points are exported."""
    if shutil.which("nm") is None:
        pytest.skip("needs nm (binutils) to list the exported symbols")
    expected = {
        "libdpanet_cpu.so": lambda name: name.startswith("dpanet_"),
        "libdpanet_cuda.so": lambda name: name.startswith("dpanet_") and name.endswith(("_cuda", "_size")),
    }
    for major in TENSORRT_HEADERS:
        expected[f"libdpanet_trt{major}_plugins.so"] = lambda name: name in {"getCreators", "setLoggerFinder"}
    checked = 0
    for name, allowed in expected.items():
        if not (ctest_build / name).is_file():
            continue
        out = _run(["nm", "-D", "--defined-only", str(ctest_build / name)])
        symbols = [line.split()[-1] for line in out.splitlines() if line.strip()]
        assert symbols and all(allowed(s) for s in symbols), f"{name} exports {symbols}"
        checked += 1
    assert checked >= 1


@pytest.mark.slow
def test_cuda_kernels_match_the_cpu_kernels_in_emulation(ctest_build):
    """The CUDA kernels' code, run on the CPU thread by thread (plugins/tests/cuda_emulation.h)."""
    if shutil.which("nvcc") is None:
        pytest.skip("no nvcc on PATH: the CUDA kernels and their emulated test are not built")
    out = _run(["ctest", "--output-on-failure", "-R", "cuda_kernels"], cwd=ctest_build)
    assert "1/1 Test #" in out and "Passed" in out


@pytest.mark.slow
def test_cpu_kernels_pass_their_references_in_every_variant(ctest_build):
    """The dispatched kernels and each instruction-set variant this CPU runs (the others skip)."""
    out = _run(["ctest", "--output-on-failure", "-R", "^cpu_kernels"], cwd=ctest_build)
    assert "cpu_kernels_baseline" in out and "100% tests passed" in out


def _cuobjdump() -> str:
    """cuobjdump from PATH, the CUDA toolkit or the nvidia-cuda-cuobjdump wheel."""
    import importlib.util

    candidates = [shutil.which("cuobjdump"), "/usr/local/cuda/bin/cuobjdump"]
    spec = importlib.util.find_spec("nvidia")
    for root in spec.submodule_search_locations if spec else []:
        candidates += [str(p) for p in Path(root).glob("*/bin/cuobjdump")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip("needs cuobjdump (CUDA toolkit, or pip install nvidia-cuda-cuobjdump)")


def _cuda_architectures(library: Path) -> tuple[set[str], set[str]]:
    """(sm_XX of the cubins, sm_XX of the PTX) in a library's fat binary."""
    tool = _cuobjdump()
    elf = _run([tool, "--list-elf", str(library)])
    ptx = _run([tool, "--list-ptx", str(library)])
    return set(re.findall(r"\.(sm_\d+)\.cubin", elf)), set(re.findall(r"\.(sm_\d+)\.ptx", ptx))


def test_installed_cuda_library_runs_on_the_gpus_people_deploy_on():
    """The install's default architectures (no GPU visible at build time): T4, A100, A10/RTX 30xx,
    Orin, L4/RTX 40xx, H100 as cubins, and sm_90's PTX for newer GPUs (Blackwell, Thor)."""
    if shutil.which("nvcc") is None:
        pytest.skip("no nvcc on PATH: the install skips the CUDA kernels")
    try:
        library = library_path("cuda")
    except LibraryNotBuilt as exc:
        pytest.fail(f"nvcc exists but the CUDA library was not installed: {exc}")
    if (
        shutil.which("nvidia-smi")
        and subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0
    ):
        pytest.skip("a GPU was visible at install time: the library holds that GPU's architecture only")
    cubins, ptx = _cuda_architectures(library)
    assert cubins == {"sm_75", "sm_80", "sm_86", "sm_87", "sm_89", "sm_90"}
    assert ptx == {"sm_90"}


@pytest.mark.parametrize("warnings_as_errors", [None, "ON"])
def test_warnings_are_errors_only_when_the_tests_ask(tmp_path, warnings_as_errors):
    """Users' builds (pip, or cmake without options) must not fail on a compiler's new warning."""
    if shutil.which("cmake") is None:
        pytest.skip("needs cmake on PATH")
    options = ["-DDPANET_BUILD_CUDA=OFF", f"-DPython3_EXECUTABLE={sys.executable}"]
    if warnings_as_errors:
        options.append(f"-DDPANET_WARNINGS_AS_ERRORS={warnings_as_errors}")
    _run(["cmake", "-S", str(REPO / "plugins"), "-B", str(tmp_path), *options])
    flags = "".join(f.read_text() for f in tmp_path.glob("CMakeFiles/*.dir/flags.make"))
    assert "-Wall" in flags
    assert ("-Werror" in flags) == bool(warnings_as_errors)


def test_cuda_library_was_built_when_nvcc_exists():
    if shutil.which("nvcc") is None:
        pytest.skip("no nvcc on PATH: the install skips the CUDA kernels")
    from dpanet.plugins import cuda
    from dpanet.plugins.cpu import ERROR_SIZE, attrs_array, shape_array

    lib = cuda._lib()  # loads without a GPU; the validation and workspace rules run on the host
    assert lib.dpanet_deform_conv_cuda_workspace_size(shape_array((64, 32, 3, 3)), 1) == 64 * 32 * 9 * 2
    assert lib.dpanet_deform_conv_cuda_workspace_size(shape_array((64, 32, 3, 3)), 7) == 0
    error = ctypes.create_string_buffer(ERROR_SIZE)
    first, second = shape_array((1, 2, 3, 4)), shape_array((1, 2, 3, 5))
    assert lib.dpanet_correlation_cuda(None, first, None, second, 4, 0, None, None, error, ERROR_SIZE) == 1
    assert b"differ in shape" in error.value
    x, offset, mask, weight = (
        shape_array(s) for s in ((1, 3, 5, 5), (1, 16, 5, 5), (1, 9, 5, 5), (2, 3, 3, 3))
    )
    args = (None, x, None, offset, None, mask, None, weight, None, -1, attrs_array(1, 1, 1), 0, None, None, 0)
    assert lib.dpanet_deform_conv_cuda(*args, None, error, ERROR_SIZE) == 1
    assert b"offset has shape" in error.value


@pytest.mark.parametrize("backend", ["cpu", "cuda"])
def test_a_bias_size_without_a_bias_pointer_is_refused(backend):
    """A NULL bias with bias_size >= 0 is a caller's mistake on both backends, never a silent no-bias."""
    if backend == "cuda" and shutil.which("nvcc") is None:
        pytest.skip("no nvcc on PATH: the install skips the CUDA kernels")
    import numpy as np

    from dpanet.plugins import cpu, cuda
    from dpanet.plugins.cpu import ERROR_SIZE, attrs_array, shape_array

    shapes = [shape_array(s) for s in ((1, 3, 5, 5), (1, 18, 5, 5), (1, 9, 5, 5), (2, 3, 3, 3))]
    data = np.zeros(1024, np.float32)  # host memory: the call must stop at validation
    ptr = data.ctypes.data_as(cpu._FLOATS if backend == "cpu" else ctypes.c_void_p)
    error = ctypes.create_string_buffer(ERROR_SIZE)
    tensors = [arg for shape in shapes for arg in (ptr, shape)]
    if backend == "cpu":
        status = cpu._lib().dpanet_deform_conv_cpu(
            *tensors, None, 2, attrs_array(1, 1, 1), ptr, 1, error, ERROR_SIZE
        )
    else:
        status = cuda._lib().dpanet_deform_conv_cuda(
            *tensors, None, 2, attrs_array(1, 1, 1), 0, ptr, ptr, 4096, None, error, ERROR_SIZE
        )
    assert status == 1, error.value
    assert b"bias is NULL but bias_size is 2" in error.value


@pytest.mark.parametrize("major", sorted(TENSORRT_HEADERS))
def test_installed_tensorrt_library_exports_the_loader_entry_points(major):
    try:
        path = library_path(f"tensorrt{major}")
    except LibraryNotBuilt:
        pytest.skip(
            f"libdpanet_trt{major}_plugins was not installed: no TensorRT {major} headers at install time "
            "(docs/plugins.md)"
        )
    lib = ctypes.CDLL(str(path))  # links without libnvinfer
    assert lib.getCreators and lib.setLoggerFinder


def test_missing_library_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("DPANET_PLUGINS_LIB_DIR", str(tmp_path))
    with pytest.raises(LibraryNotBuilt, match="libdpanet_cpu.so was not built"):
        library_path("cpu")


def test_missing_plugin_library_says_how_to_build_it(monkeypatch, tmp_path):
    """build-engine of a plugin model ends here when the install found no TensorRT headers."""
    monkeypatch.setenv("DPANET_PLUGINS_LIB_DIR", str(tmp_path))
    with pytest.raises(LibraryNotBuilt) as error:
        library_path("tensorrt10")
    message = str(error.value)
    assert "libdpanet_trt10_plugins.so was not built" in message
    assert "no TensorRT 10 headers" in message and "TensorRT_ROOT" in message and "docs/plugins.md" in message
