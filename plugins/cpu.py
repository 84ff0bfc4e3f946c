"""The C++ CPU kernels from Python: float32 NCHW numpy arrays in, new arrays out (torch-free).

Semantics: docs/ops.md. Shapes and attributes are validated by the library itself; a mismatch
raises ``ValueError`` with its message, a workspace the library cannot allocate ``MemoryError``.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

from dpanet.plugins._library import library_path

ERROR_SIZE = 1024
OUT_OF_MEMORY = 3  # DPANET_OUT_OF_MEMORY of include/dpanet/api.h
_SHAPE = ctypes.c_int64 * 4
_ATTRS = ctypes.c_int32 * 6
_FLOATS = ctypes.POINTER(ctypes.c_float)


@cache
def _lib(path: Path | None = None) -> ctypes.CDLL:
    """libdpanet_cpu: the installed one, or the one at ``path`` (another build, for comparisons)."""
    import scipy_openblas32  # noqa: F401  (loads the OpenBLAS libdpanet_cpu links, docs/plugins.md)

    lib = ctypes.CDLL(str(path or library_path("cpu")))
    shape, err = ctypes.POINTER(ctypes.c_int64), (ctypes.c_char_p, ctypes.c_size_t)
    attrs = ctypes.POINTER(ctypes.c_int32)
    i32, i64 = ctypes.c_int32, ctypes.c_int64
    signatures = {
        "dpanet_correlation_output_shape": (shape, shape, i32, shape, *err),
        "dpanet_correlation_cpu": (_FLOATS, shape, _FLOATS, shape, i32, _FLOATS, i32, *err),
        "dpanet_deform_conv_output_shape": (shape, shape, shape, shape, i64, attrs, shape, *err),
        "dpanet_deform_conv_cpu": (
            *(_FLOATS, shape) * 4,
            _FLOATS,
            i64,
            attrs,
            _FLOATS,
            i32,
            *err,
        ),
        "dpanet_deform_conv_cpu_workspace_size": (shape, shape, attrs, i32),
        "dpanet_plugin_field_name": (ctypes.c_char_p, i32),
        "dpanet_cpu_kernels": (),
    }
    restypes = {
        "dpanet_cpu_kernels": ctypes.c_char_p,
        "dpanet_deform_conv_cpu_workspace_size": ctypes.c_size_t,
        "dpanet_plugin_field_name": ctypes.c_char_p,
    }
    for name, argtypes in signatures.items():
        fn = getattr(lib, name)
        fn.argtypes = argtypes
        fn.restype = restypes.get(name, ctypes.c_int)
    return lib


def _call(fn, *args) -> None:
    error = ctypes.create_string_buffer(ERROR_SIZE)
    status = fn(*args, error, ERROR_SIZE)
    if status == OUT_OF_MEMORY:
        raise MemoryError(error.value.decode())
    if status != 0:
        raise ValueError(error.value.decode())


def _array(name: str, a) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.dtype != np.float32 or not a.flags.c_contiguous:
        layout = "C-contiguous" if a.flags.c_contiguous else "non-contiguous"
        raise ValueError(f"{name} must be a C-contiguous float32 array, got a {layout} {a.dtype} array")
    return a


def shape_array(shape: Sequence[int]) -> ctypes.Array:
    """An int64[4] for the C ABI."""
    return _SHAPE(*shape)


def _shape(name: str, a: np.ndarray) -> ctypes.Array:
    if a.ndim != 4:
        raise ValueError(f"{name} must be 4-D (NCHW), got shape {a.shape}")
    return shape_array(a.shape)


def _ptr(a: np.ndarray | None):
    return None if a is None else a.ctypes.data_as(_FLOATS)


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int | np.integer) else tuple(value)
    if len(pair) != 2 or not all(-(2**31) <= int(v) < 2**31 for v in pair):
        raise ValueError(f"modulated_deform_conv2d: {name} must be an int32 or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def attrs_array(stride, padding, dilation) -> ctypes.Array:
    """The int32[6] DCN attributes of the C ABI: stride, padding, dilation as (y, x) pairs."""
    return _ATTRS(*_pair(stride, "stride"), *_pair(padding, "padding"), *_pair(dilation, "dilation"))


def correlation(
    first: np.ndarray,
    second: np.ndarray,
    max_displacement: int,
    threads: int = 0,
    library: Path | None = None,
) -> np.ndarray:
    """Cost volume ``N x (2d+1)^2 x H x W``; ``threads`` <= 0 uses the OpenMP default; ``library``:
    another build of libdpanet_cpu to run instead of the installed one."""
    first, second = _array("first", first), _array("second", second)
    lib = _lib(library)
    shapes = (_shape("first", first), _shape("second", second))
    out_shape = _SHAPE()
    _call(lib.dpanet_correlation_output_shape, *shapes, int(max_displacement), out_shape)
    out = np.empty(tuple(out_shape), dtype=np.float32)
    _call(
        lib.dpanet_correlation_cpu,
        _ptr(first),
        shapes[0],
        _ptr(second),
        shapes[1],
        int(max_displacement),
        _ptr(out),
        int(threads),
    )
    return out


def _dcn_args(x, offset, mask, weight, bias):
    arrays = {"x": x, "offset": offset, "mask": mask, "weight": weight}
    arrays = {k: _array(k, v) for k, v in arrays.items()}
    shapes = [_shape(k, v) for k, v in arrays.items()]
    if bias is not None:
        bias = _array("bias", bias)
        if bias.ndim != 1:
            raise ValueError(f"modulated_deform_conv2d: bias must be 1-D, got shape {bias.shape}")
    bias_size = -1 if bias is None else bias.shape[0]
    return list(arrays.values()), shapes, bias, bias_size


def modulated_deform_conv2d(
    x: np.ndarray,
    offset: np.ndarray,
    mask: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 1,
    dilation: int | Sequence[int] = 1,
    threads: int = 0,
    library: Path | None = None,
) -> np.ndarray:
    """DCNv2 of docs/ops.md (``mask`` applied as given); ``threads`` <= 0 uses the OpenMP default;
    ``library``: another build of libdpanet_cpu to run instead of the installed one."""
    arrays, shapes, bias, bias_size = _dcn_args(x, offset, mask, weight, bias)
    attrs = attrs_array(stride, padding, dilation)
    lib = _lib(library)
    out_shape = _SHAPE()
    _call(lib.dpanet_deform_conv_output_shape, *shapes, bias_size, attrs, out_shape)
    out = np.empty(tuple(out_shape), dtype=np.float32)
    tensors = [v for a, s in zip(arrays, shapes, strict=True) for v in (_ptr(a), s)]
    _call(lib.dpanet_deform_conv_cpu, *tensors, _ptr(bias), bias_size, attrs, _ptr(out), int(threads))
    return out


def deform_conv_workspace_bytes(
    x_shape: Sequence[int],
    weight_shape: Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 1,
    dilation: int | Sequence[int] = 1,
    threads: int = 0,
) -> int:
    """Bytes of workspace the CPU DCN uses at these shapes (0 if they are invalid); up to 64 MiB of it
    stays with the calling thread for its next call (docs/plugins.md)."""
    lib = _lib()
    return lib.dpanet_deform_conv_cpu_workspace_size(
        shape_array(x_shape), shape_array(weight_shape), attrs_array(stride, padding, dilation), int(threads)
    )


def plugin_field_names(plugin: str) -> list[str]:
    """The TensorRT plugin fields of ``plugin``, from the table its creator uses (docs/ops.md)."""
    lib = _lib()
    names = []
    while (name := lib.dpanet_plugin_field_name(plugin.encode(), len(names))) is not None:
        names.append(name.decode())
    if not names:
        raise ValueError(f"unknown plugin {plugin!r}")
    return names


def kernels_isa(library: Path | None = None) -> str:
    """The instruction set of the kernels the library runs on this CPU: ``baseline``, ``avx2``,
    ``avx512`` (chosen at run time, or by ``DPANET_CPU_KERNELS``) or ``native`` (docs/plugins.md)."""
    return _lib(library).dpanet_cpu_kernels().decode()
