"""TensorRT backend: runs an engine from ``dpanet build-engine`` (torch-free; docs/engines.md).

TensorRT for the engine, pycuda for the CUDA side: pycuda gives page-locked numpy arrays, device
allocations and a stream in a few calls that raise Python exceptions, which is all this backend
needs (cuda-python's bindings would do the same through raw pointers and error-code tuples).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dpanet.errors import DPANetError
from dpanet.runtime.memory import MemoryCost
from dpanet.runtime.model_info import (
    INPUT_NAMES,
    OUTPUT_NAME,
    ModelInfo,
    Port,
    check_interface,
    model_info_from_metadata,
)
from dpanet.runtime.tensorrt_engine import (
    check_sidecar,
    gpu_identity,
    import_pycuda,
    import_tensorrt,
    last_error,
    make_logger,
    plugin_library,
    read_sidecar,
)


class TensorRTBackend:
    """Callable ``(left, right) -> output`` on N x 3 x H x W float32 arrays, on the GPU.

    ``plugins`` overrides the plugin library named in the engine's sidecar. Device and page-locked
    host buffers are allocated once per input shape and reused; one CUDA stream carries the
    copies and ``execute_async_v3``.
    """

    def __init__(self, plan: str | os.PathLike, plugins: str | os.PathLike | None = None) -> None:
        plan = Path(plan)
        if not plan.is_file():
            raise DPANetError(f"{plan}: no such file")
        self.sidecar = read_sidecar(plan)
        self.info: ModelInfo = model_info_from_metadata(self.sidecar.metadata, str(plan))
        self.sizes = self.sidecar.engine_profile
        trt = import_tensorrt()
        self._cuda = import_pycuda()
        _, capability = gpu_identity()
        check_sidecar(self.sidecar, plan, trt.__version__, capability)
        self._errors: list[str] = []
        self._logger = make_logger(trt, self._errors)
        trt.init_libnvinfer_plugins(self._logger, "")
        library = Path(plugins) if plugins is not None else self._sidecar_plugins(plan)
        library = plugin_library(trt, library, self.info.flavor)
        self._runtime = trt.Runtime(self._logger)
        if library is not None:
            registry = self._runtime.get_plugin_registry()
            if registry.load_library(str(library)) is None:
                raise DPANetError(f"{library}: TensorRT could not load the plugin library")
        self._engine = self._runtime.deserialize_cuda_engine(plan.read_bytes())
        if self._engine is None:
            raise DPANetError(
                f"{plan}: TensorRT could not load the engine ({last_error(self._errors)}); a truncated or "
                "foreign file? Rebuild it with dpanet build-engine"
            )
        check_interface(*_engine_ports(trt, self._engine), self.info, str(plan))
        self._context = self._engine.create_execution_context()
        self._dtypes = {name: _numpy_dtype(trt, self._engine.get_tensor_dtype(name)) for name in _io_names()}
        self._stream = self._cuda.Stream()
        self._buffers: dict[tuple[int, ...], dict[str, tuple[np.ndarray, object]]] = {}

    def _sidecar_plugins(self, plan: Path) -> Path | None:
        path = self.sidecar.plugins_path
        if path is None:
            return None
        if not Path(path).is_file():
            raise DPANetError(
                f"{plan}: the plugin library it was built with, {path}, is gone: pass --plugins LIBRARY"
            )
        return Path(path)

    @property
    def channel_order(self) -> str:
        return self.info.channel_order

    @property
    def max_size(self) -> tuple[int, int]:
        """The profile's largest H x W: larger images are tiled at it (docs/runtime.md)."""
        return tuple(self.sizes.max)

    @property
    def memory_cost(self) -> MemoryCost:
        """Device memory per tile: only the input and output buffers (2 x 3 inputs, 3 outputs, at
        most 4 bytes each). TensorRT allocates the activations for the profile's maximum when the
        engine is loaded (the default static allocation), so ``max_size`` is what bounds them."""
        return MemoryCost(base=0.0, per_pixel=9 * 4)

    def available_memory(self) -> int:
        """Free device memory now (after loading the engine)."""
        free, _ = self._cuda.mem_get_info()
        return free

    def _buffers_for(self, shape: tuple[int, ...]) -> dict[str, tuple[np.ndarray, object]]:
        """Page-locked host and device buffers for inputs of ``shape`` (made once per shape)."""
        if shape not in self._buffers:
            for name in INPUT_NAMES:
                self._context.set_input_shape(name, shape)
            buffers = {}
            for name in _io_names():
                size = tuple(self._context.get_tensor_shape(name))
                host = self._cuda.pagelocked_empty(size, self._dtypes[name])
                device = self._cuda.mem_alloc(max(host.nbytes, 1))
                buffers[name] = (host, device)
            self._buffers[shape] = buffers
        return self._buffers[shape]

    def __call__(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        shape = tuple(left.shape)
        self.sizes.check_input(shape, "left/right")
        buffers = self._buffers_for(shape)
        for name in INPUT_NAMES:
            self._context.set_input_shape(name, shape)
        for name, (_, device) in buffers.items():
            self._context.set_tensor_address(name, int(device))
        for name, array in zip(INPUT_NAMES, (left, right), strict=True):
            host, device = buffers[name]
            np.copyto(host, array, casting="same_kind")
            self._cuda.memcpy_htod_async(device, host, self._stream)
        if not self._context.execute_async_v3(self._stream.handle):
            raise DPANetError("TensorRT could not run the engine (execute_async_v3 returned False)")
        host, device = buffers[OUTPUT_NAME]
        self._cuda.memcpy_dtoh_async(host, device, self._stream)
        self._stream.synchronize()
        return host.astype(np.float32, copy=True)


def _engine_ports(trt, engine) -> tuple[list[Port], list[Port]]:
    """The engine's inputs and outputs as (name, shape) pairs, dynamic sizes as None."""
    inputs: list[Port] = []
    outputs: list[Port] = []
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        shape = tuple(int(d) if d >= 0 else None for d in engine.get_tensor_shape(name))
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        (inputs if is_input else outputs).append((name, shape))
    return inputs, outputs


def _io_names() -> tuple[str, ...]:
    return (*INPUT_NAMES, OUTPUT_NAME)


def _numpy_dtype(trt, dtype) -> type:
    types = {trt.DataType.FLOAT: np.float32, trt.DataType.HALF: np.float16}
    if dtype not in types:
        raise DPANetError(f"engine tensor type {dtype} is not float32 or float16")
    return types[dtype]
