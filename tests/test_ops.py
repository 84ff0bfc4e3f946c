"""The PyTorch ops against slow float64 loops (docs/ops.md), gradients, fake kernels, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dpanet.plugins.op_cases import CORRELATION_CASES, DCN_CASES, correlation_case, dcn_case
from dpanet.plugins.reference_ops import correlation_reference, deform_conv_reference
from dpanet.training.ops import correlation, modulated_deform_conv2d

F32_TOL = 1e-5


@pytest.mark.parametrize("shape, d", CORRELATION_CASES)
def test_correlation_matches_loops(shape, d):
    first, second = correlation_case(shape, d)
    out = correlation(torch.from_numpy(first), torch.from_numpy(second), d)
    assert out.shape == (shape[0], (2 * d + 1) ** 2, shape[2], shape[3])
    np.testing.assert_allclose(out.numpy(), correlation_reference(first, second, d), atol=F32_TOL, rtol=0)


def test_correlation_channel_order_is_dx_fastest():
    first = torch.zeros(1, 1, 5, 5)
    second = torch.zeros(1, 1, 5, 5)
    first[0, 0, 2, 2] = 1
    second[0, 0, 1, 3] = 1  # dy = -1, dx = +1 from the centre
    out = correlation(first, second, 1)
    k = (-1 + 1) * 3 + (1 + 1)
    assert out[0, k, 2, 2] == 1
    assert out.sum() == 1


def _dcn_case(seed, n, c, h, w, o, k, stride, padding, dilation, offset_scale):
    case = dcn_case(n, c, h, w, o, k, stride, padding, dilation, offset_scale, seed=seed)
    return tuple(torch.from_numpy(a) for a in case)


@pytest.mark.parametrize("n, c, h, w, o, k, stride, padding, dilation, offset_scale", DCN_CASES)
def test_deform_conv_matches_loops(n, c, h, w, o, k, stride, padding, dilation, offset_scale):
    args = dcn_case(n, c, h, w, o, k, stride, padding, dilation, offset_scale)
    out = modulated_deform_conv2d(*(torch.from_numpy(a) for a in args), stride, padding, dilation)
    ref = deform_conv_reference(*args, stride, padding, dilation)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.numpy(), ref, atol=F32_TOL, rtol=0)


def test_deform_conv_border_and_mask_extremes():
    """Fractional points just inside/outside each border, masks exactly 0 and 1, no bias."""
    x, _, _, weight, _ = _dcn_case(7, 1, 3, 5, 6, 2, 3, (1, 1), (1, 1), (1, 1), 1.0)
    ho, wo = 5, 6
    offset = torch.empty(1, 18, ho, wo)
    choices = torch.tensor([-1.5, -1.0, -0.999, -0.25, 0.0, 0.25, 0.999, 1.0, 1.5, 5.0, -7.0])
    g = torch.Generator().manual_seed(3)
    offset.copy_(choices[torch.randint(len(choices), offset.shape, generator=g)])
    mask = (torch.rand(1, 9, ho, wo, generator=g) > 0.5).float()
    out = modulated_deform_conv2d(x, offset, mask, weight, None, 1, 1, 1)
    ref = deform_conv_reference(x.numpy(), offset.numpy(), mask.numpy(), weight.numpy(), None)
    np.testing.assert_allclose(out.numpy(), ref, atol=F32_TOL, rtol=0)
    zero = modulated_deform_conv2d(x, offset, torch.zeros_like(mask), weight, None, 1, 1, 1)
    assert torch.count_nonzero(zero) == 0


def test_zero_offsets_and_unit_mask_equal_a_convolution():
    x, _, _, weight, bias = _dcn_case(11, 2, 4, 8, 7, 5, 3, (1, 1), (1, 1), (1, 1), 0.0)
    offset = torch.zeros(2, 18, 8, 7)
    mask = torch.ones(2, 9, 8, 7)
    out = modulated_deform_conv2d(x, offset, mask, weight, bias, 1, 1, 1)
    expected = torch.nn.functional.conv2d(x, weight, bias, padding=1)
    torch.testing.assert_close(out, expected, atol=F32_TOL, rtol=0)


def test_deform_conv_gradcheck():
    args = _dcn_case(5, 2, 2, 4, 5, 3, 3, (1, 2), (1, 1), (2, 1), 1.3)
    inputs = tuple(a.double().requires_grad_() for a in args)
    assert torch.autograd.gradcheck(
        lambda *t: modulated_deform_conv2d(*t, (1, 2), (1, 1), (2, 1)), inputs, eps=1e-6, atol=1e-5
    )


def test_correlation_gradcheck():
    g = torch.Generator().manual_seed(2)
    a = torch.rand(2, 3, 4, 5, generator=g, dtype=torch.float64).requires_grad_()
    b = torch.rand(2, 3, 4, 5, generator=g, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda p, q: correlation(p, q, 2), (a, b))


def test_fake_kernels_give_shapes_on_meta():
    a = torch.empty(2, 16, 24, 40, device="meta")
    assert correlation(a, a, 4).shape == (2, 81, 24, 40)
    x = torch.empty(1, 8, 11, 13, device="meta")
    out = modulated_deform_conv2d(
        x,
        torch.empty(1, 18, 6, 13, device="meta"),
        torch.empty(1, 9, 6, 13, device="meta"),
        torch.empty(4, 8, 3, 3, device="meta"),
        None,
        (2, 1),
        (1, 1),
        (1, 1),
    )
    assert out.shape == (1, 4, 6, 13)


def test_bfloat16_autocast_stays_close():
    args = _dcn_case(9, 1, 16, 12, 10, 8, 3, (1, 1), (1, 1), (1, 1), 2.0)
    reference = modulated_deform_conv2d(*args, 1, 1, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = modulated_deform_conv2d(*args, 1, 1, 1)
        cost = correlation(args[0], args[0], 2)
    assert low.dtype == torch.bfloat16
    assert cost.dtype == torch.float32  # correlation is kept in float32 under autocast
    assert (low.float() - reference).abs().max() < 0.03


@pytest.mark.parametrize(
    "change, message",
    [
        ({"offset": torch.zeros(1, 16, 5, 5)}, "offset has shape"),
        ({"mask": torch.zeros(1, 9, 4, 5)}, "mask has shape"),
        ({"weight": torch.zeros(2, 4, 3, 3)}, "input channels"),
        ({"bias": torch.zeros(3)}, "bias has shape"),
        ({"stride": (0, 1)}, "stride >= 1"),
        ({"x": torch.zeros(1, 3, 5, 5, dtype=torch.float64)}, "mix dtypes"),
    ],
)
def test_deform_conv_rejects_bad_arguments(change, message):
    args = {
        "x": torch.zeros(1, 3, 5, 5),
        "offset": torch.zeros(1, 18, 5, 5),
        "mask": torch.zeros(1, 9, 5, 5),
        "weight": torch.zeros(2, 3, 3, 3),
        "bias": torch.zeros(2),
        "stride": (1, 1),
        "padding": (1, 1),
        "dilation": (1, 1),
    }
    args.update(change)
    with pytest.raises(ValueError, match=message):
        modulated_deform_conv2d(**args)


def test_correlation_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="differ in shape"):
        correlation(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 5), 1)
    with pytest.raises(ValueError, match="max_displacement"):
        correlation(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4), -1)
