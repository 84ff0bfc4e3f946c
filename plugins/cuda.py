"""The CUDA kernels' C launchers: on device pointers (torch-free, for ``dpanet doctor`` through
pycuda) and on torch CUDA tensors (the tests and ``dpanet bench ops``).

The launchers take device pointers and a stream: :func:`correlation_into` and
:func:`deform_conv_into` call them on :class:`DeviceTensor` descriptions; :func:`correlation` and
:func:`modulated_deform_conv2d` allocate the output with torch and enqueue on torch's current
stream. Semantics: docs/ops.md. float32 and float16 tensors.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from dpanet.plugins._library import library_path
from dpanet.plugins.cpu import ERROR_SIZE, attrs_array, shape_array

FLOAT32, FLOAT16 = 0, 1  # the launchers' dtype codes (include/dpanet/cuda_ops.h)


@dataclass(frozen=True)
class DeviceTensor:
    """A contiguous NCHW tensor in device memory, for the launchers: its address and shape."""

    ptr: int
    shape: tuple[int, ...]


@cache
def _lib() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(library_path("cuda")))
    ptr, shape, i32 = ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64), ctypes.c_int32
    err = (ctypes.c_char_p, ctypes.c_size_t)
    lib.dpanet_correlation_cuda.argtypes = (ptr, shape, ptr, shape, i32, i32, ptr, ptr, *err)
    lib.dpanet_deform_conv_cuda.argtypes = (
        *(ptr, shape) * 4,
        ptr,
        ctypes.c_int64,
        ctypes.POINTER(ctypes.c_int32),
        i32,
        ptr,
        ptr,
        ctypes.c_size_t,
        ptr,
        *err,
    )
    lib.dpanet_deform_conv_cuda_workspace_size.argtypes = (shape, i32)
    lib.dpanet_deform_conv_cuda_workspace_size.restype = ctypes.c_size_t
    lib.dpanet_correlation_cuda.restype = lib.dpanet_deform_conv_cuda.restype = ctypes.c_int
    return lib


def _call(fn, *args, stream: int | None) -> None:
    error = ctypes.create_string_buffer(ERROR_SIZE)
    if fn(*args, stream, error, ERROR_SIZE) != 0:
        raise ValueError(error.value.decode())


def correlation_into(
    first: DeviceTensor, second: DeviceTensor, max_displacement: int, dtype: int, out: int, stream=None
) -> None:
    """Enqueue the cost volume of ``first`` and ``second`` into ``out`` (N x (2d+1)^2 x H x W of
    ``dtype``) on ``stream`` (a CUDA stream handle; None: the default stream)."""
    _call(
        _lib().dpanet_correlation_cuda,
        first.ptr,
        shape_array(first.shape),
        second.ptr,
        shape_array(second.shape),
        int(max_displacement),
        dtype,
        out,
        stream=stream,
    )


def deform_conv_workspace_bytes(weight_shape: Sequence[int], dtype: int) -> int:
    """Device workspace :func:`deform_conv_into` needs for this weight shape."""
    return _lib().dpanet_deform_conv_cuda_workspace_size(shape_array(weight_shape), dtype)


def deform_conv_into(
    x: DeviceTensor,
    offset: DeviceTensor,
    mask: DeviceTensor,
    weight: DeviceTensor,
    bias: DeviceTensor | None,
    stride: int | Sequence[int],
    padding: int | Sequence[int],
    dilation: int | Sequence[int],
    dtype: int,
    out: int,
    workspace: int,
    stream=None,
) -> None:
    """Enqueue DCNv2 into ``out`` (N x O x offset's H x W) with ``workspace`` of
    :func:`deform_conv_workspace_bytes` on ``stream``."""
    args = [v for t in (x, offset, mask, weight) for v in (t.ptr, shape_array(t.shape))]
    _call(
        _lib().dpanet_deform_conv_cuda,
        *args,
        bias.ptr if bias is not None else None,
        bias.shape[0] if bias is not None else -1,
        attrs_array(stride, padding, dilation),
        dtype,
        out,
        workspace,
        deform_conv_workspace_bytes(weight.shape, dtype),
        stream=stream,
    )


def _dtype_code(tensors) -> int:
    import torch

    codes = {torch.float32: FLOAT32, torch.float16: FLOAT16}
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) != 1 or next(iter(dtypes)) not in codes:
        got = sorted(map(str, dtypes))
        raise ValueError(f"CUDA kernels take float32 or float16 tensors of one dtype, got {got}")
    for t in tensors:
        if not t.is_cuda or not t.is_contiguous():
            raise ValueError("CUDA kernels take contiguous CUDA tensors")
    return codes[next(iter(dtypes))]


def _described(t) -> DeviceTensor:
    return DeviceTensor(t.data_ptr(), tuple(t.shape))


def _torch_stream() -> int:
    import torch

    return torch.cuda.current_stream().cuda_stream


def correlation(first, second, max_displacement: int):
    """Cost volume of two N x C x H x W CUDA tensors (float32 or float16)."""
    import torch

    dtype = _dtype_code((first, second))
    d = int(max_displacement)
    n, _, h, w = first.shape
    out = torch.empty(n, (2 * d + 1) ** 2, h, w, dtype=first.dtype, device=first.device)
    correlation_into(_described(first), _described(second), d, dtype, out.data_ptr(), _torch_stream())
    return out


def modulated_deform_conv2d(
    x,
    offset,
    mask,
    weight,
    bias,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 1,
    dilation: int | Sequence[int] = 1,
):
    """DCNv2 of CUDA tensors (float32 or float16); the output shape follows offset's H and W."""
    import torch

    tensors = (x, offset, mask, weight) + ((bias,) if bias is not None else ())
    dtype = _dtype_code(tensors)
    out = torch.empty(x.shape[0], weight.shape[0], *offset.shape[2:], dtype=x.dtype, device=x.device)
    workspace_bytes = deform_conv_workspace_bytes(weight.shape, dtype)
    workspace = torch.empty(workspace_bytes, dtype=torch.uint8, device=x.device)
    described = [_described(t) for t in (x, offset, mask, weight)]
    deform_conv_into(
        *described,
        _described(bias) if bias is not None else None,
        stride,
        padding,
        dilation,
        dtype,
        out.data_ptr(),
        workspace.data_ptr(),
        _torch_stream(),
    )
    return out
