"""The PyTorch backend of the deblurring pipeline (``dpanet deblur --backend torch``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from tqdm import tqdm

from dpanet.errors import DPANetError
from dpanet.runtime.memory import MemoryCost, available_ram, measured_cost
from dpanet.training.blocks import PerView
from dpanet.training.model import DPANet


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise DPANetError("--device cuda: this PyTorch build sees no CUDA device")
    if name not in ("cpu", "cuda"):
        raise DPANetError(f"unknown device {name!r} (use cpu or cuda)")
    return torch.device(name)


FLOAT32_MODES = ("ieee", "tf32")


@contextlib.contextmanager
def float32_mode(mode: str = "ieee") -> Iterator[None]:
    """Float32 matrix products and cuDNN convolutions in IEEE precision (``ieee``: no
    TensorFloat-32, which PyTorch allows for cuDNN convolutions by default) or with TF32 allowed
    for both (``tf32``); the previous settings are restored on exit. Nothing changes on the CPU.
    The release trained and tested on a GPU without TF32 (a TITAN RTX)."""
    if mode not in FLOAT32_MODES:
        raise ValueError(f"float32 mode must be one of {FLOAT32_MODES}, got {mode!r}")
    settings = (torch.backends.cuda.matmul, torch.backends.cudnn.conv)
    saved = [setting.fp32_precision for setting in settings]
    for setting in settings:
        setting.fp32_precision = mode
    try:
        yield
    finally:
        for setting, value in zip(settings, saved, strict=True):
            setting.fp32_precision = value


class TorchBackend:
    """Runs a DPANet on numpy N x 3 x H x W float32 arrays; shows a progress bar per network stage."""

    def __init__(self, model: DPANet, device: torch.device, progress: bool = True) -> None:
        self.model = model.to(device).eval()
        self.device = device
        self.progress = progress

    def _stages(self) -> tuple[list[torch.nn.Module], int]:
        """Modules to hook and how many calls one forward makes to them."""
        m = self.model
        parts = ([m.extractor] if m.extractor is not None else []) + [
            *m.encoder,
            m.bottleneck,
            *m.decoder,
            m.head,
        ]
        modules, calls = [], 0
        for part in parts:
            if isinstance(part, PerView):  # called once per view, whether shared or not
                modules += list(part)
                calls += 2
            else:
                modules.append(part)
                calls += 1
        return modules, calls

    @property
    def memory_cost(self) -> MemoryCost | None:
        """Peak memory per tile, measured on the CPU (docs/runtime.md "Memory"); on CUDA the same
        float32 activations are assumed (not measured: no GPU here)."""
        return measured_cost("torch", "fp32", self.model.config.width)

    def available_memory(self) -> int:
        """Available RAM on the CPU, free device memory on CUDA."""
        if self.device.type == "cuda":
            return torch.cuda.mem_get_info(self.device)[0]
        return available_ram()

    @torch.no_grad()
    def __call__(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        modules, calls = self._stages()
        bar = tqdm(total=calls, desc="deblur", unit="stage", disable=not self.progress or None, leave=False)
        handles = [s.register_forward_hook(lambda *_: bar.update()) for s in modules]
        try:
            out = self.model(torch.from_numpy(left).to(self.device), torch.from_numpy(right).to(self.device))
        finally:
            for h in handles:
                h.remove()
            bar.close()
        return out.float().cpu().numpy()
