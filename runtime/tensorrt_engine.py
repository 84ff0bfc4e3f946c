"""TensorRT engines from exported ONNX models: build, sidecar, checks (torch-free; docs/engines.md).

Building needs the ``tensorrt`` package (and a GPU); everything that decides something without
TensorRT (profile shapes, precision, the sidecar's fields and checks, the trtexec line) is plain
Python here, so that it is tested on machines without one.

Version-specific TensorRT code sits in functions whose names end in ``_trt10`` or ``_trt11``:
tests/test_tensorrt_names.py checks the TensorRT names they use against that version's Python API
only, and every other TensorRT name against both (10.3 and 11.1).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from dpanet.errors import DPANetError
from dpanet.extras import pip_command
from dpanet.files import atomic_write, check_not_input, check_writable_folder, write_text_atomic
from dpanet.runtime.model_info import INPUT_NAMES, METADATA_PREFIX, model_info_from_metadata
from dpanet.runtime.tensorrt_plugins import load_plugin_library

SUPPORTED_MAJORS = (10, 11)
INSTALL_HINT = (
    f"TensorRT is needed: on a GPU machine {pip_command('tensorrt')} (x86-64 or SBSA Linux, CUDA "
    "12/13 driver), on a Jetson use JetPack 6.1 or newer (TensorRT 10.3: apt install python3-libnvinfer "
    "and pip install pycuda); see docs/engines.md"
)
DEFAULT_MIN = (256, 256)
DEFAULT_OPT = DEFAULT_MAX = (1120, 1680)  # one DPDD frame


def import_tensorrt():
    """The ``tensorrt`` module, or :class:`DPANetError` with :data:`INSTALL_HINT`."""
    try:
        import tensorrt
    except Exception as exc:  # the bindings without libnvinfer raise OSError, not ImportError
        raise DPANetError(f"{INSTALL_HINT} (import tensorrt: {exc})") from None
    major = tensorrt_major(tensorrt.__version__)
    if major not in SUPPORTED_MAJORS:
        raise DPANetError(
            f"TensorRT {tensorrt.__version__} is not supported: need TensorRT 10.x (10.3+, JetPack 6.1+) "
            "or 11.x (docs/engines.md)"
        )
    return tensorrt


def tensorrt_major(version: str) -> int:
    return int(version.split(".")[0])


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar_path(engine: str | os.PathLike) -> Path:
    return Path(f"{engine}.json")


@dataclass(frozen=True)
class Profile:
    """One optimization profile for ``left`` and ``right``: batch and (H, W) at min, opt, max."""

    batch: int
    min: tuple[int, int]
    opt: tuple[int, int]
    max: tuple[int, int]

    def shapes(self, channels: int) -> tuple[tuple[int, ...], ...]:
        """(min, opt, max) input shapes, N x ``channels`` x H x W."""
        return tuple((self.batch, channels, *hw) for hw in (self.min, self.opt, self.max))

    def check(self) -> None:
        if self.batch < 1:
            raise DPANetError(f"--batch: must be at least 1, got {self.batch}")
        for axis, name in ((0, "height"), (1, "width")):
            if not self.min[axis] <= self.opt[axis] <= self.max[axis]:
                raise DPANetError(
                    f"--min/--opt/--max: {name}s {self.min[axis]}, {self.opt[axis]}, {self.max[axis]} "
                    "are not in increasing order"
                )

    def describe(self) -> str:
        return " to ".join(f"{h}x{w}" for h, w in (self.min, self.max))

    def memory_advice(self) -> str:
        """What bounds the GPU memory an engine of this profile needs (said after it ran out)."""
        return (
            f"the engine's profile is batch {self.batch}, {self.describe()} (HxW): rebuild it with a smaller "
            "--max (dpanet build-engine), or deblur by tiles (--tile HxW) with a profile that fits the tile"
        )

    def check_input(self, shape: tuple[int, ...], label: str) -> None:
        """Raise :class:`DPANetError` unless an N x C x H x W input fits this profile."""
        n, _, h, w = shape
        fits = n == self.batch and all(
            lo <= v <= hi for v, lo, hi in zip((h, w), self.min, self.max, strict=True)
        )
        if not fits:
            raise DPANetError(
                f"{label}: input {h}x{w} (batch {n}) is outside the engine's profile: batch {self.batch}, "
                f"{self.describe()} (HxW, padded to multiples of 8); rebuild with dpanet build-engine "
                "--min/--max, or deblur by tiles"
            )


def profile_for(
    size: str,
    batch: int,
    min_hw: tuple[int, int] | None,
    opt_hw: tuple[int, int] | None,
    max_hw: tuple[int, int] | None,
) -> Profile:
    """The profile for a model of ``size`` ("dynamic" or "HxW", from its metadata) and the options."""
    given = (min_hw, opt_hw, max_hw)
    if size != "dynamic":
        h, w = (int(v) for v in size.split("x"))
        if any(v is not None and v != (h, w) for v in given):
            raise DPANetError(
                f"--min/--opt/--max: the model is static ({h}x{w}); its profile can only be {h}x{w}"
            )
        sizes = Profile(batch, (h, w), (h, w), (h, w))
    else:
        max_hw = max_hw or opt_hw or DEFAULT_MAX
        opt_hw = opt_hw or max_hw
        min_hw = min_hw or (min(DEFAULT_MIN[0], opt_hw[0]), min(DEFAULT_MIN[1], opt_hw[1]))
        sizes = Profile(batch, min_hw, opt_hw, max_hw)
    sizes.check()
    return sizes


def onnx_precision(model) -> str:
    """``int8`` for a Q/DQ graph, ``fp16`` for one with float16 tensors, else ``fp32``."""
    import onnx

    if any(node.op_type in ("QuantizeLinear", "DequantizeLinear") for node in model.graph.node):
        return "int8"
    half = onnx.TensorProto.FLOAT16
    values = list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output)
    if any(t.data_type == half for t in model.graph.initializer) or any(
        v.type.tensor_type.elem_type == half for v in values
    ):
        return "fp16"
    return "fp32"


@dataclass(frozen=True)
class BuildRequest:
    onnx: Path
    output: Path
    plugins: Path | None = None
    profile_min: tuple[int, int] | None = None
    profile_opt: tuple[int, int] | None = None
    profile_max: tuple[int, int] | None = None
    batch: int = 1
    workspace_gib: float = 4.0
    timing_cache: Path | None = None
    weakly_typed: bool = False  # 10.x only: FP16/INT8 builder flags instead of a strongly typed network


@dataclass(frozen=True)
class ModelFacts:
    """What build-engine reads from the ONNX file before TensorRT is involved."""

    data: bytes
    sha256: str
    metadata: dict[str, str]
    precision: str
    flavor: str
    profile: Profile
    channels: int  # of left and right, from the model's dpanet.config


def read_model(request: BuildRequest) -> ModelFacts:
    """Checks the request's files and options and reads the model (no TensorRT needed)."""
    import onnx

    if not request.onnx.is_file():
        raise DPANetError(f"{request.onnx}: no such file")
    if request.plugins is not None and not request.plugins.is_file():
        raise DPANetError(f"{request.plugins}: no such file (--plugins)")
    if request.workspace_gib <= 0:
        raise DPANetError(f"--workspace: must be positive, got {request.workspace_gib}")
    for output in (request.output, sidecar_path(request.output)):
        check_writable_folder(output)
        check_not_input(output, request.onnx, request.plugins, request.timing_cache)
    if request.timing_cache is not None:
        check_writable_folder(request.timing_cache)
        check_not_input(request.timing_cache, request.onnx, request.plugins)
    data = request.onnx.read_bytes()
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise DPANetError(f"{request.onnx}: not an ONNX model ({exc})") from None
    metadata = {p.key: p.value for p in model.metadata_props if p.key.startswith(METADATA_PREFIX)}
    info = model_info_from_metadata(metadata, str(request.onnx))
    if info.precision == "int8" and info.int8.get("target") == "cpu":
        raise DPANetError(
            f"{request.onnx}: an int8 file for ONNX Runtime's CPU kernels (dpanet calibrate --target cpu: "
            "uint8 activations with non-zero zero points, which TensorRT does not take); calibrate with "
            "--target tensorrt for an engine (docs/int8.md)"
        )
    names = [i.name for i in model.graph.input]
    if names[: len(INPUT_NAMES)] != list(INPUT_NAMES):
        raise DPANetError(f"{request.onnx}: inputs are {names}, expected {list(INPUT_NAMES)} (dpanet export)")
    profile = profile_for(
        info.size, request.batch, request.profile_min, request.profile_opt, request.profile_max
    )
    return ModelFacts(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        metadata=metadata,
        precision=onnx_precision(model),
        flavor=info.flavor,
        profile=profile,
        channels=info.input_channels,
    )


