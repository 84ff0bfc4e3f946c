"""ONNX Runtime backend (CPU) for both export flavours, torch-free.

The portable flavour runs natively. The plugin flavour's custom nodes run as onnxruntime-extensions
Python custom ops backed by our C++ CPU kernels (:mod:`dpanet.runtime.ort_plugin_ops`).
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort

from dpanet.errors import DPANetError
from dpanet.runtime.float16_plugins import for_onnxruntime
from dpanet.runtime.memory import MemoryCost, available_ram, measured_cost
from dpanet.runtime.model_info import (
    INPUT_NAMES,
    OUTPUT_NAME,
    ModelInfo,
    check_interface,
    model_info_from_metadata,
)
from dpanet.runtime.ort_plugin_ops import CORRELATION, DEFORM_CONV, register_plugin_ops


class OnnxRuntimeBackend:
    """Callable ``(left, right) -> output`` on N x 3 x H x W float32 arrays.

    ``model`` is a path to an exported .onnx file, or its serialised bytes.
    """

    def __init__(
        self,
        model: str | os.PathLike | bytes,
        threads: int | None = None,
        name: str | None = None,
        profile: str | os.PathLike | None = None,
    ) -> None:
        label = name or (str(model) if not isinstance(model, bytes) else "model")
        if not isinstance(model, bytes) and not os.path.isfile(model):
            raise DPANetError(f"{label}: no such file")
        if threads is not None and threads < 1:
            raise DPANetError(f"--threads {threads}: must be at least 1")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: graph-optimiser warnings are not the user's problem
        if threads:
            options.intra_op_num_threads = threads
        # ONNX Runtime's memory pattern plans one block for all of a shape's tensors; without it the
        # arena reuses freed blocks. Measured on the released network at 448x448 (docs/runtime.md,
        # "Memory per pixel"): peaks 2.12 -> 1.53-1.65 GiB (fp32) and 3.28 -> 2.01 GiB (int8 cpu
        # file), fp32 as fast, int8 about 17 % faster.
        options.enable_mem_pattern = False
        if profile is not None:  # ONNX Runtime's own profiler: one JSON trace, ended by end_profiling()
            options.enable_profiling = True
            options.profile_file_prefix = os.fspath(profile)
        unavailable = register_plugin_ops(options)
        source = for_onnxruntime(model)
        try:
            self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise DPANetError(_explain(label, str(exc), unavailable)) from exc
        self.info: ModelInfo = model_info_from_metadata(
            self.session.get_modelmeta().custom_metadata_map, label
        )
        check_interface(
            [(port.name, port.shape) for port in self.session.get_inputs()],
            [(port.name, port.shape) for port in self.session.get_outputs()],
            self.info,
            label,
        )

    @property
    def channel_order(self) -> str:
        return self.info.channel_order

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        """(H, W) of a model exported with a static size (served by tiling), None if dynamic."""
        if self.info.size == "dynamic":
            return None
        height, width = self.info.size.split("x")
        return int(height), int(width)

    @property
    def memory_cost(self) -> MemoryCost | None:
        """Peak process memory per tile (docs/runtime.md "Memory"), for this precision and width."""
        return measured_cost("onnxruntime", self.info.precision, self.info.config.get("width", 64))

    @staticmethod
    def available_memory() -> int:
        """What :data:`~dpanet.runtime.memory.DEFAULT_FRACTION` applies to: available RAM."""
        return available_ram()

    def end_profiling(self) -> str:
        """The path of the profiler's trace (Chrome trace JSON) of the runs so far."""
        return self.session.end_profiling()

    def __call__(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        feeds = dict(zip(INPUT_NAMES, (left, right), strict=True))
        return self.session.run([OUTPUT_NAME], feeds)[0]


def _explain(label: str, message: str, unavailable: str | None) -> str:
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    if CORRELATION in message or DEFORM_CONV in message:
        if unavailable:
            return f"{label}: a plugin-flavour model needs our custom ops, but {unavailable}"
        return (
            f"{label}: ONNX Runtime cannot run its plugin nodes ({first}); float16 plugin models run "
            "on TensorRT; ONNX Runtime runs them with the onnx package installed (pip install onnx)"
        )
    return f"{label}: ONNX Runtime cannot load the model ({first})"
