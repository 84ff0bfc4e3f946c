"""An independent implementation of the released DPANet, written from
../shared/reference/architecture-notes.md directly on the release's own key names.

It shares no code with ``dpanet.training``: plain ``F.conv2d``, a cost volume from explicit
shifts, and a DCN built from ``grid_sample`` (one call per tap). Everything runs in float64.
Used to check that a release checkpoint, converted and run through ``dpanet deblur``, reproduces
the release's network.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

DISPLACEMENT = 4


def synthesize_release_checkpoint(key_file: Path, seed: int = 0) -> dict:
    """Random weights with the release's keys and shapes, in its ``final.pth`` layout.

    Scales keep activations O(1), residual branches small, offsets a few pixels large (so the DCNs
    sample off-grid and outside the image), and the output sigmoid away from saturation.
    """
    keys = json.loads(key_file.read_text())["keys"]
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in keys.items():
        if name.endswith(".bias"):
            value = torch.randn(shape, generator=g) * 0.02
        else:
            fan_in = shape[1] * shape[2] * shape[3]
            gain = 1.0
            if ".conv2." in name:
                gain = 0.3  # second conv of a residual block
            if "offset" in name:
                gain = 1.5  # offsets of about 1.5 px, some far outside at borders
            if name.startswith("out."):
                gain = 3.0  # the head: spread the output over the sigmoid's range
            value = torch.randn(shape, generator=g) * (gain / fan_in**0.5)
        state[f"module.{name}"] = value
    return {"G_state_dict": state}


class ReleaseReference:
    def __init__(self, release_checkpoint: dict) -> None:
        sd = release_checkpoint["G_state_dict"]
        self.p = {k.removeprefix("module."): v.to(torch.float64) for k, v in sd.items()}

    # -- layers -------------------------------------------------------------------------------
    def conv(self, x, name, stride=1, padding=None):
        w, b = self.p[f"{name}.weight"], self.p[f"{name}.bias"]
        k = w.shape[-1]
        return F.conv2d(x, w, b, stride=stride, padding=k // 2 if padding is None else padding)

    def same_conv(self, x, name):
        w = self.p[f"{name}.weight"]
        if w.shape[-1] % 2 == 1:
            return self.conv(x, name)
        return self.conv(F.pad(x, (0, 1, 0, 1)), name, padding=0)  # TF-style SAME for 2x2

    def rb(self, x, name):
        return x + self.conv(F.relu(self.conv(x, f"{name}.conv1")), f"{name}.conv2")

    def feature_block(self, x, name):
        x = F.relu(self.same_conv(x, f"{name}.conv_block.0"))
        return self.rb(self.rb(x, f"{name}.RB_1"), f"{name}.RB_2")

    @staticmethod
    def lrelu(x):
        return F.leaky_relu(x, 0.1)

    @staticmethod
    def up2(x):
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

    @staticmethod
    def correlation(a, b):
        c, h, w = a.shape[1:]
        d = DISPLACEMENT
        bp = F.pad(b, (d, d, d, d))
        planes = []
        for dy in range(-d, d + 1):
            for dx in range(-d, d + 1):
                shifted = bp[:, :, d + dy : d + dy + h, d + dx : d + dx + w]
                planes.append((a * shifted).sum(1) / c)
        return torch.stack(planes, 1)

    def dcn(self, x, raw, name):
        """3x3 modulated deformable conv (pad 1) from the predictor's 27 raw channels, by grid_sample."""
        o1, o2, m = torch.chunk(raw, 3, dim=1)
        offset = torch.cat((o1, o2), 1)
        mask = torch.sigmoid(m)
        n, c, h, w = x.shape
        ys = torch.arange(h, dtype=x.dtype).view(1, h, 1)
        xs = torch.arange(w, dtype=x.dtype).view(1, 1, w)
        weight, bias = self.p[f"{name}.weight"], self.p[f"{name}.bias"]
        out = bias.view(1, -1, 1, 1).expand(n, -1, h, w).clone()
        for t in range(9):
            ky, kx = divmod(t, 3)
            py = ys - 1 + ky + offset[:, 2 * t]
            px = xs - 1 + kx + offset[:, 2 * t + 1]
            grid = torch.stack(((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), dim=-1)
            sampled = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            out = out + torch.einsum("oc,nchw->nohw", weight[:, :, ky, kx], sampled * mask[:, t : t + 1])
        return out

    # -- network ------------------------------------------------------------------------------
    def predeblur(self, x):
        l1 = self.lrelu(self.conv(x, "predeblur.conv_first"))
        l2 = self.lrelu(self.conv(l1, "predeblur.deblur_L2_conv", stride=2))
        l3 = self.lrelu(self.conv(l2, "predeblur.deblur_L3_conv", stride=2))
        l2 = self.rb(l2, "predeblur.RB_L2_1") + self.up2(self.rb(l3, "predeblur.RB_L3_1"))
        l1 = self.rb(self.rb(l1, "predeblur.RB_L1_1"), "predeblur.RB_L1_2") + self.up2(
            self.rb(l2, "predeblur.RB_L2_2")
        )
        for i in (3, 4, 5):
            l1 = self.rb(l1, f"predeblur.RB_L1_{i}")
        return l1

    def __call__(self, left, right):
        left = left.to(torch.float64)
        right = right.to(torch.float64)
        xl, xr = self.predeblur(left), self.predeblur(right)
        cv = self.lrelu(self.correlation(xl, xr))
        skips = []
        for n in range(1, 5):
            e = f"encoder.encoder{n}"
            if n > 1:
                xl, xr, cv = F.max_pool2d(xl, 2), F.max_pool2d(xr, 2), F.max_pool2d(cv, 2)
            xl = self.feature_block(xl, f"{e}.block.block")
            xr = self.feature_block(xr, f"{e}.block.block")
            v = F.relu(self.conv(F.relu(self.conv(cv, f"{e}.flow_conv.0")), f"{e}.flow_conv.2"))
            context = torch.cat((xl, xr, v), 1)
            raw_l = self.conv(context, f"{e}.offset_l.offset_conv")
            raw_r = self.conv(context, f"{e}.offset_r.offset_conv")
            xl, xr = self.dcn(xl, raw_l, f"{e}.deform"), self.dcn(xr, raw_r, f"{e}.deform")
            skips.append((xl, xr))
            if n < 4:
                cv = self.lrelu(self.correlation(xl, xr))
        xd = torch.cat(
            (self.feature_block(xl, "encoder_5.block"), self.feature_block(xr, "encoder_5.block")), 1
        )
        for n, (sl, sr) in zip((4, 3, 2, 1), reversed(skips), strict=True):
            u = f"up{n}"
            xd = self.same_conv(F.interpolate(xd, scale_factor=2, mode="nearest"), f"{u}.upsample.up.1")
            dy, dx = sl.shape[2] - xd.shape[2], sl.shape[3] - xd.shape[3]
            xd = F.pad(xd, (dx // 2, dx - dx // 2, dy // 2, dy - dy // 2))
            sl = self.dcn(sl, self.conv(torch.cat((sl, sr, xd), 1), f"{u}.offset_l"), f"{u}.deform_l")
            sr = self.dcn(sr, self.conv(torch.cat((sl, sr, xd), 1), f"{u}.offset_r"), f"{u}.deform_r")
            xd = self.feature_block(torch.cat((sl, sr, xd), 1), f"{u}.cv")
        x = F.relu(self.same_conv(xd, "out.0"))
        return torch.sigmoid(self.same_conv(x, "out.2"))
