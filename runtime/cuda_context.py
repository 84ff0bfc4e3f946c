"""The CUDA context the TensorRT backend works in: device 0's primary context, through pycuda.

Why not ``pycuda.autoinit``: it creates a context of its own and pops it at exit (``atexit``), so a
backend that outlives it (a module-level object in a user's script) frees its engine and buffers
with no context current: errors, or a crash, at exit (NVIDIA/TensorRT#2052, #2852). TensorRT works
through the CUDA runtime, which uses the device's *primary* context; retaining that same context
in pycuda puts pycuda's buffers and TensorRT's engines in one context.

The rules this module keeps (see :class:`PrimaryContext` and :class:`DeviceResources`):

- the primary context is retained once per process and is current only while work runs
  (``with context.active():``): nothing is left on pycuda's context stack between calls (pycuda
  aborts the process at exit if a context is still pushed);
- every backend's device objects are released by a ``weakref.finalize`` in a fixed order
  (TensorRT's objects first, then the buffers they point into, then the stream) with the context
  current: explicitly (``close()``), when the backend is collected, or at interpreter exit;
- finalizers run at exit in reverse order of creation, and the primary context's is created before
  any backend's, so the context is released (detached) last.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

_primary: PrimaryContext | None = None


class PrimaryContext:
    """Device 0's primary context, retained through pycuda (``cuda``: the ``pycuda.driver`` module)."""

    def __init__(self, cuda) -> None:
        self._cuda = cuda
        self._context = cuda.Device(0).retain_primary_context()
        # detached at exit (or when collected), never while pushed: pycuda releases a primary
        # context it is asked to detach by pushing it and calling cuDevicePrimaryCtxRelease
        self._release = weakref.finalize(self, self._context.detach)

    @contextmanager
    def active(self) -> Iterator[None]:
        """The context current on this thread for the duration of the block, popped after it."""
        if not self._release.alive:
            raise RuntimeError("the CUDA primary context was released (interpreter exit)")
        self._context.push()
        try:
            yield
        finally:
            self._cuda.Context.pop()


def primary_context(cuda) -> PrimaryContext:
    """The process's :class:`PrimaryContext` (retained on first use)."""
    global _primary
    if _primary is None:
        _primary = PrimaryContext(cuda)
    return _primary


class DeviceResources:
    """Device objects released together, in the order of ``names``, with ``context`` current.

    Attributes named in ``names`` hold the objects (set them inside ``context.active()``); releasing
    drops each reference in order, so each object's destructor (TensorRT's, pycuda's) runs with the
    context current. The finalizer holds this object, never its owner, so the owner can be
    collected; it runs at most once.
    """

    def __init__(self, context: PrimaryContext, names: tuple[str, ...]) -> None:
        self._context = context
        self._names = names
        for name in names:
            setattr(self, name, None)

    def attach(self, owner) -> weakref.finalize:
        """Release these resources when ``owner`` is collected or at interpreter exit; call the
        returned finalizer to release them now."""
        return weakref.finalize(owner, self.release)

    def release(self) -> None:
        with self._context.active():
            for name in self._names:
                setattr(self, name, None)
