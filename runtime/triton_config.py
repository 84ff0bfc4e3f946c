"""Triton model repositories for an engine or a portable ONNX model (torch-free; docs/serving.md).

``REPO/NAME/config.pbtxt`` and ``REPO/NAME/1/model.plan`` (``tensorrt_plan``) or ``model.onnx``
(``onnxruntime_onnx``). The served model is the network alone (``left``, ``right`` -> ``output``,
float32 N x 3 x H x W); reading, channel order, padding, tiling and writing stay on the client
(``dpanet deblur --server``), in the code local runs use. Decided so because Triton's TensorRT and
ONNX Runtime backends then run the file natively, with no Python-backend process beside them (which
an ensemble with pre/post-processing steps would need, on a Jetson too), and a served result is the
local result bit for bit; the price is float32 on the wire (4 bytes a value instead of 1 or 2).

Only the portable flavour can be an ``onnxruntime_onnx`` model: Triton's ONNX Runtime backend loads
custom ops only from a compiled ONNX Runtime custom-op library (``model_operations``), and ours
run as onnxruntime-extensions Python ops in this process (:mod:`dpanet.runtime.ort_plugin_ops`),
which Triton's backend cannot host. Triton's TensorRT backend loads plugin libraries only at server
start (``LD_PRELOAD``, or ``--backend-config=tensorrt,plugins=...``), not from a model
configuration, so :func:`launch_line` says how to start the server.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dpanet.errors import DPANetError
from dpanet.extras import pip_command
from dpanet.runtime.model_info import INPUT_NAMES, OUTPUT_NAME, ModelInfo, check_interface
from dpanet.runtime.model_info import model_info_from_metadata as info_from
from dpanet.runtime.tensorrt_engine import Profile, read_sidecar

ONNX_TYPES = {1: "TYPE_FP32", 10: "TYPE_FP16"}  # onnx.TensorProto element types


@dataclass(frozen=True)
class RepoModel:
    """What a repository needs to know about one model file."""

    platform: str  # "tensorrt_plan" or "onnxruntime_onnx"
    source: Path
    info: ModelInfo
    ports: dict[str, tuple[str, tuple[int, ...]]]  # name -> (Triton data type, dims, -1 free)
    profile: Profile | None = None
    plugins: str | None = None

    @property
    def filename(self) -> str:
        return "model.plan" if self.platform == "tensorrt_plan" else "model.onnx"


def describe_onnx(path: Path) -> RepoModel:
    """A portable-flavour ONNX model for Triton's ONNX Runtime backend."""
    import onnx

    if not path.is_file():
        raise DPANetError(f"{path}: no such file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise DPANetError(f"{path}: not an ONNX model ({str(exc).strip().splitlines()[0]})") from None
    info = info_from({p.key: p.value for p in model.metadata_props}, str(path))
    if info.flavor != "portable":
        raise DPANetError(
            f"{path}: a {info.flavor}-flavour model; Triton's ONNX Runtime backend cannot run our custom "
            "nodes (they are Python ops of this runtime, not a compiled ONNX Runtime library): export "
            "--flavor portable, or serve an engine (--engine)"
        )
    ports = {}
    for value in [*model.graph.input, *model.graph.output]:
        tensor = value.type.tensor_type
        if tensor.elem_type not in ONNX_TYPES:
            raise DPANetError(f"{path}: {value.name} has ONNX element type {tensor.elem_type}")
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
        ports[value.name] = (ONNX_TYPES[tensor.elem_type], dims)
    inputs = [(n, ports[n][1]) for n in ports if n in INPUT_NAMES]
    outputs = [(n, ports[n][1]) for n in ports if n not in INPUT_NAMES]
    check_interface(inputs, outputs, info, str(path))
    return RepoModel("onnxruntime_onnx", path, info, ports)


def describe_engine(path: Path, plugins: str | None = None) -> RepoModel:
    """An engine from ``dpanet build-engine``, described by its sidecar (TensorRT is not needed).
    ``plugins``: the plugin library's path on the server (default: the sidecar's)."""
    if not path.is_file():
        raise DPANetError(f"{path}: no such file")
    sidecar = read_sidecar(path)
    info = info_from(sidecar.metadata, str(path))
    profile = sidecar.engine_profile
    h = profile.min[0] if profile.min[0] == profile.max[0] else -1
    w = profile.min[1] if profile.min[1] == profile.max[1] else -1
    dims = (profile.batch, 3, h, w)  # the export's inputs and output are float32 at every precision
    ports = {name: ("TYPE_FP32", dims) for name in (*INPUT_NAMES, OUTPUT_NAME)}
    library = plugins or (sidecar.plugins_path if info.flavor == "plugin" else None)
    if info.flavor == "plugin" and not library:
        raise DPANetError(f"{path}: a plugin-flavour engine needs --plugins LIBRARY (the sidecar names none)")
    return RepoModel("tensorrt_plan", path, info, ports, profile, library)


def config_text(model: RepoModel, name: str, instances: int, gpus: list[int] | None = None) -> str:
    """``config.pbtxt``: the ports, ``instances`` instances (on each GPU, one instance group per
    GPU listed in ``gpus``, else one group on every GPU; CPU for ONNX Runtime), and the facts a
    client needs as parameters."""
    lines = [f'name: "{name}"', f'platform: "{model.platform}"', "max_batch_size: 0"]
    for section, names in (("input", INPUT_NAMES), ("output", (OUTPUT_NAME,))):
        entries = []
        for port in names:
            dtype, dims = model.ports[port]
            entries.append(
                f'  {{ name: "{port}" data_type: {dtype} dims: [ {", ".join(str(d) for d in dims)} ] }}'
            )
        lines.append(f"{section} [\n" + ",\n".join(entries) + "\n]")
    if model.platform == "tensorrt_plan":
        groups = [f"  {{ count: {instances} kind: KIND_GPU gpus: [ {g} ] }}" for g in gpus or []]
        groups = groups or [f"  {{ count: {instances} kind: KIND_GPU }}"]
    else:
        groups = [f"  {{ count: {instances} kind: KIND_CPU }}"]
    lines.append("instance_group [\n" + ",\n".join(groups) + "\n]")
    parameters = {
        "dpanet.channel_order": model.info.channel_order,
        "dpanet.flavor": model.info.flavor,
        "dpanet.precision": model.info.precision,
        "dpanet.checkpoint_sha256": model.info.checkpoint_sha256,
    }
    if model.profile is not None:
        parameters["dpanet.profile"] = model.profile.describe()
    if model.plugins:
        parameters["dpanet.plugins"] = model.plugins
    for key, value in parameters.items():
        lines.append(f'parameters {{ key: "{key}" value {{ string_value: "{value}" }} }}')
    return "\n".join(lines) + "\n"


def parse_config(text: str):
    """``text`` parsed with the model-configuration protobuf that ``tritonclient`` ships."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError as exc:
        raise DPANetError(
            f"checking a Triton configuration needs tritonclient: {pip_command('serve')} ({exc})"
        ) from None
    try:
        return text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as exc:
        raise DPANetError(f"config.pbtxt does not parse as a Triton ModelConfig ({exc})") from None


def check_config(text: str, model: RepoModel) -> None:
    """Refuse a configuration whose ports are not the model's own (names, types, dims)."""
    config = parse_config(text)
    declared = {
        p.name: (model_type_name(p.data_type), tuple(p.dims)) for p in [*config.input, *config.output]
    }
    if declared != model.ports:
        raise DPANetError(f"config.pbtxt declares {declared}, the model has {model.ports}")
    if config.platform != model.platform:
        raise DPANetError(f"config.pbtxt: platform {config.platform}, the model is {model.platform}")


def model_type_name(value: int) -> str:
    from tritonclient.grpc import model_config_pb2

    return model_config_pb2.DataType.Name(value)


def launch_line(model: RepoModel, repo: Path) -> str:
    """The tritonserver command that serves ``repo``; plugin libraries are preloaded."""
    preload = f"LD_PRELOAD={model.plugins} " if model.plugins else ""
    return f"{preload}tritonserver --model-repository={repo}"


def write_repository(
    model: RepoModel, repo: Path, name: str, instances: int, gpus: list[int] | None = None
) -> Path:
    """Write ``repo/name`` (config.pbtxt, 1/model.*), checked, whole or not at all."""
    folder = repo / name
    if folder.exists():
        raise DPANetError(f"{folder}: exists; remove it or choose another --name")
    text = config_text(model, name, instances, gpus)
    check_config(text, model)
    repo.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=repo))
    try:
        (staging / "1").mkdir()
        shutil.copyfile(model.source, staging / "1" / model.filename)
        (staging / "config.pbtxt").write_text(text, encoding="utf-8")
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder
