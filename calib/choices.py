"""Choices and defaults of ``dpanet calibrate`` that the CLI shows without importing onnx."""

from __future__ import annotations

import platform

TARGETS = ("tensorrt", "cpu")
"""``--target``: the Q/DQ layouts of :mod:`dpanet.calib.layout`."""

METHOD_NAMES = ("minmax", "entropy", "percentile")
"""``--method``: ONNX Runtime's calibrators (:data:`dpanet.calib.quantize.METHODS`)."""

DEFAULT_METHOD = "minmax"  # chosen by measurement (docs/int8.md, "Calibration methods")

DEFAULT_MIN_PSNR = 45.0
"""dB against the float model's output on every calibration pair, measured as ``dpanet parity``
measures it (the peak is the reference's maximum): parity's int8 floor is 40 dB on every pair, and
held-out pairs may score a few dB below the calibration pairs (docs/int8.md, "What the default
gives"), so 45 leaves that margin."""

CPU_ARCHES = ("x86", "arm")
"""``--cpu-arch``: ONNX Runtime's quantization guide recommends U8S8 (uint8 activations, int8
weights) on x86-64, where VNNI's u8 x s8 dot products run it, and S8S8 on ARM (int8 both).
Activations are asymmetric in both."""


def this_cpu_arch() -> str:
    """``arm`` on an ARM machine (aarch64, arm64, armv7l), ``x86`` otherwise."""
    machine = platform.machine().lower()
    return "arm" if machine.startswith(("arm", "aarch")) else "x86"
