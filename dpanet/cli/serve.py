"""dpanet serve: the runtime on a Triton Inference Server, in-process through PyTriton."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path

from dpanet.cli.options import at_least, positive_int
from dpanet.errors import DPANetError

port_number = at_least(1)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve a model on Triton Inference Server (PyTriton)",
        description="Serve an exported model (ONNX Runtime) or an engine (TensorRT) on a Triton Inference "
        "Server started in this process through PyTriton (pip install 'dpanet[serve]'): HTTP and gRPC "
        "inference, health (/v2/health/ready) and Prometheus metrics (/metrics). The model takes the "
        "network's arrays; clients do the pre- and post-processing: dpanet deblur --server URL "
        "(docs/serving.md). Runs until Ctrl-C or SIGTERM.",
    )
    p.add_argument("--model", type=Path, help="an exported .onnx model (ONNX Runtime, CPU)")
    p.add_argument("--engine", type=Path, help="a TensorRT engine from dpanet build-engine (GPU)")
    p.add_argument("--name", default="dpanet", help="the model's name on the server (default: dpanet)")
    p.add_argument(
        "--instances", type=positive_int, default=1, help="model instances serving in parallel (default: 1)"
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        help="ONNX Runtime threads per instance (default: the cores divided among the instances)",
    )
    p.add_argument("--address", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--http-port", type=port_number, default=8000, help="default: 8000")
    p.add_argument("--grpc-port", type=port_number, default=8001, help="default: 8001")
    p.add_argument("--metrics-port", type=port_number, default=8002, help="default: 8002")
    p.add_argument("--log", type=Path, metavar="FILE", help="the Triton server's log (default: stdout)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dpanet.runtime.triton_serve import Ports, load_network, start_server

    if (args.model is None) == (args.engine is None):
        raise DPANetError("give --model MODEL.onnx or --engine MODEL.plan")
    if args.engine is not None and args.threads is not None:
        raise DPANetError("--threads is for ONNX Runtime (--model); an engine runs on the GPU")
    ports = Ports(args.http_port, args.grpc_port, args.metrics_port)
    if len(set(vars(ports).values())) < 3:
        raise DPANetError("--http-port, --grpc-port and --metrics-port must differ")
    if args.log is not None:
        from dpanet.files import check_writable_folder

        check_writable_folder(args.log)
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.instances)
    networks = [load_network(args.model, args.engine, threads) for _ in range(args.instances)]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    triton = start_server({args.name: networks}, ports, args.address, args.log)
    try:
        host = args.address
        print(
            f"serving {networks[0].label} as model {args.name!r} ({args.instances} instance(s)): "
            f"http://{host}:{ports.http}, grpc://{host}:{ports.grpc}, metrics http://{host}:{ports.metrics}"
            "/metrics; Ctrl-C stops",
            flush=True,
        )
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        triton.stop()
    print("stopped", flush=True)
    return 0