def strongly_typed(major: int, weakly_typed: bool) -> bool:
    """Whether the network is built strongly typed: always on 11.x; on 10.x unless ``--weakly-typed``.

    NVIDIA's guidance for Q/DQ files is explicit quantization with strong typing and no precision
    flags (TensorRT developer guide, "Explicit Quantization"; docs/engines.md cites it), and 11.x
    knows nothing else: a strongly typed 10.x build runs each layer in the type the file gives it,
    as 11.x does, so the engines of one file agree in precision on both majors."""
    if weakly_typed and major != 10:
        raise DPANetError(
            f"--weakly-typed: TensorRT {major} networks are always strongly typed (the flag is for 10.x)"
        )
    return not weakly_typed


def trtexec_line(request: BuildRequest, facts: ModelFacts, plugins: Path | None, major: int) -> str:
    """The trtexec command that builds the same engine."""

    def shapes(hw: tuple[int, int]) -> str:
        n, c = facts.profile.batch, facts.channels
        return ",".join(f"{name}:{n}x{c}x{hw[0]}x{hw[1]}" for name in INPUT_NAMES)

    parts = ["trtexec", f"--onnx={request.onnx}", f"--saveEngine={request.output}"]
    if plugins is not None:
        parts.append(f"--dynamicPlugins={plugins}")
    parts += [
        f"--minShapes={shapes(facts.profile.min)}",
        f"--optShapes={shapes(facts.profile.opt)}",
        f"--maxShapes={shapes(facts.profile.max)}",
        f"--memPoolSize=workspace:{int(request.workspace_gib * 1024)}M",
    ]
    if major == 10 and strongly_typed(major, request.weakly_typed):
        parts.append("--stronglyTyped")  # trtexec 11: the default (the flag is a deprecated no-op)
    elif major == 10:
        parts += {"fp32": [], "fp16": ["--fp16"], "int8": ["--int8", "--fp16"]}[facts.precision]
    if request.timing_cache is not None:
        parts.append(f"--timingCacheFile={request.timing_cache}")
    return " ".join(parts)


