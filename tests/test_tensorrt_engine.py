"""build-engine and the TensorRT backend where TensorRT is absent: everything decided before
TensorRT is involved (profiles, precision, sidecar checks, the trtexec line) and the one-line
errors of `dpanet build-engine` and `dpanet deblur --engine` without the tensorrt package."""

from __future__ import annotations

import importlib.util
import json

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dpanet.cli import main
from dpanet.errors import DPANetError
from dpanet.runtime.tensorrt_engine import (
    BuildRequest,
    ModelFacts,
    Profile,
    Sidecar,
    attach_timing_cache,
    check_sidecar,
    last_error,
    onnx_precision,
    profile_for,
    read_model,
    read_sidecar,
    sidecar_path,
    strongly_typed,
    tensorrt_failure,
    trtexec_line,
)

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def _model(path, size="dynamic", dtype=TensorProto.FLOAT, qdq=False, channels=3, metadata=None):
    """A two-input graph with dpanet metadata (left + right), enough for everything before TensorRT."""
    inputs = [helper.make_tensor_value_info(n, dtype, [1, channels, "h", "w"]) for n in ("left", "right")]
    nodes = [helper.make_node("Add", ["left", "right"], ["output"])]
    inits = []
    if qdq:
        inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s")]
        nodes = [
            helper.make_node("QuantizeLinear", ["left", "s"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "s"], ["dq"]),
            helper.make_node("Add", ["dq", "right"], ["output"]),
        ]
    output = helper.make_tensor_value_info("output", dtype, [1, channels, "h", "w"])
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, [output], initializer=inits))
    config = json.dumps({"in_channels": channels, "out_channels": channels})
    fields = {
        "flavor": "portable",
        "size": size,
        "channel_order": "BGR",
        "config": config,
        "precision": "fp32",
    }
    for key, value in {**fields, **(metadata or {})}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = f"dpanet.{key}", value
    onnx.save(model, path)
    return path


def test_profile_defaults_and_options():
    assert profile_for("dynamic", 1, None, None, None) == Profile(1, (256, 256), (1120, 1680), (1120, 1680))
    assert profile_for("dynamic", 2, None, (64, 96), None) == Profile(2, (64, 96), (64, 96), (64, 96))
    assert profile_for("dynamic", 1, (64, 64), None, (512, 768)).opt == (512, 768)
    assert profile_for("32x48", 1, None, None, None) == Profile(1, (32, 48), (32, 48), (32, 48))
    with pytest.raises(DPANetError, match="static \\(32x48\\)"):
        profile_for("32x48", 1, None, None, (64, 64))
    with pytest.raises(DPANetError, match="heights 512, 256, 1024 are not in increasing order"):
        profile_for("dynamic", 1, (512, 64), (256, 64), (1024, 64))
    with pytest.raises(DPANetError, match="--batch"):
        profile_for("dynamic", 0, None, None, None)


def test_an_input_outside_the_profile_names_the_range():
    sizes = Profile(1, (64, 64), (128, 128), (256, 512))
    sizes.check_input((1, 3, 256, 512), "x")
    sizes.check_input((1, 3, 64, 64), "x")
    with pytest.raises(DPANetError, match="input 264x512 \\(batch 1\\) is outside .* 64x64 to 256x512"):
        sizes.check_input((1, 3, 264, 512), "x")
    with pytest.raises(DPANetError, match="batch 2"):
        sizes.check_input((2, 3, 64, 64), "x")


def test_precision_comes_from_the_graph(tmp_path):
    assert onnx_precision(onnx.load(_model(tmp_path / "a.onnx"))) == "fp32"
    assert onnx_precision(onnx.load(_model(tmp_path / "b.onnx", dtype=TensorProto.FLOAT16))) == "fp16"
    assert onnx_precision(onnx.load(_model(tmp_path / "c.onnx", qdq=True))) == "int8"


