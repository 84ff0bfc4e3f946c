"""The C++ CPU kernels (dpanet.plugins.cpu) against the PyTorch ops and the float64 loops."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from dpanet.plugins import cpu
from dpanet.plugins.op_cases import CORRELATION_CASES, DCN_CASES, correlation_case, dcn_case, uniform
from dpanet.plugins.reference_ops import correlation_reference, deform_conv_reference
from dpanet.training.ops import correlation, modulated_deform_conv2d

F32_TOL = 1e-5


@pytest.mark.parametrize("shape, d", CORRELATION_CASES)
def test_correlation_matches_pytorch(shape, d):
    first, second = correlation_case(shape, d)
    out = cpu.correlation(first, second, d)
    expected = correlation(torch.from_numpy(first), torch.from_numpy(second), d).numpy()
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=F32_TOL, rtol=0)


def test_correlation_matches_loops_and_threads_agree():
    rng = np.random.default_rng(1)
    first, second = uniform(rng, 2, 4, 7, 19), uniform(rng, 2, 4, 7, 19)
    out = cpu.correlation(first, second, 2, threads=1)
    np.testing.assert_allclose(out, correlation_reference(first, second, 2), atol=F32_TOL, rtol=0)
    np.testing.assert_array_equal(out, cpu.correlation(first, second, 2, threads=2))


@pytest.mark.parametrize("n, c, h, w, o, k, stride, padding, dilation, offset_scale", DCN_CASES)
def test_deform_conv_matches_pytorch(n, c, h, w, o, k, stride, padding, dilation, offset_scale):
    args = dcn_case(n, c, h, w, o, k, stride, padding, dilation, offset_scale)
    out = cpu.modulated_deform_conv2d(*args, stride, padding, dilation)
    expected = modulated_deform_conv2d(
        *(torch.from_numpy(a) for a in args), stride, padding, dilation
    ).numpy()
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=F32_TOL, rtol=0)


def test_deform_conv_matches_loops_at_borders_with_binary_masks():
    """Points just inside/outside each border and far away, masks exactly 0 and 1, no bias."""
    x, _, _, weight, _ = dcn_case(1, 3, 5, 6, 2, 3, (1, 1), (1, 1), (1, 1), 1.0, seed=7)
    rng = np.random.default_rng(3)
    choices = np.array([-1.5, -1.0, -0.999, -0.25, 0.0, 0.25, 0.999, 1.0, 1.5, 5.0, -7.0, 1e6], np.float32)
    offset = choices[rng.integers(len(choices), size=(1, 18, 5, 6))]
    mask = (rng.random((1, 9, 5, 6)) > 0.5).astype(np.float32)
    out = cpu.modulated_deform_conv2d(x, offset, mask, weight, None, 1, 1, 1)
    expected = deform_conv_reference(x, offset, mask, weight, None)
    np.testing.assert_allclose(out, expected, atol=F32_TOL, rtol=0)
    zero = cpu.modulated_deform_conv2d(x, offset, np.zeros_like(mask), weight, None, 1, 1, 1)
    assert not zero.any()


def test_zero_offsets_and_unit_mask_equal_a_convolution():
    x, _, _, weight, bias = dcn_case(2, 4, 8, 7, 5, 3, (1, 1), (1, 1), (1, 1), 0.0, seed=11)
    out = cpu.modulated_deform_conv2d(
        x, np.zeros((2, 18, 8, 7), np.float32), np.ones((2, 9, 8, 7), np.float32), weight, bias
    )
    expected = torch.nn.functional.conv2d(*(torch.from_numpy(a) for a in (x, weight, bias)), padding=1)
    np.testing.assert_allclose(out, expected.numpy(), atol=F32_TOL, rtol=0)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_deform_conv_over_many_chunks_matches_pytorch(threads):
    """300 channels (not a multiple of the vector width) over 61 x 67 pixels: tap blocks of at most
    1 MiB make several rounds of chunks, the last one shorter; every thread count gives the op's result."""
    args = dcn_case(2, 300, 61, 67, 5, 3, (1, 1), (1, 1), (1, 1), 3.0, seed=5)
    out = cpu.modulated_deform_conv2d(*args, 1, 1, 1, threads=threads)
    expected = modulated_deform_conv2d(*(torch.from_numpy(a) for a in args), 1, 1, 1).numpy()
    np.testing.assert_allclose(out, expected, atol=F32_TOL, rtol=0)


def test_deform_conv_reuses_its_kept_workspace_between_shapes():
    """The calling thread's kept workspace is reused by a smaller call and grown by a larger one."""
    large = dcn_case(1, 24, 23, 19, 6, 3, (1, 1), (1, 1), (1, 1), 2.0, seed=8)
    small = dcn_case(1, 7, 9, 5, 4, 3, (1, 1), (1, 1), (1, 1), 2.0, seed=9)
    results = [cpu.modulated_deform_conv2d(*case, 1, 1, 1) for case in (small, large, small, large)]
    for case, out in zip((small, large), results[:2], strict=True):
        expected = modulated_deform_conv2d(*(torch.from_numpy(a) for a in case), 1, 1, 1).numpy()
        np.testing.assert_allclose(out, expected, atol=F32_TOL, rtol=0)
    np.testing.assert_array_equal(results[0], results[2])
    np.testing.assert_array_equal(results[1], results[3])


