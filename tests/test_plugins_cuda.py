"""The CUDA kernels through their C launchers on torch CUDA tensors, against the PyTorch ops.

float32 within 1e-5. float16: the kernels read float16, compute in float32 and round the output
once, so they are compared with the float32 PyTorch op on the same float16-rounded inputs within
atol = rtol = 2e-3 (float16's spacing is 2^-11 ~ 4.9e-4 relative, plus accumulation order).
"""

from __future__ import annotations

import pytest
import torch

from dpanet.plugins._library import LibraryNotBuilt
from dpanet.training.ops import correlation, modulated_deform_conv2d

from op_cases import CORRELATION_CASES, DCN_CASES, correlation_case, dcn_case

pytestmark = pytest.mark.gpu

TOLERANCE = {torch.float32: 1e-5, torch.float16: 2e-3}


@pytest.fixture(scope="module")
def cuda_ops():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device: torch.cuda.is_available() is False")
    from dpanet.plugins import cuda

    try:
        cuda._lib()
    except LibraryNotBuilt as exc:
        pytest.skip(str(exc))
    return cuda


def _on_gpu(arrays, dtype):
    return [torch.from_numpy(a).to("cuda", dtype) for a in arrays]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("shape, d", CORRELATION_CASES)
def test_correlation_matches_pytorch(cuda_ops, shape, d, dtype):
    first, second = _on_gpu(correlation_case(shape, d), dtype)
    out = cuda_ops.correlation(first, second, d)
    torch.cuda.synchronize()
    expected = correlation(first.float(), second.float(), d)
    assert out.dtype == dtype
    tol = TOLERANCE[dtype]
    torch.testing.assert_close(out.float(), expected, atol=tol, rtol=0 if dtype == torch.float32 else tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("case", DCN_CASES)
def test_deform_conv_matches_pytorch(cuda_ops, case, dtype):
    stride, padding, dilation = case[6:9]
    args = _on_gpu(dcn_case(*case), dtype)
    out = cuda_ops.modulated_deform_conv2d(*args, stride, padding, dilation)
    torch.cuda.synchronize()
    expected = modulated_deform_conv2d(*(a.float() for a in args), stride, padding, dilation)
    assert out.dtype == dtype
    tol = TOLERANCE[dtype]
    torch.testing.assert_close(out.float(), expected, atol=tol, rtol=0 if dtype == torch.float32 else tol)


def test_deform_conv_without_bias_and_binary_masks(cuda_ops):
    case = dcn_case(1, 8, 9, 7, 5, 3, (1, 1), (1, 1), (1, 1), 3.0)
    x, offset, mask, weight, _ = _on_gpu(case, torch.float32)
    mask = (mask > 0.5).float()
    out = cuda_ops.modulated_deform_conv2d(x, offset, mask, weight, None, 1, 1, 1)
    expected = modulated_deform_conv2d(x, offset, mask, weight, None, 1, 1, 1)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_launchers_reject_bad_shapes(cuda_ops):
    a = torch.zeros(1, 2, 3, 4, device="cuda")
    with pytest.raises(ValueError, match="differ in shape"):
        cuda_ops.correlation(a, torch.zeros(1, 2, 3, 5, device="cuda"), 1)
    x = torch.zeros(1, 3, 5, 5, device="cuda")
    with pytest.raises(ValueError, match="offset has shape"):
        cuda_ops.modulated_deform_conv2d(
            x,
            torch.zeros(1, 16, 5, 5, device="cuda"),
            torch.zeros(1, 9, 5, 5, device="cuda"),
            torch.zeros(2, 3, 3, 3, device="cuda"),
            None,
        )