@pytest.mark.parametrize(
    "major, precision, weakly_typed, flags",
    [
        (10, "fp16", False, ["--stronglyTyped"]),
        (10, "int8", False, ["--stronglyTyped"]),
        (10, "fp32", False, ["--stronglyTyped"]),
        (10, "fp16", True, ["--fp16"]),
        (10, "int8", True, ["--int8", "--fp16"]),
        (10, "fp32", True, []),
        (11, "int8", False, []),
        (11, "fp16", False, []),
    ],
)
def test_trtexec_line_matches_the_build(tmp_path, major, precision, weakly_typed, flags):
    request = BuildRequest(
        onnx=tmp_path / "m.onnx", output=tmp_path / "m.plan", workspace_gib=2, weakly_typed=weakly_typed
    )
    facts = ModelFacts(b"", "", {}, precision, "plugin", Profile(1, (64, 64), (128, 192), (256, 384)), 3)
    line = trtexec_line(request, facts, tmp_path / "lib.so", major).split()
    assert line[:4] == ["trtexec", f"--onnx={tmp_path / 'm.onnx'}", f"--saveEngine={tmp_path / 'm.plan'}",
                        f"--dynamicPlugins={tmp_path / 'lib.so'}"]  # fmt: skip
    assert "--minShapes=left:1x3x64x64,right:1x3x64x64" in line
    assert "--optShapes=left:1x3x128x192,right:1x3x128x192" in line
    assert "--memPoolSize=workspace:2048M" in line
    assert [p for p in line if p in ("--fp16", "--int8", "--stronglyTyped")] == flags


def _sidecar(**changes) -> Sidecar:
    fields = dict(
        tensorrt_version="10.3.0",
        gpu_name="Orin",
        compute_capability="8.7",
        onnx_path="m.onnx",
        onnx_sha256="0" * 64,
        metadata={"dpanet.flavor": "plugin"},
        plugins_path=None,
        plugins_sha256=None,
        precision="fp16",
        profile={"batch": 1, "min": [64, 64], "opt": [64, 64], "max": [128, 128]},
    )
    return Sidecar(**{**fields, **changes})


def test_sidecar_round_trip_and_checks(tmp_path):
    engine = tmp_path / "m.plan"
    (tmp_path / "m.plan.json").write_text(_sidecar().to_json())
    sidecar = read_sidecar(engine)
    assert sidecar == _sidecar()
    assert sidecar.engine_profile == Profile(1, (64, 64), (64, 64), (128, 128))
    check_sidecar(sidecar, engine, "10.3.0", "8.7")
    message = "built with TensorRT 10.3.0 on sm_87 \\(Orin\\), this is TensorRT 10.3.0 on sm_90: rebuild"
    with pytest.raises(DPANetError, match=message):
        check_sidecar(sidecar, engine, "10.3.0", "9.0")
    with pytest.raises(
        DPANetError, match="this is TensorRT 11.1.0 on sm_87: rebuild it here with dpanet build-engine"
    ):
        check_sidecar(sidecar, engine, "11.1.0", "8.7")
    with pytest.raises(DPANetError, match="no such file: an engine needs the sidecar"):
        read_sidecar(tmp_path / "other.plan")
    (tmp_path / "bad.plan.json").write_text(json.dumps({"tensorrt_version": "10.3.0"}))
    with pytest.raises(DPANetError, match="not a dpanet engine sidecar"):
        read_sidecar(tmp_path / "bad.plan")


def test_read_model_checks_files_before_tensorrt(tmp_path):
    model = _model(tmp_path / "m.onnx", size="32x48")
    facts = read_model(BuildRequest(onnx=model, output=tmp_path / "m.plan"))
    assert facts.profile == Profile(1, (32, 48), (32, 48), (32, 48)) and facts.precision == "fp32"
    assert facts.metadata["dpanet.flavor"] == "portable"
    with pytest.raises(DPANetError, match="is an input of this command"):
        read_model(BuildRequest(onnx=model, output=model))
    (tmp_path / "junk.onnx").write_bytes(b"\x00not onnx")
    with pytest.raises(DPANetError, match="not an ONNX model"):
        read_model(BuildRequest(onnx=tmp_path / "junk.onnx", output=tmp_path / "j.plan"))


