"""Serving on Triton: a real Triton server (PyTriton's) on free loopback ports, pairs deblurred
through it against the local ONNX Runtime backend bit for bit, its failures as one line; the model
repositories dpanet triton-repo writes, parsed with tritonclient's ModelConfig protobuf."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from dpanet.cli import main
from dpanet.errors import DPANetError
from dpanet.runtime.images import read_image
from dpanet.runtime.triton_serve import STARTS
from dpanet.runtime.triton_serve import free_loopback_ports as free_ports

from runtime_cases import static_copy, write_pair

pytest.importorskip("pytriton", reason="needs nvidia-pytriton (pip install 'dpanet[serve]')")
pytest.importorskip("tritonclient.grpc", reason="needs tritonclient[grpc] (pip install 'dpanet[serve]')")

STARTUP_S = 120  # the server starts in about 15 s on two shared cores


@pytest.fixture(scope="module")
def server(small_export, tmp_path_factory):
    """(http URL, grpc URL, metrics port, model): model "dpanet" with 2 instances of the small
    dynamic model, model "static" of its 32x48 copy; stopped after the module."""
    from dpanet.runtime.triton_serve import Ports, load_network, start_server

    _, model = small_export
    static = static_copy(model, tmp_path_factory.mktemp("static") / "static.onnx", 32, 48)
    ports = Ports(*free_ports(3))
    triton = start_server(
        {
            "dpanet": [load_network(model, None, 1) for _ in range(2)],
            "static": [load_network(static, None, 1)],
        },
        ports,
        log_file=tmp_path_factory.mktemp("triton") / "triton.log",
    )
    try:
        yield f"http://127.0.0.1:{ports.http}", f"grpc://127.0.0.1:{ports.grpc}", ports.metrics, model
    finally:
        triton.stop()


def deblur(*args) -> int:
    return main(["deblur", *map(str, args)])


@pytest.mark.parametrize(
    ("height", "width", "bit_depth", "protocol"),
    [(37, 50, 8, "http"), (24, 40, 16, "grpc"), (64, 72, 8, "grpc")],
)
def test_served_pair_is_the_local_result(server, tmp_path, height, width, bit_depth, protocol):
    http, grpc, _, model = server
    write_pair(tmp_path, "p", height, width, seed=height, bit_depth=bit_depth)
    views = ("--left", tmp_path / "p_L.png", "--right", tmp_path / "p_R.png")
    assert deblur(*views, "-o", tmp_path / "local.png", "--model", model, "--threads", 1) == 0
    url = http if protocol == "http" else grpc
    assert deblur(*views, "-o", tmp_path / "served.png", "--server", url) == 0
    local, served = read_image(tmp_path / "local.png"), read_image(tmp_path / "served.png")
    assert served.bit_depth == bit_depth and served.size == (height, width)
    np.testing.assert_array_equal(served.pixels, local.pixels)


def test_served_tiles_like_local(server, tmp_path):
    """--tile runs on the client: the served tiles blend into the local result exactly."""
    http, _, _, model = server
    write_pair(tmp_path, "p", 48, 64, seed=3)
    views = ("--left", tmp_path / "p_L.png", "--right", tmp_path / "p_R.png", "--tile", "32x32")
    assert deblur(*views, "--overlap", 8, "-o", tmp_path / "local.png", "--model", model) == 0
    assert deblur(*views, "--overlap", 8, "-o", tmp_path / "served.png", "--server", http) == 0
    np.testing.assert_array_equal(
        read_image(tmp_path / "served.png").pixels, read_image(tmp_path / "local.png").pixels
    )


def test_served_folder_is_the_local_folder(server, tmp_path):
    http, _, _, model = server
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    write_pair(pairs, "a", 40, 48, seed=5)
    write_pair(pairs, "b", 24, 32, seed=6, bit_depth=16)
    assert deblur("--pairs", pairs, "-o", tmp_path / "local", "--model", model) == 0
    assert deblur("--pairs", pairs, "-o", tmp_path / "served", "--server", http) == 0
    for name in ("a.png", "b.png"):
        assert (tmp_path / "served" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()


def test_health_metrics_and_instances(server):
    http, _, metrics_port, _ = server
    with urllib.request.urlopen(f"{http}/v2/health/ready", timeout=10) as response:
        assert response.status == 200
    with urllib.request.urlopen(f"{http}/v2/models/dpanet/config", timeout=10) as response:
        config = json.load(response)
    assert sum(group["count"] for group in config["instance_group"]) == 2
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    assert 'nv_inference_request_success{model="dpanet"' in text


def run_failing(capsys, tmp_path, *args) -> str:
    write_pair(tmp_path, "p", 24, 40, seed=1)
    out = tmp_path / "out.png"
    code = deblur("--left", tmp_path / "p_L.png", "--right", tmp_path / "p_R.png", "-o", out, *args)
    err = capsys.readouterr().err
    assert code == 1
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["p_L.png", "p_R.png"]
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_server_down(capsys, tmp_path):
    (port,) = free_ports(1)
    err = run_failing(capsys, tmp_path, "--server", f"http://127.0.0.1:{port}")
    assert err.startswith(f"dpanet deblur: error: --server http://127.0.0.1:{port}: no Triton server answers")


def test_wrong_model_name(server, capsys, tmp_path):
    err = run_failing(capsys, tmp_path, "--server", server[0], "--server-model", "nope")
    assert err.endswith("no model 'nope' ready\n")  # PyTriton keeps its model index to itself


@pytest.mark.parametrize("protocol", [0, 1])
def test_size_the_model_cannot_take(server, capsys, tmp_path, protocol):
    err = run_failing(capsys, tmp_path, "--server", server[protocol], "--server-model", "static")
    assert "input 24x40 is not the model's static size 32x48" in err and "Traceback" not in err


def test_local_options_refused_with_server(capsys, tmp_path):
    err = run_failing(capsys, tmp_path, "--server", "http://127.0.0.1:1", "--threads", "2")
    assert "--threads are for local backends" in err


def test_stub_gets_the_interpreters_libpython(monkeypatch):
    from dpanet.runtime.triton_serve import use_interpreter_libpython

    monkeypatch.setenv("LD_LIBRARY_PATH", "/usr/lib:/x")
    use_interpreter_libpython()
    import os

    assert os.environ["LD_LIBRARY_PATH"].split(":") == [sysconfig.get_config_var("LIBDIR"), "/usr/lib", "/x"]


# The text PyTriton raised in CI when the second instance lost the handshake race (shortened).
RACED = (
    "[400] load failed for model 'dpanet': version 1 is at UNAVAILABLE state: Internal: "
    "TritonModelException: Model initialize error: Traceback (most recent call last):\n"
    '  File "/tmp/folder3KeJkV/1/communication.py", line 550, in get_config_from_handshake_server\n'
    "    sock.connect(socket_path.as_posix())\nConnectionRefusedError: [Errno 111] Connection refused\n"
)


def failing_first_runs(monkeypatch, texts: list[str]) -> list:
    """Make start_server's PyTriton ``Triton`` raise ``texts`` from its first runs (a fault
    injected before the real run); returns the list of Triton objects run."""
    import dpanet.runtime.triton_serve as serve

    ModelConfig, Tensor, Triton, TritonConfig, Workspace = serve._import_pytriton()
    runs = []

    class FailingFirst(Triton):
        def run(self):
            runs.append(self)
            if len(runs) <= len(texts):
                raise RuntimeError(texts[len(runs) - 1])
            super().run()

    monkeypatch.setattr(
        serve, "_import_pytriton", lambda: (ModelConfig, Tensor, FailingFirst, TritonConfig, Workspace)
    )
    monkeypatch.setattr(serve, "RETRY_PAUSE_S", 0.0)
    return runs


def test_a_start_lost_to_the_handshake_race_is_started_again(small_export, tmp_path, monkeypatch, capsys):
    from dpanet.runtime.triton_serve import Ports, load_network, start_server

    runs = failing_first_runs(monkeypatch, [RACED])
    ports = Ports(*free_ports(3))
    triton = start_server(
        {"dpanet": [load_network(small_export[1], None, 1)]}, ports, log_file=tmp_path / "log"
    )
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ports.http}/v2/models/dpanet/ready", timeout=10) as r:
            assert r.status == 200
    finally:
        triton.stop()
    assert len(runs) == 2
    assert (
        f"raced at startup (PyTriton's handshake); starting it again (attempt 2 of {STARTS})"
        in capsys.readouterr().err
    )


OTHER = "[400] load failed for model 'dpanet': Traceback (most recent call last):\nValueError: no\n"


@pytest.mark.parametrize(
    ("texts", "runs_made", "message"),
    [
        ([RACED] * STARTS, STARTS, RACED.split(" Traceback")[0]),
        ([OTHER], 1, "[400] load failed for model 'dpanet':"),
    ],
)
def test_a_start_that_keeps_failing_is_one_line(small_export, monkeypatch, texts, runs_made, message):
    """Races in every start, or any other failure at once: the message before the traceback."""
    from dpanet.runtime.triton_serve import Ports, load_network, start_server

    runs = failing_first_runs(monkeypatch, texts)
    with pytest.raises(DPANetError) as info:
        start_server({"dpanet": [load_network(small_export[1], None, 1)]}, Ports(*free_ports(3)))
    assert str(info.value) == f"the Triton server could not load the model: {message}"
    assert len(runs) == runs_made


def test_stop_leaves_no_stub_running(small_export):
    """Every Python-backend stub of a 2-instance server is gone (or a zombie) after stop()."""
    from dpanet.runtime.triton_serve import Ports, load_network, start_server

    server = start_server(
        {"dpanet": [load_network(small_export[1], None, 1) for _ in range(2)]}, Ports(*free_ports(3))
    )
    try:
        listing = subprocess.run(
            ["ps", "-ww", "-eo", "pid=,args="], capture_output=True, text=True, check=True
        ).stdout
        stubs = [
            int(line.split()[0])
            for line in listing.splitlines()
            if f"{server.workspace}/" in line and "stub" in line
        ]
        assert len(stubs) == 2, listing
    finally:
        server.stop()
    for pid in stubs:
        state = subprocess.run(
            ["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True
        ).stdout.strip()
        assert state == "" or state.startswith("Z"), f"stub {pid} still {state}"


def test_serve_command_starts_answers_and_stops(small_export, tmp_path):
    """dpanet serve as a user runs it: ready within the bound, SIGTERM stops it with exit 0."""
    _, model = small_export
    http, grpc, metrics = free_ports(3)
    command = [sys.executable, "-m", "dpanet", "serve", "--model", str(model), "--instances", "2"]
    ports = ["--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics)]
    log = tmp_path / "serve.log"  # a file, not a pipe: the server's own log would fill a pipe and block it
    with open(log, "w") as sink:
        process = subprocess.Popen([*command, *ports], stdout=sink, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + STARTUP_S
            ready = False
            while time.monotonic() < deadline and process.poll() is None and not ready:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/models/dpanet/ready", timeout=2):
                        ready = True
                except OSError:
                    time.sleep(1)
            assert ready, f"dpanet serve did not get ready: {log.read_text()[-2000:]}"
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    stdout = log.read_text()
    assert process.returncode == 0
    assert f"as model 'dpanet' (2 instance(s)): http://127.0.0.1:{http}" in stdout
    assert stdout.rstrip().endswith("stopped")


def write_engine(folder: Path, flavor: str, profile: dict, plugins: str | None) -> Path:
    """An engine file (bytes no TensorRT reads here) and the sidecar build-engine would write."""
    from dpanet.runtime.tensorrt_engine import Sidecar, sidecar_path

    engine = folder / "model.plan"
    engine.write_bytes(b"not an engine: the repository copies it as it is")
    metadata = {
        "dpanet.config": json.dumps({"width": 4}),
        "dpanet.channel_order": "RGB",
        "dpanet.flavor": flavor,
        "dpanet.precision": "fp16",
    }
    sidecar = Sidecar("10.3.0", "Orin", "8.7", "m.onnx", "0" * 64, metadata, plugins, None, "fp16", profile)
    sidecar_path(engine).write_text(sidecar.to_json())
    return engine


def test_repository_for_an_engine(tmp_path, capsys):
    from dpanet.runtime.triton_config import parse_config

    profile = {"batch": 1, "min": [256, 256], "opt": [512, 512], "max": [1120, 1680]}
    engine = write_engine(tmp_path, "plugin", profile, "/opt/dpanet/libdpanet_trt10_plugins.so")
    repo = tmp_path / "repo"
    assert main(["triton-repo", "--engine", str(engine), "-o", str(repo), "--gpus", "0", "1"]) == 0
    assert "LD_PRELOAD=/opt/dpanet/libdpanet_trt10_plugins.so tritonserver" in capsys.readouterr().out
    config = parse_config((repo / "dpanet" / "config.pbtxt").read_text())
    assert config.platform == "tensorrt_plan" and config.max_batch_size == 0
    for port in [*config.input, *config.output]:
        assert list(port.dims) == [1, 3, -1, -1]
    assert sorted(p.name for p in config.input) == ["left", "right"] and config.output[0].name == "output"
    assert [list(g.gpus) for g in config.instance_group] == [[0], [1]]
    assert config.parameters["dpanet.channel_order"].string_value == "RGB"
    assert config.parameters["dpanet.profile"].string_value == "256x256 to 1120x1680"
    assert (repo / "dpanet" / "1" / "model.plan").read_bytes() == engine.read_bytes()


def test_repository_for_a_static_portable_engine(tmp_path):
    from dpanet.runtime.triton_config import parse_config

    profile = {"batch": 1, "min": [256, 384], "opt": [256, 384], "max": [256, 384]}
    engine = write_engine(tmp_path, "portable", profile, None)
    assert main(["triton-repo", "--engine", str(engine), "-o", str(tmp_path / "r")]) == 0
    config = parse_config((tmp_path / "r" / "dpanet" / "config.pbtxt").read_text())
    assert list(config.input[0].dims) == [1, 3, 256, 384]
    assert "dpanet.plugins" not in config.parameters


def test_repository_for_onnx_matches_the_model(small_export, tmp_path):
    import onnxruntime as ort

    from dpanet.runtime.triton_config import parse_config

    _, model = small_export
    assert main(["triton-repo", "--model", str(model), "-o", str(tmp_path), "--instances", "3"]) == 0
    config = parse_config((tmp_path / "dpanet" / "config.pbtxt").read_text())
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    expected = {p.name: [d if isinstance(d, int) else -1 for d in p.shape] for p in session.get_inputs()}
    expected.update(
        {p.name: [d if isinstance(d, int) else -1 for d in p.shape] for p in session.get_outputs()}
    )
    assert {p.name: list(p.dims) for p in [*config.input, *config.output]} == expected
    assert config.platform == "onnxruntime_onnx" and config.instance_group[0].count == 3


def test_repository_refuses(small_export, tmp_path, capsys):
    import onnx

    from dpanet.runtime.triton_config import check_config, config_text, describe_onnx

    _, model = small_export
    proto = onnx.load(str(model))
    for entry in proto.metadata_props:
        if entry.key == "dpanet.flavor":
            entry.value = "plugin"
    plugin = tmp_path / "plugin.onnx"
    onnx.save(proto, str(plugin))
    assert main(["triton-repo", "--model", str(plugin), "-o", str(tmp_path / "r")]) == 1
    assert "Triton's ONNX Runtime backend cannot run our custom nodes" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    described = describe_onnx(model)
    wrong = config_text(described, "dpanet", 1).replace(
        "dims: [ -1, 3, -1, -1 ] }\n]\ninstance", "dims: [ 3 ] }\n]\ninstance"
    )
    with pytest.raises(Exception, match="declares"):
        check_config(wrong, described)
    with pytest.raises(Exception, match="does not parse"):
        check_config("platform: tensorrt_plan", described)
