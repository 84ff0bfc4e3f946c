"""``dpanet doctor``: can this machine run DPANet? One line per check (torch-free; docs/engines.md).

Each check is a function that returns what it found (``ok``), raises :class:`Skipped` with why it
could not run here, or raises :class:`Failed` (or :class:`DPANetError`) with the reason and the
fix. The kernel and engine comparisons are those of the GPU tests
(:mod:`dpanet.runtime.kernel_checks`, :mod:`dpanet.runtime.engine_checks`): one source.

A whole-model engine needs an exported model, and exporting needs torch, which a Jetson usually
lacks: doctor builds only the models given with ``--onnx`` (a DPANet graph written here without
torch would be a second copy of the architecture). Without one, the model and memory lines say so.
"""

from __future__ import annotations

import importlib
import json
import math
import platform
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from dpanet.errors import DPANetError
from dpanet.plugins._library import LibraryNotBuilt
from dpanet.plugins.op_cases import CORRELATION_CASES, DCN_CASES

STATUSES = ("ok", "FAIL", "skipped")
TEGRA_RELEASE = Path("/etc/nv_tegra_release")
# one case per op for the one-node engines (each is an engine build): DPANet's displacement and
# its DCN geometry on a small image
ENGINE_CORRELATION_CASE = ((1, 8, 9, 6), 4)
ENGINE_DCN_CASE = DCN_CASES[-1]
IO_TENSORS = 3  # left, right, output
REPORT_FIX = "rerun with --json and report it with the output"


class Skipped(Exception):
    """The check cannot run here; the message says why."""


class Failed(Exception):
    def __init__(self, reason: str, fix: str) -> None:
        super().__init__(reason)
        self.reason, self.fix = reason, fix


@dataclass(frozen=True)
class Result:
    name: str
    status: str  # one of STATUSES
    detail: str  # what was found (ok), the reason (FAIL), why not (skipped)
    fix: str | None = None

    def line(self) -> str:
        fix = f"; fix: {self.fix}" if self.fix else ""
        return f"{self.status:<7} {self.name}: {self.detail}{fix}"


def run_check(name: str, check: Callable[[], str]) -> Result:
    try:
        return Result(name, "ok", check())
    except Skipped as exc:
        return Result(name, "skipped", str(exc))
    except Failed as exc:
        return Result(name, "FAIL", exc.reason, exc.fix)
    except LibraryNotBuilt as exc:  # its message is "<what> (looked in ...). <how to build it>"
        reason, _, fix = str(exc).partition(". ")
        return Result(name, "FAIL", reason, fix)
    except DPANetError as exc:
        return Result(name, "FAIL", str(exc), REPORT_FIX)
    except Exception as exc:  # a check must not end the report: anything unexpected is its FAIL line
        return Result(name, "FAIL", f"{type(exc).__name__}: {exc}", REPORT_FIX)


class Machine:
    """What the checks share, found once: the TensorRT module, pycuda with a context, the GPU.
    Each accessor raises :class:`Skipped` (absent) or :class:`Failed` (present but unusable)."""

    def __init__(self) -> None:
        self._found: dict[str, object] = {}

    def _once(self, key: str, find: Callable[[], object]):
        if key not in self._found:
            try:
                self._found[key] = find()
            except (Skipped, Failed) as exc:
                self._found[key] = exc
        value = self._found[key]
        if isinstance(value, Skipped | Failed):
            raise value
        return value

    def tensorrt(self):
        return self._once("tensorrt", _find_tensorrt)

    def pycuda(self):
        return self._once("pycuda", _find_pycuda)

    def gpu(self) -> tuple[str, str]:
        """(name, compute capability "X.Y")."""
        return self._once("gpu", self._find_gpu)

    def _find_gpu(self) -> tuple[str, str]:
        self.pycuda()
        from dpanet.runtime.tensorrt_engine import gpu_identity

        try:
            return gpu_identity()
        except DPANetError as exc:
            raise Skipped(f"no usable CUDA device ({exc})") from None


def _find_tensorrt():
    try:
        import tensorrt  # noqa: F401
    except ModuleNotFoundError as exc:
        raise Skipped(f"TensorRT is not installed ({exc}): no plugin or engine checks") from None
    except Exception:  # the bindings without libnvinfer raise OSError: import_tensorrt says it
        pass
    from dpanet.runtime.tensorrt_engine import INSTALL_HINT, import_tensorrt

    try:
        return import_tensorrt()
    except DPANetError as exc:
        raise Failed(str(exc).replace(INSTALL_HINT, "TensorRT does not load"), INSTALL_HINT) from None


