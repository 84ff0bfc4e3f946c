"""Training losses against hand computations and scikit-image's PSNR."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from dpanet.training.losses import PSNR_LOSS_FLOOR, charbonnier, psnr_loss


def test_psnr_loss_is_minus_the_mean_psnr_of_the_images():
    rng = np.random.default_rng(0)
    target = rng.random((3, 3, 9, 7))
    noise = np.array([0.03, 0.05, 0.2])[:, None, None, None]
    output = target + noise * rng.standard_normal(target.shape)
    pairs = zip(target, output, strict=True)
    psnr = np.array([peak_signal_noise_ratio(t, o, data_range=1) for t, o in pairs])
    loss = float(psnr_loss(torch.from_numpy(output), torch.from_numpy(target)))
    assert loss == pytest.approx(np.mean(10 * np.log10(10 ** (-psnr / 10) + PSNR_LOSS_FLOOR)), rel=1e-9)
    # the floor matters for nearly exact images only: it lifts a 30 dB image's term by 0.41 dB
    assert loss == pytest.approx(-psnr.mean(), abs=0.25)
    assert float(psnr_loss(torch.from_numpy(target), torch.from_numpy(target))) == pytest.approx(
        10 * np.log10(PSNR_LOSS_FLOOR)
    )


def test_psnr_loss_weights_every_image_alike_where_mse_weights_by_error():
    errors = (0.02, 0.2)
    output = torch.tensor(errors).reshape(2, 1, 1, 1).expand(2, 1, 4, 4).clone().requires_grad_()
    psnr_loss(output, torch.zeros_like(output)).backward()
    # d/de of 10 log10(e^2 + floor) is proportional to e / (e^2 + floor): near 1 / e, so the
    # image with a tenth of the error gets about ten times the gradient (MSE: a tenth)
    weight = [e / (e * e + PSNR_LOSS_FLOOR) for e in errors]
    ratio = output.grad[0].mean() / output.grad[1].mean()
    assert float(ratio) == pytest.approx(weight[0] / weight[1], rel=1e-5)
    assert 7 < float(ratio) < 10


def test_charbonnier_matches_a_hand_computation():
    output, target = torch.tensor([[[[0.0, 0.5]]]]), torch.tensor([[[[0.0, 0.0]]]])
    expected = (np.sqrt(1e-6) + np.sqrt(0.25 + 1e-6)) / 2
    assert float(charbonnier(output, target)) == pytest.approx(expected)
