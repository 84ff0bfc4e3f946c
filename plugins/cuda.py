"""The CUDA kernels' C launchers on torch CUDA tensors (for tests and ``dpanet bench ops``).

The launchers take device pointers and a stream; this wrapper allocates the output with torch and
enqueues on torch's current stream. Semantics: docs/ops.md. float32 and float16 tensors.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from functools import cache

from dpanet.plugins._library import library_path
from dpanet.plugins.cpu import ERROR_SIZE, attrs_array, shape_array

_FLOAT32, _FLOAT16 = 0, 1


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


def _dtype_code(tensors) -> int:
    import torch

    codes = {torch.float32: _FLOAT32, torch.float16: _FLOAT16}
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) != 1 or next(iter(dtypes)) not in codes:
        got = sorted(map(str, dtypes))
        raise ValueError(f"CUDA kernels take float32 or float16 tensors of one dtype, got {got}")
    for t in tensors:
        if not t.is_cuda or not t.is_contiguous():
            raise ValueError("CUDA kernels take contiguous CUDA tensors")
    return codes[next(iter(dtypes))]


def _call(fn, *args) -> None:
    import torch

    error = ctypes.create_string_buffer(ERROR_SIZE)
    stream = torch.cuda.current_stream().cuda_stream
    if fn(*args, stream, error, ERROR_SIZE) != 0:
        raise ValueError(error.value.decode())


def correlation(first, second, max_displacement: int):
    """Cost volume of two N x C x H x W CUDA tensors (float32 or float16)."""
    import torch

    dtype = _dtype_code((first, second))
    d = int(max_displacement)
    n, _, h, w = first.shape
    out = torch.empty(n, (2 * d + 1) ** 2, h, w, dtype=first.dtype, device=first.device)
    _call(
        _lib().dpanet_correlation_cuda,
        first.data_ptr(),
        shape_array(first.shape),
        second.data_ptr(),
        shape_array(second.shape),
        d,
        dtype,
        out.data_ptr(),
    )
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
    lib = _lib()
    workspace_size = lib.dpanet_deform_conv_cuda_workspace_size(shape_array(weight.shape), dtype)
    workspace = torch.empty(workspace_size, dtype=torch.uint8, device=x.device)
    args = [v for t in (x, offset, mask, weight) for v in (t.data_ptr(), shape_array(t.shape))]
    _call(
        lib.dpanet_deform_conv_cuda,
        *args,
        bias.data_ptr() if bias is not None else None,
        bias.shape[0] if bias is not None else -1,
        attrs_array(stride, padding, dilation),
        dtype,
        out.data_ptr(),
        workspace.data_ptr(),
        workspace_size,
    )
    return out