@pytest.mark.skipif(
    HAS_TENSORRT, reason="the tensorrt package is installed: this checks the message without it"
)
def test_build_engine_without_tensorrt_is_one_line(tmp_path, capsys):
    model = _model(tmp_path / "m.onnx")
    assert main(["build-engine", "--onnx", str(model), "-o", str(tmp_path / "m.plan")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "dpanet build-engine: error: TensorRT is needed: on a GPU machine"
    )
    assert "pip install 'dpanet[tensorrt]'" in err[0]  # the extra (dpanet/extras.py)
    assert not (tmp_path / "m.plan").exists() and not (tmp_path / "m.plan.json").exists()


def _deblur_args(folder):
    """`dpanet deblur` on a grey 24 x 16 pair written into ``folder``, output o.png beside it."""
    for name in ("l.png", "r.png"):
        cv2.imwrite(str(folder / name), np.full((16, 24, 3), 128, np.uint8))
    return ["deblur", "-l", str(folder / "l.png"), "-r", str(folder / "r.png"), "-o", str(folder / "o.png")]


@pytest.mark.skipif(
    HAS_TENSORRT, reason="the tensorrt package is installed: this checks the message without it"
)
def test_deblur_engine_without_tensorrt_is_one_line(tmp_path, capsys):
    (tmp_path / "m.plan").write_bytes(b"plan")
    metadata = {"flavor": "plugin", "config": "{}", "channel_order": "BGR", "precision": "fp16"}
    sidecar = _sidecar(metadata={f"dpanet.{k}": v for k, v in metadata.items()})
    (tmp_path / "m.plan.json").write_text(sidecar.to_json())
    args = _deblur_args(tmp_path)
    assert main([*args, "--engine", str(tmp_path / "m.plan")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error: TensorRT is needed" in err[0]
    assert not (tmp_path / "o.png").exists()
    assert main([*args, "--engine", str(tmp_path / "m.plan"), "--backend", "onnxruntime"]) == 1
    assert "go together" in capsys.readouterr().err


def test_sidecar_path_is_beside_the_engine(tmp_path):
    assert sidecar_path(tmp_path / "model.plan") == tmp_path / "model.plan.json"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--threads", "2"], "--threads and --device are for other backends"),
        (["--device", "cuda"], "--threads and --device are for other backends"),
        (["--backend", "torch"], "go together"),
        (["--model", "m.onnx"], "--model, --checkpoint"),
    ],
)
def test_deblur_refuses_options_the_engine_does_not_take(tmp_path, capsys, extra, message):
    args = _deblur_args(tmp_path)
    assert main([*args, "--engine", str(tmp_path / "m.plan"), *extra]) == 1
    assert message in capsys.readouterr().err
    assert main([*args, "--plugins", str(tmp_path / "lib.so")]) == 1
    assert "--plugins is for the tensorrt backend" in capsys.readouterr().err


def test_the_profile_takes_the_channel_count_from_the_metadata(tmp_path):
    """A single-channel model (in_channels 1) gets 1-channel profile shapes and trtexec line."""
    model = _model(tmp_path / "grey.onnx", channels=1)
    request = BuildRequest(onnx=model, output=tmp_path / "grey.plan", profile_max=(64, 96))
    facts = read_model(request)
    assert facts.channels == 1
    assert facts.profile.shapes(facts.channels) == ((1, 1, 64, 96),) * 3
    line = trtexec_line(request, facts, None, 11).split()
    assert "--minShapes=left:1x1x64x96,right:1x1x64x96" in line
    assert "--maxShapes=left:1x1x64x96,right:1x1x64x96" in line


def test_a_file_without_dpanet_metadata_is_refused_before_tensorrt(tmp_path, capsys):
    model = _model(tmp_path / "m.onnx")
    bare = onnx.load(model)
    del bare.metadata_props[:]
    onnx.save(bare, tmp_path / "bare.onnx")
    assert main(["build-engine", "--onnx", str(tmp_path / "bare.onnx"), "-o", str(tmp_path / "m.plan")]) == 1
    assert "not exported by dpanet (metadata" in capsys.readouterr().err


def test_build_engine_refuses_a_cpu_int8_file_naming_the_tensorrt_target(tmp_path, capsys):
    int8 = {"precision": "int8", "int8.target": "cpu", "int8.method": "minmax"}
    model = _model(tmp_path / "cpu-int8.onnx", qdq=True, metadata=int8)
    assert main(["build-engine", "--onnx", str(model), "-o", str(tmp_path / "m.plan")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "dpanet calibrate --target cpu" in err[0] and "calibrate with --target tensorrt" in err[0]
    assert not (tmp_path / "m.plan").exists()
    tensorrt_int8 = _model(tmp_path / "trt-int8.onnx", qdq=True, metadata={**int8, "int8.target": "tensorrt"})
    facts = read_model(BuildRequest(onnx=tensorrt_int8, output=tmp_path / "t.plan"))
    assert facts.precision == "int8"


def test_typed_files_are_strongly_typed_on_both_majors_unless_asked():
    assert strongly_typed(10, False) and strongly_typed(11, False)
    assert not strongly_typed(10, True)
    with pytest.raises(DPANetError, match="--weakly-typed: TensorRT 11 networks are always strongly typed"):
        strongly_typed(11, True)


def test_build_engine_takes_weakly_typed(tmp_path):
    from dpanet.cli import build_parser

    base = ["build-engine", "--onnx", "m.onnx", "-o", "m.plan"]
    assert not build_parser().parse_args(base).weakly_typed
    assert build_parser().parse_args([*base, "--weakly-typed"]).weakly_typed


class _BuilderConfig:
    """Stand-in for the two IBuilderConfig methods the timing cache uses, returning what the pybind
    sources and NvInfer.h say: ``create_timing_cache`` gives None for a blob it cannot read,
    ``set_timing_cache`` False for a cache from another device or version. It checks our handling of
    those returns, not TensorRT."""

    def __init__(self, readable=True, matching=True):
        self.readable, self.matching = readable, matching
        self.attached = []

    def create_timing_cache(self, blob):
        return ("cache", bytes(blob)) if self.readable or not blob else None

    def set_timing_cache(self, cache, ignore_mismatch):
        assert ignore_mismatch is False
        self.attached.append(cache)
        return self.matching or not cache[1]


@pytest.mark.parametrize(
    "config, said",
    [
        (_BuilderConfig(), None),
        (
            _BuilderConfig(matching=False),
            "TensorRT refuses this timing cache (from another GPU or TensorRT version?); "
            "starting a fresh one",
        ),
        (_BuilderConfig(readable=False), "not a timing cache TensorRT can read; starting a fresh one"),
    ],
)
def test_a_foreign_or_damaged_timing_cache_is_said_and_replaced(tmp_path, config, said):
    path = tmp_path / "model.cache"
    path.write_bytes(b"old cache")
    lines = []
    cache = attach_timing_cache(config, path, lines.append)
    if said is None:
        assert cache == ("cache", b"old cache") and lines == [] and config.attached == [cache]
    else:
        assert lines == [f"{path}: {said}"]
        assert cache == ("cache", b"") and config.attached[-1] == cache  # the fresh one is built and saved


def test_a_missing_timing_cache_starts_fresh_silently(tmp_path):
    config, lines = _BuilderConfig(), []
    assert attach_timing_cache(config, tmp_path / "new.cache", lines.append) == ("cache", b"")
    assert lines == [] and attach_timing_cache(config, None, lines.append) is None


def test_tensorrt_errors_are_repeated_on_one_line():
    errors = ["old failure", "IPluginV3 enqueue: CUDA error 700\n  an illegal memory access"]
    assert last_error(errors) == "IPluginV3 enqueue: CUDA error 700 an illegal memory access"
    assert last_error(errors, since=2) == "no error message from TensorRT"
    failure = tensorrt_failure("m.plan: TensorRT could not run the engine", errors, since=1)
    assert str(failure) == (
        "m.plan: TensorRT could not run the engine (TensorRT: IPluginV3 enqueue: CUDA error 700 an illegal "
        "memory access)"
    )
    assert "old failure" not in str(tensorrt_failure("x", errors, since=2))


def test_the_memory_advice_names_the_profile_and_the_way_out():
    advice = Profile(1, (256, 256), (1120, 1680), (1120, 1680)).memory_advice()
    assert "batch 1, 256x256 to 1120x1680" in advice
    assert "smaller --max" in advice and "--tile HxW" in advice
