"""The plugin flavour's custom nodes in ONNX Runtime: onnxruntime-extensions Python custom ops
backed by the C++ CPU kernels of :mod:`dpanet.plugins.cpu` (torch-free).

onnxruntime-extensions copies every Python op output through a Python list by default; we install
a hook that hands the numpy array over directly (measured here: 10M floats in 0.02 s instead of
about 2 s). Its Python ops cannot output float16: :mod:`dpanet.runtime.float16_plugins` wraps the
plugin nodes of a float16 graph in Casts at load (TensorRT runs them as written).
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from dpanet.contract import CORRELATION, DEFORM_CONV

_registered = False


def _register_ops() -> None:
    global _registered
    if _registered:
        return
    from onnxruntime_extensions import PyCustomOpDef, onnx_op
    from onnxruntime_extensions import _ocos as ocos

    from dpanet.plugins import cpu

    f32, i64 = PyCustomOpDef.dt_float, PyCustomOpDef.dt_int64

    @onnx_op(op_type=CORRELATION, inputs=[f32, f32], outputs=[f32], attrs={"max_displacement": i64})
    def _correlation(first, second, max_displacement):
        return cpu.correlation(first, second, max_displacement)

    geometry = ("stride_y", "stride_x", "padding_y", "padding_x", "dilation_y", "dilation_x")

    @onnx_op(op_type=DEFORM_CONV, inputs=[f32] * 5, outputs=[f32], attrs=dict.fromkeys(geometry, i64))
    def _deform_conv(
        x, offset, mask, weight, bias, stride_y, stride_x, padding_y, padding_x, dilation_y, dilation_x
    ):
        return cpu.modulated_deform_conv2d(
            x,
            offset,
            mask,
            weight,
            bias,
            stride=(stride_y, stride_x),
            padding=(padding_y, padding_x),
            dilation=(dilation_y, dilation_x),
        )

    def array_hook(op_id, feed, attributes):
        op = ocos.Opdef._odlist[op_id]
        result = op.body(*feed, **op.cast_attributes(attributes))
        return op_id, result.shape, np.ascontiguousarray(result)

    PyCustomOpDef.install_hooker(array_hook)
    _registered = True


def register_plugin_ops(options: ort.SessionOptions) -> str | None:
    """Register our custom ops on ``options``; the reason they are unavailable, or None."""
    try:
        from onnxruntime_extensions import get_library_path
    except ImportError:
        return "onnxruntime-extensions is not installed"
    try:
        _register_ops()
    except (ImportError, OSError) as exc:
        return f"the dpanet CPU kernels cannot be loaded ({exc})"
    options.register_custom_ops_library(get_library_path())
    return None