@dataclass(frozen=True)
class Sidecar:
    """``model.plan.json``: what the engine was built from and for (docs/engines.md)."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # "8.7"
    onnx_path: str
    onnx_sha256: str
    metadata: dict[str, str]
    plugins_path: str | None
    plugins_sha256: str | None
    precision: str
    profile: dict  # batch, min, opt, max
    strongly_typed: bool = True  # False: a 10.x engine built with --weakly-typed

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @property
    def engine_profile(self) -> Profile:
        p = self.profile
        return Profile(p["batch"], tuple(p["min"]), tuple(p["opt"]), tuple(p["max"]))


def read_sidecar(engine: str | os.PathLike) -> Sidecar:
    path = sidecar_path(engine)
    if not path.is_file():
        raise DPANetError(
            f"{path}: no such file: an engine needs the sidecar dpanet build-engine writes beside it"
        )
    try:
        return Sidecar(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise DPANetError(f"{path}: not a dpanet engine sidecar ({exc})") from None


def check_sidecar(
    sidecar: Sidecar, engine: str | os.PathLike, tensorrt_version: str, compute_capability: str
) -> None:
    """An engine runs only on the TensorRT version and GPU architecture it was built for."""
    if sidecar.tensorrt_version != tensorrt_version or sidecar.compute_capability != compute_capability:
        built = f"TensorRT {sidecar.tensorrt_version} on sm_{sidecar.compute_capability.replace('.', '')}"
        here = f"TensorRT {tensorrt_version} on sm_{compute_capability.replace('.', '')}"
        raise DPANetError(
            f"{engine}: built with {built} ({sidecar.gpu_name}), this is {here}: "
            f"rebuild it here with dpanet build-engine --onnx {sidecar.onnx_path}"
        )


def plugin_library(trt, plugins: Path | None, flavor: str) -> Path | None:
    """The plugin library to load: ``plugins``, else ours for this TensorRT major (plugin flavour)."""
    if plugins is not None:
        return plugins
    if flavor == "portable":
        return None
    from dpanet.plugins._library import library_path

    return library_path(f"tensorrt{tensorrt_major(trt.__version__)}")


def gpu_identity() -> tuple[str, str]:
    """(name, compute capability "X.Y") of CUDA device 0, through pycuda (no context needed)."""
    device = import_pycuda().Device(0)
    major, minor = device.compute_capability()
    return device.name(), f"{major}.{minor}"


def import_pycuda():
    """``pycuda.driver``, initialised, with a device 0. It makes no context: the backend works in the
    device's primary context (:mod:`dpanet.runtime.cuda_context`), not pycuda.autoinit's own."""
    try:
        import pycuda.driver as cuda

        cuda.init()
        cuda.Device(0)
    except Exception as exc:
        raise DPANetError(f"pycuda and a CUDA device are needed ({exc}): {INSTALL_HINT}") from None
    return cuda


def make_logger(trt, errors: list[str]):
    """A TensorRT logger that prints warnings and errors (stderr) and appends the errors to
    ``errors``, to repeat the last one in the one-line summary of a failure."""

    class Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)

        def log(self, severity, msg):
            if severity in (trt.ILogger.ERROR, trt.ILogger.INTERNAL_ERROR):
                errors.append(msg)
            if severity in (trt.ILogger.ERROR, trt.ILogger.INTERNAL_ERROR, trt.ILogger.WARNING):
                print(f"TensorRT: {msg}", file=sys.stderr, flush=True)

    return Logger()


def last_error(errors: list[str], since: int = 0) -> str:
    """The last error TensorRT logged (from ``errors[since:]``), on one line: a plugin's CUDA error
    reaches the same log, and a message of several lines would lose all but its last in the CLI."""
    logged = errors[since:]
    return " ".join(logged[-1].split()) if logged else "no error message from TensorRT"


def tensorrt_failure(what: str, errors: list[str], since: int = 0) -> DPANetError:
    """``what`` failed, with TensorRT's own words for it (the last error logged since ``since``)."""
    return DPANetError(f"{what} (TensorRT: {last_error(errors, since)})")


