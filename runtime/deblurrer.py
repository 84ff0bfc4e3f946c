"""``dpanet.Deblurrer``: one object that deblurs dual-pixel pairs with any backend (docs/runtime.md).

    deblurrer = Deblurrer("model.onnx")          # or "model.plan" (TensorRT), "ours.pt" (PyTorch)
    sharp = deblurrer.deblur(left, right)        # numpy arrays as OpenCV reads them
    deblurrer.deblur_files("L.png", "R.png", "out.png")

The backend follows the model file's suffix (``.onnx``: ONNX Runtime, ``.plan``/``.engine``:
TensorRT, ``.pt``/``.pth``: PyTorch); only the PyTorch one imports torch. Every image goes through
:func:`dpanet.runtime.pipeline.deblur_pair`, so channel order, single-channel views, padding,
tiling and the memory bound are the CLI's. ``max_memory`` defaults to
:data:`~dpanet.runtime.memory.DEFAULT_FRACTION` of the memory available when the model is loaded
(RAM, or free device memory for TensorRT and CUDA).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dpanet.errors import DPANetError
from dpanet.runtime.images import check_writable, image_from_array, read_image, to_integer, write_image
from dpanet.runtime.memory import default_budget, parse_memory
from dpanet.runtime.pipeline import Backend, check_pair, check_tiling, deblur_pair

SERVER_SCHEMES = ("http://", "grpc://")
"""A model given as such a URL is served by a Triton server (``dpanet serve``, docs/serving.md)."""
BACKEND_BY_SUFFIX = {
    ".onnx": "onnxruntime",
    ".plan": "tensorrt",
    ".engine": "tensorrt",
    ".pt": "torch",
    ".pth": "torch",
}

_log = logging.getLogger("dpanet")


class Deblurrer:
    """Deblurs left/right dual-pixel views with one loaded model.

    ``model`` is a file, or the URL of a Triton server (``http://HOST:PORT``, ``grpc://HOST:PORT``)
    serving the model named ``server_model`` (``dpanet deblur --server``). ``tile`` (H, W) and
    ``overlap`` as ``dpanet deblur --tile/--overlap``; ``max_memory`` in bytes
    or as text (``"4G"``), None for the default share of available memory; ``threads`` for ONNX
    Runtime and PyTorch on the CPU; ``plugins`` a TensorRT plugin library (default: the engine's
    sidecar). ``backend`` overrides the choice by suffix; ``device`` (``cpu``/``cuda``) is
    PyTorch's, as is ``progress`` (a bar per network stage on a terminal). ``note`` receives
    one-line notes (tiling chosen, retries after running out of memory); by default they go to
    the ``dpanet`` logger at INFO level.
    """

    def __init__(
        self,
        model: str | os.PathLike,
        *,
        tile: tuple[int, int] | int | None = None,
        overlap: int | None = None,
        max_memory: int | str | None = None,
        threads: int | None = None,
        plugins: str | os.PathLike | None = None,
        server_model: str = "dpanet",
        backend: str | None = None,
        device: str | None = None,
        note: Callable[[str], object] | None = None,
        progress: bool = False,
    ) -> None:
        if backend is None and os.fspath(model).startswith(SERVER_SCHEMES):
            backend = "triton"
        if backend == "triton":
            self.backend_name = backend
            self.backend, self.channel_order = _server(
                os.fspath(model), server_model, threads, plugins, device
            )
        else:
            model = Path(model)
            self.backend_name = backend or BACKEND_BY_SUFFIX.get(model.suffix.lower())
            if self.backend_name is None:
                raise DPANetError(
                    f"{model}: cannot tell the backend from its suffix; use .onnx (ONNX Runtime), .plan "
                    "(TensorRT) or .pt (PyTorch), or pass backend="
                )
            self.backend, self.channel_order = _load(
                self.backend_name, model, threads, plugins, device, progress
            )
        self.tile = (tile, tile) if isinstance(tile, int) else tuple(tile) if tile is not None else None
        self.overlap = overlap
        if isinstance(max_memory, str):
            max_memory = parse_memory(max_memory)
        elif max_memory is None:
            max_memory = default_budget(self.backend)
        elif max_memory < 1:
            raise DPANetError(f"max_memory {max_memory}: must be positive (bytes)")
        self.max_memory: int | None = max_memory
        self.note: Callable[[str], object] = note or _log.info
        check_tiling(self.backend, self.tile, self.overlap, self.max_memory)

    def deblur(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """The deblurred image of two views as OpenCV reads them (uint8 or uint16, H x W or
        H x W x C with C = 1 or 3, BGR): same dtype and shape as ``left``."""
        left_image = image_from_array(left, "left view")
        right_image = image_from_array(right, "right view")
        result = self._run(left_image, right_image)
        return to_integer(result.pixels, result.bit_depth).reshape(left.shape)

    def deblur_files(
        self, left_path: str | os.PathLike, right_path: str | os.PathLike, out_path: str | os.PathLike
    ) -> Path:
        """Read a pair, deblur it and write ``out_path`` atomically (the left view's bit depth and
        channel count; an output that is one of the inputs is refused). Returns the path written."""
        from dpanet.files import check_not_input

        check_not_input(Path(out_path), Path(left_path), Path(right_path))
        left, right = read_image(left_path), read_image(right_path)
        check_pair(left, right)
        check_writable(out_path, left.bit_depth)
        result = self._run(left, right)
        return write_image(out_path, result.pixels, result.bit_depth)

    def _run(self, left, right):
        return deblur_pair(
            left, right, self.backend, self.channel_order, self.tile, self.overlap, self.note, self.max_memory
        )

    def __call__(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        return self.deblur(left, right)

    def close(self) -> None:
        """Release what the backend holds beyond memory (a TensorRT engine's GPU objects, a server
        connection); the other backends need nothing."""
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Deblurrer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Deblurrer(backend={self.backend_name!r}, channel_order={self.channel_order!r})"


def _load(name: str, model: Path, threads, plugins, device, progress: bool) -> tuple[Backend, str]:
    """(backend, channel order) for backend ``name`` on ``model``; options another backend owns
    are refused rather than ignored."""
    if plugins is not None and name != "tensorrt":
        raise DPANetError("plugins (--plugins) are for the tensorrt backend (a .plan engine)")
    if device is not None and name != "torch":
        raise DPANetError(f"device (--device) is for the torch backend, not {name}")
    if name == "tensorrt":
        if threads is not None:
            raise DPANetError("threads (--threads) are for the CPU backends, not tensorrt")
        from dpanet.runtime.tensorrt_backend import TensorRTBackend

        backend = TensorRTBackend(model, plugins)
        return backend, backend.channel_order
    if name == "onnxruntime":
        from dpanet.runtime.onnxruntime_backend import OnnxRuntimeBackend

        backend = OnnxRuntimeBackend(model, threads)
        return backend, backend.channel_order
    if name == "torch":
        return _torch_backend(model, device or "cpu", threads, progress)
    raise DPANetError(f"unknown backend {name!r} (onnxruntime, tensorrt or torch)")


def _server(url: str, name: str, threads, plugins, device) -> tuple[Backend, str]:
    """(backend, channel order) of model ``name`` on the Triton server at ``url``: the network runs
    there, everything around it here (docs/serving.md)."""
    given = [
        option for option, value in (("threads", threads), ("plugins", plugins), ("device", device)) if value
    ]
    if given:
        raise DPANetError(f"{url}: the model runs on the server; {', '.join(given)} are for local backends")
    from dpanet.runtime.triton_client import TritonBackend

    backend = TritonBackend(url, name)
    return backend, backend.channel_order


def _torch_backend(checkpoint: Path, device: str, threads: int | None, progress: bool) -> tuple[Backend, str]:
    """A missing torch is a ModuleNotFoundError, which the CLI turns into the extra to install."""
    import torch

    from dpanet.training.checkpoint import load_checkpoint
    from dpanet.training.inference import TorchBackend, resolve_device

    if threads:
        torch.set_num_threads(threads)
    loaded = load_checkpoint(checkpoint)
    return TorchBackend(loaded.model, resolve_device(device), progress), loaded.channel_order
