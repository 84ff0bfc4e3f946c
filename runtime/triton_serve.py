"""``dpanet serve``: our runtime on a real Triton Inference Server, in-process through PyTriton
(torch-free; docs/serving.md).

PyTriton (``pip install 'dpanet[serve]'``) ships the Triton server binary and runs it as a child
process whose Python backend hands each request to a callable in this process. What is served is
the network itself, the contract every backend keeps (:mod:`dpanet.runtime.pipeline`): ``left``
and ``right``, N x 3 x H x W float32 in [0, 1], to ``output``. Pre- and post-processing (reading,
channel order, padding, tiling, writing) stay on the client, in the same code local runs use
(:mod:`dpanet.runtime.triton_client`), so that a served result is the local result bit for bit.

The wire carries channels in BGR, the order OpenCV reads files in; a model of RGB weights has its
channels swapped here, around the network (a permutation, exact). PyTriton's generated model
configuration cannot carry parameters, so this is how the client knows the order without asking;
repositories from ``dpanet triton-repo`` name their order in the ``dpanet.channel_order``
parameter instead (:mod:`dpanet.runtime.triton_config`).
"""

from __future__ import annotations

import os
import socket
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dpanet.contract import SIZE_MULTIPLE
from dpanet.errors import DPANetError
from dpanet.extras import pip_command
from dpanet.runtime.model_info import INPUT_NAMES, OUTPUT_NAME
from dpanet.runtime.process_table import end_processes_run_from

WIRE_CHANNEL_ORDER = "BGR"
ERROR_MARK = "DPANetError: "  # precedes the one-line message in the error text a client receives
INSTALL_HINT = f"serving needs PyTriton and tritonclient: {pip_command('serve')}"
# PyTriton 0.7 races with Triton's parallel instance loading: every instance but the first fetches
# its configuration from a socket the first one opens, waiting at most 1 s for the file and failing
# if it connects between the socket's bind and listen (ConnectionRefusedError from
# get_config_from_handshake_server). PyTriton's own two functions raced as the stubs race them
# failed 4 of 300 times on an idle 2-core machine and 22 of 300 under load; whole test runs lost 5
# of 16 starts of a 2-instance model (3 in a row in one run), a loop of 40 starts none. The
# stub's code is PyTriton's, copied into the model at startup, so the server is started again
# after a pause; STARTS bounds the attempts.
HANDSHAKE_RACE = "get_config_from_handshake_server"
STARTS = 6
RETRY_PAUSE_S = 1.0
STUB_EXIT_WAIT_S = 3.0


@dataclass
class ServedNetwork:
    """One model instance: the network on wire arrays, and what the model declares."""

    run: Callable[[np.ndarray, np.ndarray], np.ndarray]
    channel_order: str
    label: str


def load_network(model: Path | None, engine: Path | None, threads: int | None) -> ServedNetwork:
    """One instance of the network, loaded as :class:`~dpanet.runtime.deblurrer.Deblurrer` loads it
    (ONNX Runtime for ``model``, TensorRT for ``engine``); the server runs the network alone. Sizes
    a backend cannot take (an engine's profile, a static-size model's size) are refused by the
    backend itself, and the client gets its one-line message."""
    from dpanet.runtime.deblurrer import Deblurrer

    label = str(engine if engine is not None else model)
    backend = Deblurrer(engine if engine is not None else model, threads=None if engine else threads).backend
    fixed = getattr(backend, "fixed_size", None)
    if fixed is not None:
        backend = _fixed_size_only(backend, fixed, label)
    return ServedNetwork(backend, backend.channel_order, label)


def _fixed_size_only(backend, fixed: tuple[int, int], label: str):
    def run(left: np.ndarray, right: np.ndarray) -> np.ndarray:
        if tuple(left.shape[2:]) != fixed:
            h, w = left.shape[2:]
            raise DPANetError(
                f"{label}: input {h}x{w} is not the model's static size {fixed[0]}x{fixed[1]}; "
                f"deblur by tiles of that size (--tile {fixed[0]}x{fixed[1]})"
            )
        return backend(left, right)

    run.channel_order = backend.channel_order
    return run


