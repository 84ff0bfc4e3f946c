"""The op kernels on small cases, the way ``dpanet doctor`` and the GPU tests check them (torch-free).

- CPU kernels (:mod:`dpanet.plugins.cpu`) against the float64 loops of
  :mod:`dpanet.plugins.reference_ops`, within :data:`CPU_TOLERANCE`.
- CUDA kernels (:mod:`dpanet.plugins.cuda`, device memory through pycuda) against the CPU kernels
  within :data:`CUDA_TOLERANCES`. float16: the kernels read float16, compute in float32 and round
  the output once, so they are compared with the CPU kernels on the same float16-rounded inputs
  (float16's spacing is 2^-11 ~ 4.9e-4 relative, plus accumulation order).
- Whether the CUDA library holds code for a GPU: its cubins and PTX as ``cuobjdump`` lists them.

Each ``compare_*`` returns a :class:`Comparison`; tests assert ``comparison.passed``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dpanet.plugins.op_cases import correlation_case, dcn_case

CPU_TOLERANCE = 1e-5
CUDA_TOLERANCES = {"fp32": (1e-5, 0.0), "fp16": (2e-3, 2e-3)}  # (atol, rtol)
NUMPY_TYPES = {"fp32": np.float32, "fp16": np.float16}


@dataclass(frozen=True)
class Comparison:
    """``got`` against ``expected`` within ``atol + rtol * |expected|`` (numpy's allclose rule)."""

    label: str
    max_error: float
    worst_excess: float  # max of |got - expected| - (atol + rtol |expected|); <= 0 passes
    atol: float
    rtol: float

    @property
    def passed(self) -> bool:
        return self.worst_excess <= 0

    def describe(self) -> str:
        limit = f"atol {self.atol:g}" + (f", rtol {self.rtol:g}" if self.rtol else "")
        verdict = "within" if self.passed else "outside"
        return f"{self.label}: max error {self.max_error:.3g}, {verdict} {limit}"


def compare(label: str, got: np.ndarray, expected: np.ndarray, atol: float, rtol: float = 0.0) -> Comparison:
    if got.shape != expected.shape:
        label = f"{label} (shape {got.shape}, expected {expected.shape})"
        return Comparison(label, np.inf, np.inf, atol, rtol)
    got, expected = got.astype(np.float64), expected.astype(np.float64)
    error = np.abs(got - expected)
    excess = error - (atol + rtol * np.abs(expected))
    bad = ~np.isfinite(got)
    return Comparison(
        label,
        float(np.inf if bad.any() else error.max(initial=0.0)),
        float(np.inf if bad.any() else excess.max(initial=-np.inf)),
        atol,
        rtol,
    )


def correlation_label(shape, d) -> str:
    return f"correlation {'x'.join(map(str, shape))} d={d}"


def deform_conv_label(case) -> str:
    n, c, h, w, o, k, stride, padding, dilation = case[:9]
    geometry = f"stride {stride}, padding {padding}, dilation {dilation}"
    return f"DCN {n}x{c}x{h}x{w} -> {o} channels, {k}x{k}, {geometry}"


def compare_cpu_correlation(shape, d) -> Comparison:
    from dpanet.plugins import cpu
    from dpanet.plugins.reference_ops import correlation_reference

    first, second = correlation_case(shape, d)
    expected = correlation_reference(first, second, d)
    return compare(correlation_label(shape, d), cpu.correlation(first, second, d), expected, CPU_TOLERANCE)


def compare_cpu_deform_conv(case) -> Comparison:
    from dpanet.plugins import cpu
    from dpanet.plugins.reference_ops import deform_conv_reference

    stride, padding, dilation = case[6:9]
    args = dcn_case(*case)
    expected = deform_conv_reference(*args, stride, padding, dilation)
    got = cpu.modulated_deform_conv2d(*args, stride, padding, dilation)
    return compare(deform_conv_label(case), got, expected, CPU_TOLERANCE)


def rounded(arrays, precision: str) -> list[np.ndarray]:
    """The arrays in the kernel's precision (float16 rounds them once)."""
    return [np.ascontiguousarray(a.astype(NUMPY_TYPES[precision])) for a in arrays]


def compare_cuda_correlation(shape, d, precision: str) -> Comparison:
    """The CUDA correlation (``precision`` "fp32"/"fp16") against the CPU kernel on the same inputs."""
    from dpanet.plugins import cpu, cuda

    first, second = rounded(correlation_case(shape, d), precision)
    out_shape = (shape[0], (2 * d + 1) ** 2, shape[2], shape[3])
    with DeviceArrays(precision) as device:
        a, b = device.upload(first), device.upload(second)
        out = device.empty(out_shape)
        cuda.correlation_into(a, b, d, device.code, out.ptr)
        got = device.download(out)
    expected = cpu.correlation(first.astype(np.float32), second.astype(np.float32), d)
    atol, rtol = CUDA_TOLERANCES[precision]
    return compare(f"{correlation_label(shape, d)} {precision}", got, expected, atol, rtol)


def compare_cuda_deform_conv(
    case, precision: str, with_bias: bool = True, binary_mask: bool = False
) -> Comparison:
    """The CUDA DCN (``precision`` "fp32"/"fp16") against the CPU kernel on the same inputs;
    ``binary_mask``: the mask rounded to exactly 0 and 1."""
    from dpanet.plugins import cpu, cuda

    stride, padding, dilation = case[6:9]
    x, offset, mask, weight, bias = rounded(dcn_case(*case), precision)
    bias = bias if with_bias else None
    mask = np.round(mask) if binary_mask else mask
    out_shape = (x.shape[0], weight.shape[0], *offset.shape[2:])
    with DeviceArrays(precision) as device:
        tensors = [device.upload(a) for a in (x, offset, mask, weight)]
        on_device_bias = device.upload(bias) if bias is not None else None
        out = device.empty(out_shape)
        workspace = device.allocate(cuda.deform_conv_workspace_bytes(weight.shape, device.code))
        cuda.deform_conv_into(
            *tensors, on_device_bias, stride, padding, dilation, device.code, out.ptr, workspace
        )
        got = device.download(out)
    as_float = [a.astype(np.float32) if a is not None else None for a in (x, offset, mask, weight, bias)]
    expected = cpu.modulated_deform_conv2d(*as_float, stride, padding, dilation)
    atol, rtol = CUDA_TOLERANCES[precision]
    variant = ("" if with_bias else " no bias") + (" binary mask" if binary_mask else "")
    return compare(f"{deform_conv_label(case)}{variant} {precision}", got, expected, atol, rtol)


class DeviceArrays:
    """Device copies of numpy arrays of one precision through pycuda, in device 0's primary context
    (the one TensorRT and the backend work in: :mod:`dpanet.runtime.cuda_context`), current from
    entry to exit; freed on exit. Waits for the device before every download and on exit."""

    def __init__(self, precision: str) -> None:
        from dpanet.plugins import cuda as kernels
        from dpanet.runtime.tensorrt_engine import import_pycuda

        self._cuda = import_pycuda()
        self.dtype = NUMPY_TYPES[precision]
        self.code = {"fp32": kernels.FLOAT32, "fp16": kernels.FLOAT16}[precision]
        self._allocations = []
        self._streams = []
        self._active = ExitStack()

    def __enter__(self) -> DeviceArrays:
        from dpanet.runtime.cuda_context import primary_context

        self._active.enter_context(primary_context(self._cuda).active())
        return self

    def __exit__(self, *exc) -> None:
        with self._active:  # pops the context after the device objects are gone
            self._cuda.Context.synchronize()
            for allocation in self._allocations:
                allocation.free()
            self._streams.clear()

    def stream(self) -> int:
        """A new CUDA stream's handle (TensorRT warns about the default stream), alive until exit."""
        self._streams.append(self._cuda.Stream())
        return self._streams[-1].handle

    def allocate(self, nbytes: int) -> int:
        allocation = self._cuda.mem_alloc(max(int(nbytes), 1))
        self._allocations.append(allocation)
        return int(allocation)

    def empty(self, shape):
        from dpanet.plugins.cuda import DeviceTensor

        nbytes = int(np.prod(shape)) * np.dtype(self.dtype).itemsize
        return DeviceTensor(self.allocate(nbytes), tuple(shape))

    def upload(self, array: np.ndarray):
        from dpanet.plugins.cuda import DeviceTensor

        array = np.ascontiguousarray(array, dtype=self.dtype)
        ptr = self.allocate(array.nbytes)
        self._cuda.memcpy_htod(ptr, array)
        return DeviceTensor(ptr, array.shape)

    def download(self, tensor) -> np.ndarray:
        self._cuda.Context.synchronize()
        host = np.empty(tensor.shape, self.dtype)
        self._cuda.memcpy_dtoh(host, tensor.ptr)
        return host


CUDA_TOOLKIT_BINS = (Path("/usr/local/cuda/bin"),)
_ARCH = re.compile(r"\bsm_(\d+)[a-z]?\.(cubin|ptx)\b")


def find_cuobjdump() -> str | None:
    """``cuobjdump`` (CUDA toolkit): on PATH, under $CUDA_HOME/bin, /usr/local/cuda/bin (JetPack),
    or from NVIDIA's pip package (nvidia-cuda-cuobjdump: ``nvidia/<cu13 or cuda_cuobjdump>/bin``)."""
    found = shutil.which("cuobjdump")
    if found:
        return found
    bins = [Path(os.environ["CUDA_HOME"]) / "bin"] if os.environ.get("CUDA_HOME") else []
    bins += list(CUDA_TOOLKIT_BINS)
    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations or []) if spec else []:
        bins += sorted(p.parent for p in Path(root).glob("*/bin/cuobjdump"))
    return next((str(b / "cuobjdump") for b in bins if (b / "cuobjdump").is_file()), None)