def network_flags_trt10(trt, strong: bool) -> int:
    """10.x networks are weakly typed unless created with the STRONGLY_TYPED flag (11.x: always)."""
    return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strong else 0


def _set_precision_trt10(trt, config, precision: str) -> None:
    """A weakly typed 10.x network (--weakly-typed): FP16 / INT8 kernels are allowed by flags."""
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)


def attach_timing_cache(config, path: Path | None, say) -> object | None:
    """The timing cache of ``--timing-cache`` attached to ``config`` (None without the option).

    TensorRT refuses a cache from another GPU or TensorRT version (``set_timing_cache`` returns
    False) and cannot read a damaged one (``create_timing_cache`` returns None): either way ``say``
    gets one line and the build starts a fresh cache, which is what is written back."""
    if path is None:
        return None
    try:
        cached = path.read_bytes() if path.is_file() else b""
    except OSError as exc:
        raise DPANetError(f"{path}: cannot read the timing cache ({exc.strerror})") from None
    if cached:
        timing_cache = config.create_timing_cache(cached)
        if timing_cache is None:
            say(f"{path}: not a timing cache TensorRT can read; starting a fresh one")
        elif config.set_timing_cache(timing_cache, False):
            return timing_cache
        else:
            say(
                f"{path}: TensorRT refuses this timing cache (from another GPU or TensorRT version?); "
                "starting a fresh one"
            )
    timing_cache = config.create_timing_cache(b"")
    config.set_timing_cache(timing_cache, False)
    return timing_cache


