"""TensorRT backend: runs an engine from ``dpanet build-engine`` (torch-free; docs/engines.md).

TensorRT for the engine, pycuda for the CUDA side: pycuda gives page-locked numpy arrays, device
allocations and a stream in a few calls that raise Python exceptions, which is all this backend
needs (cuda-python's bindings would do the same through raw pointers and error-code tuples). All
GPU work runs in device 0's primary context, the one TensorRT's CUDA runtime uses, pushed only while
it runs; the backend's device objects are released in order by a finalizer, at the latest at
interpreter exit (:mod:`dpanet.runtime.cuda_context`).
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np

from dpanet.errors import DPANetError
from dpanet.runtime.cuda_context import DeviceResources, primary_context
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
    Profile,
    check_sidecar,
    gpu_identity,
    import_pycuda,
    import_tensorrt,
    make_logger,
    plugin_library,
    read_sidecar,
    tensorrt_failure,
)
from dpanet.runtime.tensorrt_plugins import load_plugin_library

# the backend's device objects, in the order they are released: TensorRT's execution context before
# its engine and runtime, then the buffers the context pointed into, then the stream
DEVICE_OBJECTS = ("context", "engine", "runtime", "buffers", "stream")


def _device_object(name: str) -> property:
    """``self._<name>``, kept in the backend's :class:`DeviceResources` (released by its finalizer,
    which must not hold the backend), under the names tests/test_tensorrt_names.py checks."""
    return property(
        lambda self: getattr(self._device, name), lambda self, value: setattr(self._device, name, value)
    )


class TensorRTBackend:
    """Callable ``(left, right) -> output`` on N x C x H x W float32 arrays, on the GPU.

    ``plugins`` overrides the plugin library named in the engine's sidecar. One page-locked host
    buffer and one device buffer per tensor, grown to the largest input seen and reused for
    smaller ones (:class:`GrowingBuffer`); one CUDA stream carries the copies and
    ``execute_async_v3``. ``close()`` (or a ``with`` block) releases the GPU objects; otherwise they
    are released when the backend is collected, or at interpreter exit.
    """

    _context = _device_object("context")
    _engine = _device_object("engine")
    _runtime = _device_object("runtime")

    def __init__(self, plan: str | os.PathLike, plugins: str | os.PathLike | None = None) -> None:
        plan = Path(plan)
        if not plan.is_file():
            raise DPANetError(f"{plan}: no such file")
        self._plan = plan
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
        self._cuda_context = primary_context(self._cuda)
        self._device = DeviceResources(self._cuda_context, DEVICE_OBJECTS)
        self._release = self._device.attach(self)
        with self._cuda_context.active():
            self._runtime = trt.Runtime(self._logger)
            if library is not None:
                load_plugin_library(trt, library, self._errors)
            self._engine = self._runtime.deserialize_cuda_engine(plan.read_bytes())
            if self._engine is None:
                raise tensorrt_failure(
                    f"{plan}: TensorRT could not load the engine: a truncated or foreign file? Rebuild it "
                    "with dpanet build-engine",
                    self._errors,
                )
            check_interface(*_engine_ports(trt, self._engine), self.info, str(plan))
            self._context = execution_context(self._engine, plan, self.sizes, self._errors)
            # the allocator must not refer to the backend: the finalizer would keep it alive
            allocate = functools.partial(allocate_pinned_and_device, self._cuda, plan, self.sizes)
            self._device.buffers = {
                name: GrowingBuffer(_numpy_dtype(trt, self._engine.get_tensor_dtype(name)), allocate)
                for name in _io_names()
            }
            self._device.stream = self._cuda.Stream()

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

    def close(self) -> None:
        """Release the engine, its execution context, the buffers and the stream (idempotent)."""
        self._release()

    def __enter__(self) -> TensorRTBackend:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

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
        with self._cuda_context.active():
            free, _ = self._cuda.mem_get_info()
        return free

    def __call__(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        if not self._release.alive:
            raise DPANetError(f"{self._plan}: the TensorRT backend was closed")
        shape = tuple(left.shape)
        self.sizes.check_input(shape, "left/right")
        since = len(self._errors)
        with self._cuda_context.active():
            try:
                return self._run(left, right, shape, since)
            except self._cuda.Error as exc:  # a CUDA fault met by a copy or the synchronisation
                raise tensorrt_failure(
                    f"{self._plan}: CUDA error while running the engine ({exc})", self._errors, since
                ) from None

    def _run(self, left: np.ndarray, right: np.ndarray, shape: tuple[int, ...], since: int) -> np.ndarray:
        for name in INPUT_NAMES:
            if not self._context.set_input_shape(name, shape):
                raise tensorrt_failure(
                    f"{self._plan}: TensorRT refused the input shape {shape}", self._errors, since
                )
        views = {}
        for name in _io_names():
            host, device = self._device.buffers[name].fit(tuple(self._context.get_tensor_shape(name)))
            self._context.set_tensor_address(name, int(device))
            views[name] = (host, device)
        stream = self._device.stream
        for name, array in zip(INPUT_NAMES, (left, right), strict=True):
            host, device = views[name]
            np.copyto(host, array, casting="same_kind")
            self._cuda.memcpy_htod_async(device, host, stream)
        if not self._context.execute_async_v3(stream.handle):
            raise tensorrt_failure(f"{self._plan}: TensorRT could not run the engine", self._errors, since)
        host, device = views[OUTPUT_NAME]
        self._cuda.memcpy_dtoh_async(host, device, stream)
        stream.synchronize()
        return host.astype(np.float32, copy=True)


def allocate_pinned_and_device(cuda, plan: Path, sizes: Profile, count: int, dtype: np.dtype):
    """A page-locked host array of ``count`` elements and a device allocation of its size, through
    pycuda (``cuda``); a failure is one line naming the size, the profile and the way out."""
    try:
        host = cuda.pagelocked_empty(count, dtype)
        return host, cuda.mem_alloc(host.nbytes)
    except cuda.Error as exc:  # pycuda.driver.MemoryError and the other driver errors
        size = f"{count * dtype.itemsize / 2**20:.1f} MiB"
        raise DPANetError(
            f"{plan}: cannot allocate {size} of GPU or page-locked memory ({exc}); {sizes.memory_advice()}"
        ) from None


def execution_context(engine, plan: Path, sizes: Profile, errors: list[str]):
    """``engine``'s execution context. TensorRT returns None when it cannot make one, most often
    because the profile's activation memory does not fit in the free GPU memory (an 8 GB Orin and a
    full-frame profile): say so in one line, with what bounds that memory."""
    since = len(errors)
    context = engine.create_execution_context()
    if context is None:
        raise tensorrt_failure(
            f"{plan}: TensorRT could not create an execution context, most often for lack of free GPU "
            f"memory; {sizes.memory_advice()}",
            errors,
            since,
        )
    return context


class GrowingBuffer:
    """One tensor's page-locked host array and device allocation, grown to the largest shape asked for
    and reused, as a view, for smaller ones: one set per backend, not one per input shape (a folder
    of mixed sizes would otherwise keep every size's buffers, which exhausts a Jetson's memory).

    ``allocate(count, dtype)`` returns a flat host array of ``count`` elements and a device
    allocation of its size. Growing drops the old pair before allocating the new one, so the peak
    is the new size, not the sum.
    """

    def __init__(self, dtype, allocate) -> None:
        self.dtype = np.dtype(dtype)
        self._allocate = allocate
        self._host: np.ndarray | None = None
        self._device = None
        self.capacity = 0  # elements

    def fit(self, shape: tuple[int, ...]) -> tuple[np.ndarray, object]:
        """(host array of ``shape``, device allocation) for a tensor of ``shape``."""
        count = math.prod(shape)
        if count > self.capacity or self._host is None:
            self._host = self._device = None
            self.capacity = 0
            self._host, self._device = self._allocate(max(count, 1), self.dtype)
            self.capacity = max(count, 1)
        return self._host[:count].reshape(shape), self._device


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
