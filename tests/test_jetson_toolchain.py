"""JetPack 6's compiler on x86: the plugins' CMake project cross-built for aarch64 with Debian's
g++-11-aarch64-linux-gnu (warnings as errors), the CPU kernels' C++ tests run under qemu-aarch64
against the same float64 references as on x86 (the NEON path), and the TensorRT 10.3 plugins' host
code compiled against the 10.3 headers (docs/plugins.md, "Cross build for Jetson")."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import SHARED

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "build" / "aarch64"
COMPILER = "aarch64-linux-gnu-g++-11"
TENSORRT_10 = SHARED / "third_party" / "tensorrt" / "10.3" / "include"
CUDA_INCLUDE = Path("/usr/local/cuda/include")


def _run(cmd: list[str], **kwargs) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _aarch64_openblas() -> Path:
    """The scipy-openblas32 aarch64 wheel, downloaded once and unpacked under build/aarch64."""
    unpacked = BUILD / "openblas"
    if not (unpacked / "scipy_openblas32" / "include" / "cblas.h").is_file():
        wheels = BUILD / "wheels"
        wheels.mkdir(parents=True, exist_ok=True)
        pip = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--no-deps"]
        platform = ["--platform", "manylinux2014_aarch64", "-d", str(wheels), "scipy-openblas32"]
        _run(pip + platform)
        (wheel,) = wheels.glob("scipy_openblas32-*aarch64*.whl")
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(unpacked)
    return unpacked / "scipy_openblas32"


@pytest.fixture(scope="module")
def aarch64_build() -> Path:
    missing = [tool for tool in (COMPILER, "qemu-aarch64", "cmake") if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"needs {', '.join(missing)}: apt-get install g++-11-aarch64-linux-gnu qemu-user "
            "(README.md, Development)"
        )
    openblas = _aarch64_openblas()
    options = [
        "--toolchain",
        str(REPO / "plugins" / "cmake" / "aarch64-linux-gnu.cmake"),
        "-DDPANET_BUILD_CUDA=OFF",
        "-DDPANET_WARNINGS_AS_ERRORS=ON",
        f"-DDPANET_OPENBLAS_INCLUDE_DIR={openblas / 'include'}",
        f"-DDPANET_OPENBLAS_LIBRARY={openblas / 'lib' / 'libscipy_openblas.so'}",
    ]
    if (TENSORRT_10 / "NvInferRuntime.h").is_file() and (CUDA_INCLUDE / "cuda_runtime_api.h").is_file():
        options += [
            "-DDPANET_TENSORRT_HOST_ONLY=ON",
            f"-DTensorRT_INCLUDE_DIR={TENSORRT_10}",
            f"-DDPANET_CUDA_INCLUDE_DIR={CUDA_INCLUDE}",
        ]
    _run(["cmake", "-S", str(REPO / "plugins"), "-B", str(BUILD / "cmake"), *options])
    _run(["cmake", "--build", str(BUILD / "cmake"), "-j", "2"])
    return BUILD / "cmake"


@pytest.mark.slow
def test_cpu_kernels_pass_their_references_on_aarch64_under_qemu(aarch64_build):
    header = (aarch64_build / "libdpanet_cpu.so").read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 183  # EM_AARCH64
    out = _run(["ctest", "--output-on-failure"], cwd=aarch64_build)
    assert "100% tests passed" in out
    assert "cpu_kernels_baseline" in out and "op_rules" in out
    # the kernels ran as dispatched on aarch64: the baseline, whose 128-bit vectors are NEON
    detail = _run(["ctest", "-V", "-R", "^cpu_kernels$"], cwd=aarch64_build)
    assert "CPU kernels: baseline" in detail
    assert "deform_conv 16x96x40 -> 3 threads=1: done" in detail


@pytest.mark.slow
def test_tensorrt_10_plugin_host_code_compiles_for_aarch64(aarch64_build):
    if not (TENSORRT_10 / "NvInferRuntime.h").is_file():
        pytest.skip(f"needs the TensorRT 10.3 headers at {TENSORRT_10} (set DPANET_SHARED to ../shared)")
    if not (CUDA_INCLUDE / "cuda_runtime_api.h").is_file():
        pytest.skip(f"needs CUDA's headers at {CUDA_INCLUDE}")
    objects = sorted(
        p.name for p in (aarch64_build / "CMakeFiles").glob("dpanet_trt10_host_check.dir/**/*.o")
    )
    assert objects == sorted(
        [
            "correlation_plugin.cpp.o",
            "deform_conv_plugin.cpp.o",
            "plugin_entry.cpp.o",
            "plugin_support.cpp.o",
            "test_trt_plugins.cpp.o",
        ]
    )