def test_deform_conv_without_input_channels_is_the_bias():
    x = np.zeros((1, 0, 5, 6), np.float32)
    offset, mask = np.ones((1, 18, 5, 6), np.float32), np.ones((1, 9, 5, 6), np.float32)
    bias = np.array([1.0, -2.0, 3.5], np.float32)
    out = cpu.modulated_deform_conv2d(x, offset, mask, np.zeros((3, 0, 3, 3), np.float32), bias, 1, 1, 1)
    np.testing.assert_array_equal(out, np.broadcast_to(bias[None, :, None, None], (1, 3, 5, 6)))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"offset": np.zeros((1, 16, 5, 5), np.float32)}, "offset has shape"),
        ({"mask": np.zeros((1, 9, 4, 5), np.float32)}, "mask has shape"),
        ({"weight": np.zeros((2, 4, 3, 3), np.float32)}, "input channels"),
        ({"bias": np.zeros(3, np.float32)}, "bias has shape"),
        ({"stride": (0, 1)}, "stride >= 1"),
        ({"padding": (1, 2, 3)}, "padding must be"),
        ({"x": np.zeros((1, 3, 5, 5))}, "x must be a C-contiguous float32 array, got a C-contiguous float64"),
        ({"x": np.zeros((1, 5, 5, 3), np.float32).transpose(0, 3, 1, 2)}, "non-contiguous"),
        ({"mask": np.zeros((9, 5, 5), np.float32)}, "mask must be 4-D"),
    ],
)
def test_deform_conv_rejects_bad_arguments(change, message):
    args = {
        "x": np.zeros((1, 3, 5, 5), np.float32),
        "offset": np.zeros((1, 18, 5, 5), np.float32),
        "mask": np.zeros((1, 9, 5, 5), np.float32),
        "weight": np.zeros((2, 3, 3, 3), np.float32),
        "bias": np.zeros(2, np.float32),
        "stride": (1, 1),
        "padding": (1, 1),
        "dilation": (1, 1),
    }
    args.update(change)
    with pytest.raises(ValueError, match=message):
        cpu.modulated_deform_conv2d(**args)


def test_correlation_rejects_bad_arguments():
    a = np.zeros((1, 2, 3, 4), np.float32)
    with pytest.raises(ValueError, match="differ in shape"):
        cpu.correlation(a, np.zeros((1, 2, 3, 5), np.float32), 1)
    with pytest.raises(ValueError, match="max_displacement must be >= 0"):
        cpu.correlation(a, a, -1)
    with pytest.raises(ValueError, match="zero channels"):
        empty = np.zeros((1, 0, 3, 4), np.float32)
        cpu.correlation(empty, empty, 1)


def test_workspace_is_reported_and_bounded():
    small = cpu.deform_conv_workspace_bytes((1, 64, 32, 32), (64, 64, 3, 3), threads=2)
    large = cpu.deform_conv_workspace_bytes((1, 64, 256, 256), (64, 64, 3, 3), threads=2)
    image, weight = 64 * 256 * 256 * 4, 64 * 64 * 9 * 4
    # the channels-last copy of the image, the reordered weight and, per thread, one tap's column block
    # of at most 1 MiB (OpenBLAS's own buffers are not counted)
    assert image + weight < large <= image + weight + 2 * 2**20
    assert 0 < small < large
    assert cpu.deform_conv_workspace_bytes((1, 3, 5, 5), (2, 4, 3, 3)) == 0  # invalid shapes


def test_deform_conv_that_cannot_allocate_its_workspace_raises_memory_error():
    """Shapes whose channels-last copy would be 1 PiB (more than any address space): the library
    reports it as MemoryError with the size, and leaves the output untouched."""
    big = 1 << 21
    tiny = np.zeros(16, np.float32)
    out = np.full(16, 7.0, np.float32)
    ptr = cpu._ptr
    shapes = [(1, 64, big, big), (1, 18, big, big), (1, 9, big, big), (4, 64, 3, 3)]
    tensors = [v for shape in shapes for v in (ptr(tiny), cpu.shape_array(shape))]
    lib = cpu._lib()
    with pytest.raises(
        MemoryError, match=r"modulated_deform_conv2d: out of memory for its workspace of \d+ MiB"
    ):
        cpu._call(lib.dpanet_deform_conv_cpu, *tensors, ptr(tiny), 4, cpu.attrs_array(1, 1, 1), ptr(out), 2)
    assert (out == 7.0).all()


def test_cpu_wrapper_imports_and_runs_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np\n"
        "from dpanet.plugins import cpu\n"
        "a = np.ones((1, 2, 3, 4), np.float32)\n"
        "print(cpu.correlation(a, a, 1)[0, 4, 1, 1])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "1.0"
