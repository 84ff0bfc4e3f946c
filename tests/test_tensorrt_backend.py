"""The TensorRT backend's own logic, where TensorRT and a GPU are absent: its buffers (one set,
grown to the largest input), the one-line error when TensorRT cannot make an execution context,
and the order in which its device objects are released, at interpreter exit included.

Stand-ins here play only what the backend's code calls on them, as the pybind sources (TensorRT)
and pycuda's sources say those calls behave; they check our handling, never GPU behaviour. The
engines themselves run in tests/test_plugins_tensorrt.py (GPU and TensorRT needed).
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

import numpy as np
import pytest

from dpanet.errors import DPANetError
from dpanet.runtime.tensorrt_backend import (
    DEVICE_OBJECTS,
    GrowingBuffer,
    allocate_pinned_and_device,
    execution_context,
)
from dpanet.runtime.tensorrt_engine import Profile

from conftest import REPO


class _Allocations:
    """Records each allocation (element count) and whether the previous pair was freed by then."""

    def __init__(self):
        self.counts: list[int] = []
        self.previous_alive: list[bool] = []
        self._last = None

    def __call__(self, count, dtype):
        gc.collect()
        self.previous_alive.append(self._last is not None and self._last() is not None)
        self.counts.append(count)
        device = _Device(count * dtype.itemsize)
        self._last = weakref.ref(device)
        return np.zeros(count, dtype), device


class _Device:
    def __init__(self, nbytes):
        self.nbytes = nbytes


def test_one_set_of_buffers_grown_to_the_largest_shape_and_reused():
    allocations = _Allocations()
    buffer = GrowingBuffer(np.float16, allocations)
    shapes = [
        (1, 3, 64, 96),
        (1, 3, 32, 32),
        (1, 3, 120, 200),
        (1, 3, 64, 96),
        (1, 3, 8, 8),
        (1, 3, 128, 200),
    ]
    for shape in shapes:
        host, device = buffer.fit(shape)
        assert host.shape == shape and host.dtype == np.float16 and host.flags.c_contiguous
        assert device.nbytes >= host.nbytes
        del host, device  # as the backend's views die with each call
    # allocated only when an input was larger than every one before it
    assert allocations.counts == [3 * 64 * 96, 3 * 120 * 200, 3 * 128 * 200]
    assert allocations.previous_alive == [False, False, False]  # freed before the larger one is made
    assert buffer.capacity == 3 * 128 * 200


def test_a_smaller_input_is_a_view_of_the_one_buffer():
    buffer = GrowingBuffer(np.float32, _Allocations())
    big, device = buffer.fit((1, 3, 16, 16))
    small, same = buffer.fit((1, 3, 4, 8))
    assert same is device and np.shares_memory(big, small)


class _Engine:
    """Stand-in for ICudaEngine.create_execution_context, which returns None (the pybind binding of
    a pointer) when TensorRT cannot make the context; TensorRT logs why."""

    def __init__(self, errors):
        self.errors = errors

    def create_execution_context(self):
        self.errors.append("Requested amount of GPU memory (2147483648 bytes) could not be allocated.")
        return None


def test_no_execution_context_is_one_line_naming_the_profile_and_the_way_out():
    errors = ["an old error"]
    sizes = Profile(1, (256, 256), (1120, 1680), (1120, 1680))
    with pytest.raises(DPANetError) as raised:
        execution_context(_Engine(errors), Path("m.plan"), sizes, errors)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("m.plan: TensorRT could not create an execution context")
    assert "batch 1, 256x256 to 1120x1680" in message and "--max" in message and "--tile HxW" in message
    assert "(2147483648 bytes) could not be allocated" in message and "an old error" not in message


# A process that keeps a backend-like owner of device objects at module level, past interpreter
# shutdown, as a user's script does. The context is a stand-in for pycuda's primary Context (push,
# Context.pop, detach) that prints each call and how many pushes are outstanding.
OUTLIVING = textwrap.dedent(
    """
    from types import SimpleNamespace

    from dpanet.runtime.cuda_context import DeviceResources, primary_context
    from dpanet.runtime.tensorrt_backend import DEVICE_OBJECTS


    class Context:
        pushed = 0

        def push(self):
            Context.pushed += 1
            print("push")

        @staticmethod
        def pop():
            Context.pushed -= 1
            print("pop")

        def detach(self):
            print(f"detach, pushed {Context.pushed}")


    device = SimpleNamespace(retain_primary_context=Context)
    cuda = SimpleNamespace(Device=lambda index: device, Context=Context)


    class Freed:
        def __init__(self, name):
            self.name = name

        def __del__(self):
            print(f"free {self.name}, pushed {Context.pushed}")


    class Owner:
        def __init__(self):
            context = primary_context(cuda)
            self.device = DeviceResources(context, DEVICE_OBJECTS)
            self.release = self.device.attach(self)
            with context.active():
                for name in reversed(DEVICE_OBJECTS):
                    setattr(self.device, name, Freed(name))


    backend = Owner()
    second = Owner()
    second.release()
    print("end of script")
    """
)


def test_device_objects_outliving_the_script_are_released_in_order_before_the_context(tmp_path):
    script = tmp_path / "outliving.py"
    script.write_text(OUTLIVING)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    frees = [f"free {name}, pushed 1" for name in DEVICE_OBJECTS]
    created = ["push", "pop"]
    # the second owner, closed explicitly; then the first, at exit; the context is detached last,
    # not pushed, and nothing is freed after it
    assert lines == [*created, *created, "push", *frees, "pop", "end of script", "push", *frees, "pop"] + [
        "detach, pushed 0"
    ], lines


def test_the_context_is_popped_when_work_fails():
    from types import SimpleNamespace

    from dpanet.runtime.cuda_context import PrimaryContext

    calls = []
    context = SimpleNamespace(push=lambda: calls.append("push"), detach=lambda: calls.append("detach"))
    cuda = SimpleNamespace(
        Device=lambda index: SimpleNamespace(retain_primary_context=lambda: context),
        Context=SimpleNamespace(pop=lambda: calls.append("pop")),
    )
    primary = PrimaryContext(cuda)
    with pytest.raises(DPANetError), primary.active():
        raise DPANetError("bad input")
    assert calls == ["push", "pop"]
    del primary
    gc.collect()
    assert calls == ["push", "pop", "detach"]


class _Pycuda:
    """Stand-in for the three pycuda.driver names the allocator uses; its device allocation fails
    the way pycuda reports it (pycuda.driver.MemoryError, a pycuda.driver.Error)."""

    class Error(Exception):
        pass

    class MemoryError(Error):
        pass

    @staticmethod
    def pagelocked_empty(count, dtype):
        return np.empty(count, dtype)

    @staticmethod
    def mem_alloc(nbytes):
        raise _Pycuda.MemoryError("cuMemAlloc failed: out of memory")


def test_an_allocation_failure_is_one_line_naming_the_size_and_the_way_out():
    sizes = Profile(1, (64, 64), (512, 768), (1024, 1536))
    with pytest.raises(DPANetError) as raised:
        allocate_pinned_and_device(_Pycuda, Path("m.plan"), sizes, 3 * 1024 * 1536, np.dtype(np.float32))
    message = str(raised.value)
    assert "\n" not in message and message.startswith("m.plan: cannot allocate 18.0 MiB")
    assert "cuMemAlloc failed: out of memory" in message and "64x64 to 1024x1536" in message
    assert "--tile HxW" in message


def test_the_release_finalizer_does_not_keep_its_owner_alive():
    from types import SimpleNamespace

    from dpanet.runtime.cuda_context import DeviceResources, PrimaryContext

    calls = []
    context = SimpleNamespace(push=lambda: calls.append("push"), detach=lambda: None)
    cuda = SimpleNamespace(
        Device=lambda index: SimpleNamespace(retain_primary_context=lambda: context),
        Context=SimpleNamespace(pop=lambda: calls.append("pop")),
    )

    class Owner:
        pass

    owner = Owner()
    resources = DeviceResources(PrimaryContext(cuda), ("stream",))
    release = resources.attach(owner)
    resources.stream = "a stream"
    del owner
    gc.collect()
    assert not release.alive and resources.stream is None and calls == ["push", "pop"]