def _find_pycuda():
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise Skipped(
            f"pycuda is not installed ({exc}): no GPU checks (pip install pycuda on a GPU machine)"
        ) from None
    try:
        cuda.init()
        count = cuda.Device.count()
    except Exception as exc:  # pycuda.driver.Error, or a driver library that will not load
        raise Skipped(f"no CUDA driver or device ({exc})") from None
    if count == 0:
        raise Skipped("no CUDA device (the driver reports none)")
    return cuda


def package_version(module: str) -> str:
    """The version of an importable package (``onnxruntime`` also when installed as onnxruntime-gpu)."""
    try:
        package = importlib.import_module(module)
    except ImportError as exc:
        raise Skipped(f"{module} is not installed ({exc})") from None
    return str(getattr(package, "__version__", None) or getattr(package, "VERSION_TEXT", "unknown version"))


def jetson_release(text: str) -> str:
    """``L4T R36.4.0`` from /etc/nv_tegra_release (``# R36 (release), REVISION: 4.0, ...``)."""
    found = re.match(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    if found is None:
        raise Failed(f"{TEGRA_RELEASE}: unrecognised contents {text[:60]!r}", "check the JetPack install")
    major, revision = found.groups()
    release = f"L4T R{major}.{revision}"
    if (int(major), int(revision.split(".")[0])) < (36, 4):
        raise Failed(
            f"{release}: older than JetPack 6.1 (L4T R36.4), whose TensorRT 10.3 dpanet needs",
            "flash JetPack 6.1 or newer (docs/engines.md)",
        )
    return f"{release} (JetPack 6.1 or newer)"


def check_jetpack() -> str:
    if not TEGRA_RELEASE.is_file():
        raise Skipped(f"not a Jetson (no {TEGRA_RELEASE})")
    return jetson_release(TEGRA_RELEASE.read_text(encoding="utf-8", errors="replace"))


def _comparisons(label: str, comparisons) -> str:
    """One line for many :class:`Comparison` s: the worst, or a FAIL naming the first failing."""
    comparisons = list(comparisons)
    for c in comparisons:
        if not c.passed:
            raise Failed(c.describe(), REPORT_FIX)
    worst = max(comparisons, key=lambda c: c.max_error)
    limit = f"atol {worst.atol:g}" + (f", rtol {worst.rtol:g}" if worst.rtol else "")
    return f"{len(comparisons)} {label} cases within {limit} (max error {worst.max_error:.2g})"


def check_cpu_correlation() -> str:
    from dpanet.runtime.kernel_checks import compare_cpu_correlation

    comparisons = (compare_cpu_correlation(shape, d) for shape, d in CORRELATION_CASES)
    return _comparisons("correlation", comparisons) + " of the float64 reference"


def check_cpu_deform_conv() -> str:
    from dpanet.runtime.kernel_checks import compare_cpu_deform_conv

    comparisons = (compare_cpu_deform_conv(case) for case in DCN_CASES)
    return _comparisons("DCN", comparisons) + " of the float64 reference"


def cuda_library_path() -> Path:
    from dpanet.plugins._library import LibraryNotBuilt, library_path

    try:
        return library_path("cuda")
    except LibraryNotBuilt as exc:
        fix = "build the CUDA kernels: pip install -e . with nvcc on PATH (docs/plugins.md)"
        raise Failed(str(exc), fix) from None


def check_cuda_architecture(machine: Machine) -> str:
    from dpanet.runtime.kernel_checks import find_cuobjdump, library_architectures, runs_on

    try:
        library = cuda_library_path()
    except Failed:
        machine.gpu()  # without a GPU, a library not built is no failure
        raise
    cuobjdump = find_cuobjdump()
    listed = None
    if cuobjdump is not None:
        cubins, ptx = library_architectures(library, cuobjdump)
        listed = ", ".join([f"sm_{a}" for a in cubins] + [f"compute_{a} PTX" for a in ptx])
    try:
        _, capability = machine.gpu()
    except Skipped as exc:
        raise Skipped(f"{exc}; {library.name} holds {listed}" if listed else str(exc)) from None
    if cuobjdump is None:
        raise Skipped(
            "cuobjdump (CUDA toolkit) not found: the kernel lines below fail with 'no kernel image' "
            "if the library lacks this GPU's architecture"
        )
    how = runs_on(cubins, ptx, capability)
    if how is None:
        sm = capability.replace(".", "")
        raise Failed(
            f"{library.name} holds {listed or 'no CUDA code'}, nothing for this GPU (sm_{sm})",
            f"reinstall with CMAKE_ARGS=-DCMAKE_CUDA_ARCHITECTURES={sm} pip install -e . (docs/plugins.md)",
        )
    return f"{library.name} holds {listed}: runs as {how}"


def _launched(label: str, comparisons) -> str:
    """:func:`_comparisons` of CUDA kernel runs; a launch that finds no code for this GPU is the
    architecture's FAIL with its fix."""
    try:
        return _comparisons(label, comparisons) + " of the CPU kernel"
    except ValueError as exc:
        if "no kernel image" not in str(exc):
            raise
        raise Failed(
            f"{exc}: libdpanet_cuda.so was built without this GPU's architecture",
            "reinstall with CMAKE_ARGS=-DCMAKE_CUDA_ARCHITECTURES=native pip install -e . (docs/plugins.md)",
        ) from None


def check_cuda_correlation(machine: Machine) -> str:
    from dpanet.runtime.kernel_checks import compare_cuda_correlation

    machine.gpu()
    cuda_library_path()
    cases = [(shape, d, p) for p in ("fp32", "fp16") for shape, d in CORRELATION_CASES]
    return _launched("correlation fp32 and fp16", (compare_cuda_correlation(*case) for case in cases))


def check_cuda_deform_conv(machine: Machine) -> str:
    from dpanet.runtime.kernel_checks import compare_cuda_deform_conv

    machine.gpu()
    cuda_library_path()
    cases = [(case, p) for p in ("fp32", "fp16") for case in DCN_CASES]
    return _launched("DCN fp32 and fp16", (compare_cuda_deform_conv(*case) for case in cases))


def check_plugin_library(machine: Machine) -> str:
    from dpanet.plugins._library import LibraryNotBuilt
    from dpanet.runtime.engine_checks import plugin_library_status

    trt = machine.tensorrt()
    try:
        return plugin_library_status(trt)
    except LibraryNotBuilt as exc:
        raise Failed(str(exc), "build it against this TensorRT's headers (docs/plugins.md)") from None


def check_correlation_engine(machine: Machine) -> str:
    from dpanet.runtime.engine_checks import compare_correlation_engine

    trt = machine.tensorrt()
    machine.gpu()
    shape, d = ENGINE_CORRELATION_CASE
    comparisons = (compare_correlation_engine(trt, shape, d, p) for p in ("fp32", "fp16"))
    return _comparisons("one-node correlation engine (fp32, fp16)", comparisons) + " of the CPU kernel"


def check_deform_conv_engine(machine: Machine) -> str:
    from dpanet.runtime.engine_checks import compare_deform_conv_engine

    trt = machine.tensorrt()
    machine.gpu()
    comparisons = (compare_deform_conv_engine(trt, ENGINE_DCN_CASE, p) for p in ("fp32", "fp16"))
    return _comparisons("one-node DCN engine (fp32, fp16)", comparisons) + " of the CPU kernel"


def memory_needed(device_memory: int, at: tuple[int, int], target: tuple[int, int], channels: int = 3) -> int:
    """Bytes an engine needs at ``target`` (H, W), from its activation memory at ``at``: activations
    grow with the pixel count (a convolutional network's tensors do), plus float32 input and output
    buffers."""
    pixels = target[0] * target[1]
    return int(device_memory * pixels / (at[0] * at[1])) + IO_TENSORS * channels * 4 * pixels


def largest_fitting(free: int, needed: int, target: tuple[int, int], share: float = 0.8) -> tuple[int, int]:
    """The largest HxW, ``target``'s aspect ratio and multiples of 8, whose estimate fits ``share``
    of ``free`` bytes (needs grow with pixels: scale both sides by the square root)."""
    scale = math.sqrt(share * free / needed)
    return tuple(max(8, int(side * scale) // 8 * 8) for side in target)


def memory_verdict(free: int, device_memory: int, at: tuple[int, int]) -> str:
    from dpanet.runtime.tensorrt_engine import DEFAULT_MAX

    needed = memory_needed(device_memory, at, DEFAULT_MAX)
    default = f"{DEFAULT_MAX[0]}x{DEFAULT_MAX[1]}"
    gib = 1 << 30
    if needed > free:
        h, w = largest_fitting(free, needed, DEFAULT_MAX)
        raise Failed(
            f"the default profile ({default}) needs about {needed / gib:.2f} GiB, "
            f"{free / gib:.2f} GiB is free",
            f"build the engine with --max {h}x{w} (or smaller) and deblur larger images with --tile {h}x{w}",
        )
    return f"the default profile ({default}) needs about {needed / gib:.2f} GiB of {free / gib:.2f} GiB free"


@dataclass
class ModelChecks:
    """The two lines of one ``--onnx`` model: its engine against ONNX Runtime, and memory."""

    path: Path
    machine: Machine
    _result: object = None

    def _run(self):
        if self._result is None:
            from dpanet.runtime.engine_checks import check_model_engine

            self.machine.tensorrt()
            self.machine.gpu()
            try:
                self._result = check_model_engine(self.path)
            except DPANetError as exc:
                self._result = Failed(str(exc), REPORT_FIX)
        if isinstance(self._result, Failed):
            raise self._result
        return self._result

    def engine(self) -> str:
        result = self._run()
        if not result.passed:
            raise Failed(result.describe(), REPORT_FIX)
        return result.describe()

    def memory(self) -> str:
        from dpanet.runtime.cuda_context import primary_context

        result = self._run()
        cuda = self.machine.pycuda()
        with primary_context(cuda).active():
            free, _ = cuda.mem_get_info()
        return memory_verdict(free, result.device_memory, result.profile_max)


def _no_model() -> str:
    raise Skipped(
        "no model given: pass --onnx FILE (a dpanet export, plugin and portable flavours); doctor does "
        "not export one itself, exporting needs torch"
    )


def checks(models: list[Path]) -> Iterator[tuple[str, Callable[[], str]]]:
    """Every check as (name, function), in report order."""
    machine = Machine()
    yield "python", lambda: f"{platform.python_version()} ({platform.machine()})"
    for package in ("numpy", "onnxruntime", "pycuda"):
        yield package, lambda package=package: package_version(package)
    yield "tensorrt", lambda: machine.tensorrt().__version__
    yield "cuda driver", lambda: _driver_version(machine)
    yield "gpu", lambda: _gpu_line(machine)
    yield "jetpack", check_jetpack
    yield "cpu correlation", check_cpu_correlation
    yield "cpu deform_conv", check_cpu_deform_conv
    yield "cuda architecture", lambda: check_cuda_architecture(machine)
    yield "cuda correlation", lambda: check_cuda_correlation(machine)
    yield "cuda deform_conv", lambda: check_cuda_deform_conv(machine)
    yield "plugin library", lambda: check_plugin_library(machine)
    yield "engine correlation", lambda: check_correlation_engine(machine)
    yield "engine deform_conv", lambda: check_deform_conv_engine(machine)
    if not models:
        yield "model engine", _no_model
        yield "memory", _no_model
    for path in models:
        model = ModelChecks(path, machine)
        yield f"model engine {path.name}", model.engine
        yield f"memory {path.name}", model.memory


def _driver_version(machine: Machine) -> str:
    version = machine.pycuda().get_driver_version()  # e.g. 12060
    return f"CUDA {version // 1000}.{version % 1000 // 10}"


def _gpu_line(machine: Machine) -> str:
    name, capability = machine.gpu()
    total = machine.pycuda().Device(0).total_memory()
    return f"{name}, compute capability {capability}, {total / (1 << 30):.1f} GiB"


def run_all(models: list[Path], on_result: Callable[[Result], None] = lambda _: None) -> list[Result]:
    """Runs every check in order; ``on_result`` sees each result as it comes (to print it)."""
    results = []
    for name, check in checks(models):
        results.append(run_check(name, check))
        on_result(results[-1])
    return results


def json_report(results: list[Result]) -> str:
    failed = sum(r.status == "FAIL" for r in results)
    report = {"passed": failed == 0, "failed": failed, "checks": [asdict(r) for r in results]}
    return json.dumps(report, indent=2) + "\n"