def wire_to_model(network: ServedNetwork, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Run ``network`` on wire arrays (BGR) and return the output on the wire (BGR).

    Every failure is a :class:`DPANetError` with one line; the client prints that line
    (:data:`ERROR_MARK` finds it in the traceback PyTriton sends)."""
    if left.shape != right.shape or left.ndim != 4 or left.shape[1] != 3:
        raise DPANetError(f"left {left.shape} and right {right.shape}: need two equal N x 3 x H x W arrays")
    if left.shape[2] % SIZE_MULTIPLE or left.shape[3] % SIZE_MULTIPLE:
        raise DPANetError(
            f"input {left.shape[2]}x{left.shape[3]}: H and W must be multiples of {SIZE_MULTIPLE}"
        )
    flip = slice(None) if network.channel_order == WIRE_CHANNEL_ORDER else slice(None, None, -1)
    try:
        out = network.run(np.ascontiguousarray(left[:, flip]), np.ascontiguousarray(right[:, flip]))
    except DPANetError:
        raise
    except Exception as exc:  # the backends' own error types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DPANetError(
            f"{network.label}: the model failed on {left.shape[2]}x{left.shape[3]} ({first})"
        ) from None
    return np.ascontiguousarray(out[:, flip])


def use_interpreter_libpython() -> None:
    """Make the Triton server's Python-backend stub load this interpreter's libpython.

    The stub links ``libpython3.X.so`` and finds it through the library path; on a machine with a
    system Python of the same minor version it otherwise loads the system's build, and the proxy
    then fails inside the virtual environment's standard library (seen: ``'_thread.RLock' object
    has no attribute '_recursion_count'``). PyTriton starts the server with a copy of this
    process's environment, so prepending the interpreter's LIBDIR here is enough."""
    libdir = sysconfig.get_config_var("LIBDIR")
    if not libdir:
        return
    current = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    if current[:1] != [libdir]:
        os.environ["LD_LIBRARY_PATH"] = os.pathsep.join([libdir, *(p for p in current if p != libdir)])


def free_loopback_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 now (for tests and benchmarks)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass(frozen=True)
class Ports:
    http: int = 8000
    grpc: int = 8001
    metrics: int = 8002


def _import_pytriton():
    try:
        from pytriton.model_config import ModelConfig, Tensor
        from pytriton.triton import Triton, TritonConfig
        from pytriton.utils.workspace import Workspace
    except ImportError as exc:
        raise DPANetError(f"{INSTALL_HINT} ({exc})") from None
    return ModelConfig, Tensor, Triton, TritonConfig, Workspace


class RunningServer:
    """A started Triton server; :meth:`stop` stops it and ends its Python-backend stubs.

    PyTriton's stop leaves a stub process behind now and then (seen: 5 of 15 stops of a 2-instance
    model, the stub blocked on a futex with its server gone, holding its shared memory), so
    :meth:`stop` ends every process still running from the server's workspace."""

    def __init__(self, triton, workspace: Path):
        self.triton = triton
        self.workspace = workspace

    def stop(self) -> None:
        self.triton.stop()
        end_processes_run_from(self.workspace, STUB_EXIT_WAIT_S)


def start_server(
    models: dict[str, list[ServedNetwork]],
    ports: Ports,
    address: str = "127.0.0.1",
    log_file: Path | None = None,
) -> RunningServer:
    """A started Triton server (PyTriton's) serving each ``models`` entry, name -> its instances
    (one network each), on HTTP, gRPC and metrics ``ports`` at ``address``; the server's log goes
    to ``log_file`` (default: this process's stdout). Stop it with ``.stop()``. A start lost to
    PyTriton's handshake race (:data:`HANDSHAKE_RACE`) is tried again, up to :data:`STARTS` in all."""
    ModelConfig, Tensor, Triton, TritonConfig, Workspace = _import_pytriton()
    use_interpreter_libpython()
    config = TritonConfig(
        http_address=address,
        http_port=ports.http,
        grpc_address=address,
        grpc_port=ports.grpc,
        metrics_address=address,
        metrics_port=ports.metrics,
        exit_on_error=True,
        exit_timeout_secs=3,  # in-flight requests get this long at shutdown
        log_verbose=0,
        log_file=log_file,
    )
    attempt = 1
    while True:
        workspace = Workspace()
        server = RunningServer(Triton(config=config, workspace=workspace), workspace.path)
        try:
            _bind(server.triton, models, ModelConfig, Tensor)
            server.triton.run()
            return server
        except Exception as exc:  # PyTriton's and tritonclient's errors carry the server's traceback
            server.stop()
            if HANDSHAKE_RACE in str(exc) and attempt < STARTS:
                attempt += 1
                print(
                    "the Triton server's model instances raced at startup (PyTriton's handshake); "
                    f"starting it again (attempt {attempt} of {STARTS})",
                    file=sys.stderr,
                    flush=True,
                )
                time.sleep(RETRY_PAUSE_S)
                continue
            text = str(exc).split("Traceback")[0].strip() or type(exc).__name__
            raise DPANetError(f"the Triton server could not load the model: {text.splitlines()[0]}") from None


def _bind(triton, models: dict[str, list[ServedNetwork]], ModelConfig, Tensor) -> None:
    shape = (-1, 3, -1, -1)
    for name, networks in models.items():
        triton.bind(
            model_name=name,
            infer_func=[_instance(n) for n in networks],
            inputs=[Tensor(name=k, dtype=np.float32, shape=shape) for k in INPUT_NAMES],
            outputs=[Tensor(name=OUTPUT_NAME, dtype=np.float32, shape=shape)],
            config=ModelConfig(batching=False),  # one pair a request: sizes differ between requests
            strict=True,
        )


def _instance(network: ServedNetwork):
    def infer(requests):
        return [{OUTPUT_NAME: wire_to_model(network, *(r[k] for k in INPUT_NAMES))} for r in requests]

    return infer