def parse_cuobjdump(listing: str) -> tuple[list[int], list[int]]:
    """(cubin architectures, PTX architectures) from ``cuobjdump --list-elf --list-ptx`` output,
    e.g. ``ELF file    1: libdpanet_cuda.1.sm_87.cubin`` -> 87."""
    cubins, ptx = set(), set()
    for number, kind in _ARCH.findall(listing):
        (cubins if kind == "cubin" else ptx).add(int(number))
    return sorted(cubins), sorted(ptx)


def library_architectures(library: str | os.PathLike, cuobjdump: str) -> tuple[list[int], list[int]]:
    done = subprocess.run(
        [cuobjdump, "--list-elf", "--list-ptx", str(library)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ValueError(f"{cuobjdump} failed on {library}: {done.stderr.strip() or done.stdout.strip()}")
    return parse_cuobjdump(done.stdout)


def runs_on(cubins: list[int], ptx: list[int], capability: str) -> str | None:
    """How code for ``cubins``/``ptx`` runs on a GPU of compute ``capability`` ("8.6"): a cubin of
    the same major and a minor at most the GPU's runs as is, PTX of an architecture at most the
    GPU's is compiled at load (JIT); None when neither is there ("no kernel image")."""
    major, minor = (int(v) for v in capability.split("."))
    here = major * 10 + minor
    native = [a for a in cubins if a // 10 == major and a % 10 <= minor]
    if native:
        return f"sm_{max(native)} code"
    jit = [a for a in ptx if a <= here]
    if jit:
        return f"PTX of compute_{max(jit)}, compiled for sm_{here} at first load"
    return None
