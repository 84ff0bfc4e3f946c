"""The CUDA kernels through their C launchers, against the CPU kernels: the checks `dpanet doctor`
runs (dpanet.runtime.kernel_checks, device memory through pycuda; one source).

float32 within 1e-5. float16: the kernels read float16, compute in float32 and round the output
once, so they are compared with the CPU kernels on the same float16-rounded inputs within
atol = rtol = 2e-3 (float16's spacing is 2^-11 ~ 4.9e-4 relative, plus accumulation order). The
CPU kernels are checked against the PyTorch ops and the float64 loops in tests/test_plugins_cpu.py.
"""

from __future__ import annotations

import shutil

import pytest

from dpanet.plugins.op_cases import CORRELATION_CASES, DCN_CASES
from dpanet.runtime.checks import Failed, Machine, Skipped, cuda_library_path
from dpanet.runtime.kernel_checks import CUDA_TOLERANCES, compare_cuda_correlation, compare_cuda_deform_conv


@pytest.fixture(scope="module")
def gpu():
    """The GPU as doctor finds it; skips with doctor's reason (no pycuda, no device, no library)."""
    machine = Machine()
    try:
        machine.gpu()
    except Skipped as exc:
        pytest.skip(f"needs a CUDA device: {exc}")
    try:
        cuda_library_path()
    except Failed as exc:
        pytest.skip(str(exc))
    return machine


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("shape, d", CORRELATION_CASES)
def test_correlation_matches_the_cpu_kernel(gpu, shape, d, precision):
    comparison = compare_cuda_correlation(shape, d, precision)
    assert (comparison.atol, comparison.rtol) == CUDA_TOLERANCES[precision]
    assert comparison.passed, comparison.describe()


@pytest.mark.gpu
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("case", DCN_CASES)
def test_deform_conv_matches_the_cpu_kernel(gpu, case, precision, with_bias):
    comparison = compare_cuda_deform_conv(case, precision, with_bias=with_bias)
    assert comparison.passed, comparison.describe()


@pytest.mark.gpu
def test_deform_conv_with_binary_masks_matches_the_cpu_kernel(gpu):
    case = (1, 8, 9, 7, 5, 3, (1, 1), (1, 1), (1, 1), 3.0)
    comparison = compare_cuda_deform_conv(case, "fp32", with_bias=False, binary_mask=True)
    assert comparison.passed, comparison.describe()


def test_launchers_reject_bad_shapes_before_touching_memory():
    """The launchers validate on the host, so this runs without a GPU (null pointers)."""
    if shutil.which("nvcc") is None:
        pytest.skip("no nvcc on PATH: the install skips the CUDA kernels")
    from dpanet.plugins import cuda

    with pytest.raises(ValueError, match="differ in shape"):
        cuda.correlation_into(
            cuda.DeviceTensor(0, (1, 2, 3, 4)), cuda.DeviceTensor(0, (1, 2, 3, 5)), 1, cuda.FLOAT32, 0
        )
    shapes = ((1, 3, 5, 5), (1, 16, 5, 5), (1, 9, 5, 5), (2, 3, 3, 3))
    with pytest.raises(ValueError, match="offset has shape"):
        cuda.deform_conv_into(*(cuda.DeviceTensor(0, s) for s in shapes), None, 1, 1, 1, cuda.FLOAT32, 0, 0)