def build(request: BuildRequest, progress=None) -> Sidecar:
    """Build ``request.output`` and its sidecar; returns the sidecar. Raises :class:`DPANetError`.

    ``progress(line)`` receives the equivalent trtexec line and status lines (default: stderr)."""
    progress = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    facts = read_model(request)
    trt = import_tensorrt()
    major = tensorrt_major(trt.__version__)
    strong = strongly_typed(major, request.weakly_typed)
    gpu_name, capability = gpu_identity()
    errors: list[str] = []
    logger = make_logger(trt, errors)
    plugins = plugin_library(trt, request.plugins, facts.flavor)
    progress(trtexec_line(request, facts, plugins, major))
    builder = trt.Builder(logger)
    trt.init_libnvinfer_plugins(logger, "")
    if plugins is not None:
        load_plugin_library(trt, plugins, errors)
    # explicit batch on 10.x (its only mode); always strongly typed on 11.x
    network = builder.create_network(network_flags_trt10(trt, strong) if major == 10 else 0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(facts.data, str(request.onnx)):
        for i in range(parser.num_errors):
            print(f"ONNX parser: {parser.get_error(i)}", file=sys.stderr, flush=True)
        raise DPANetError(f"{request.onnx}: the TensorRT {trt.__version__} ONNX parser refused the model")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(request.workspace_gib * (1 << 30)))
    if major == 10 and not strong:
        _set_precision_trt10(trt, config, facts.precision)
    profile = builder.create_optimization_profile()
    for name in INPUT_NAMES:
        profile.set_shape(name, *facts.profile.shapes(facts.channels))
    config.add_optimization_profile(profile)
    timing_cache = attach_timing_cache(config, request.timing_cache, progress)
    typing = "strongly" if strong else "weakly"
    progress(
        f"building (TensorRT {trt.__version__}, {facts.precision}, {typing} typed, "
        f"profile {facts.profile.describe()})"
    )
    since = len(errors)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise tensorrt_failure(f"{request.onnx}: TensorRT could not build the engine", errors, since)
    atomic_write(request.output, lambda tmp: Path(tmp).write_bytes(memoryview(plan)))
    if timing_cache is not None:
        cache_bytes = timing_cache.serialize()
        atomic_write(request.timing_cache, lambda tmp: Path(tmp).write_bytes(memoryview(cache_bytes)))
    sidecar = Sidecar(
        tensorrt_version=trt.__version__,
        gpu_name=gpu_name,
        compute_capability=capability,
        onnx_path=str(request.onnx),
        onnx_sha256=facts.sha256,
        metadata=facts.metadata,
        plugins_path=str(plugins.resolve()) if plugins is not None else None,
        plugins_sha256=sha256_of(plugins) if plugins is not None else None,
        precision=facts.precision,
        profile={
            "batch": facts.profile.batch,
            "min": facts.profile.min,
            "opt": facts.profile.opt,
            "max": facts.profile.max,
        },
        strongly_typed=strong,
    )
    write_text_atomic(sidecar_path(request.output), sidecar.to_json())
    return sidecar
