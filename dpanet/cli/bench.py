"""dpanet bench: speed measurements that print tables (never assertions)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dpanet.calib.choices import DEFAULT_METHOD, METHOD_NAMES, TARGETS
from dpanet.cli.options import add_size_option, check_multiple, non_negative_int, parse_size, positive_int
from dpanet.errors import DPANetError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("bench", help="benchmarks (tables with peers measured in the same run)")
    targets = p.add_subparsers(dest="benchmark", required=True, metavar="TARGET")
    m = targets.add_parser("model", help="forward latency of DPANet on the CPU, float32 and bfloat16")
    add_size_option(m, "input size", (256, 256))
    m.add_argument("--width", type=positive_int, default=64, help="base width (default: 64, the release)")
    m.add_argument(
        "--repeats", type=positive_int, default=3, help="timed forwards per precision (default: 3)"
    )
    m.set_defaults(run=run_model)
    e = targets.add_parser("export", help="CPU latency: PyTorch vs ONNX Runtime (portable, plugin, float16)")
    e.add_argument("--checkpoint", type=Path, help="default: the released architecture, random weights")
    e.add_argument("--size", type=parse_size, nargs="+", default=[(256, 256), (1120, 1680)], metavar="HxW",
                   help="sizes (default: 256x256 1120x1680)")  # fmt: skip
    e.add_argument(
        "--repeats", type=positive_int, default=1, help="timed runs per size and backend (default: 1)"
    )
    e.add_argument(
        "--backends",
        nargs="+",
        choices=["torch", "portable", "plugin", "portable-fp16", "int8-cpu"],
        default=["torch", "portable", "plugin", "portable-fp16"],
        help="rows, the first is the ratios' reference (default: torch portable plugin portable-fp16; "
        "int8-cpu: the plugin flavour calibrated for --target cpu, docs/int8.md)",
    )
    e.add_argument("--threads", type=positive_int, help="threads for every backend (default: all cores)")
    e.add_argument(
        "--profile",
        action="store_true",
        help="also run each ONNX Runtime row once more under its profiler; print the time by operator type",
    )
    e.set_defaults(run=run_export)
    t = targets.add_parser(
        "train",
        help="seconds per training step, float32 and bfloat16, and the paper recipe's hours at that rate",
    )
    t.add_argument("--width", type=positive_int, default=64, help="base width (default: 64, the release)")
    t.add_argument("--batch", type=positive_int, default=1, help="patches per step (default: 1)")
    add_size_option(t, "patch size", (512, 512))
    t.add_argument("--steps", type=positive_int, default=2, help="timed steps per precision (default: 2)")
    t.add_argument(
        "--threads", type=positive_int, help="torch CPU threads (default: torch's default, all cores)"
    )
    t.set_defaults(run=run_train)
    o = targets.add_parser(
        "ops",
        help="C++/CUDA correlation and DCN vs ONNX Runtime and the PyTorch ops at DPANet's shapes",
    )
    o.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="shrink H and W of the 1120x1680 frame for a quick run (default: 1, the real shapes)",
    )
    o.add_argument("--repeats", type=int, default=3, help="timed runs per measurement, median (default: 3)")
    o.add_argument("--threads", type=positive_int, help="CPU threads for every peer (default: all cores)")
    o.add_argument(
        "--cpu-library",
        type=Path,
        metavar="DIR",
        help="also time the CPU kernels of another build's libdpanet_cpu.so in DIR (e.g. a -march=native "
        "build against the portable install, docs/plugins.md)",
    )
    o.set_defaults(run=run_ops)
    t = targets.add_parser(
        "tiling",
        help="tiled vs untiled through ONNX Runtime: PSNR on real pairs, time and peak RSS of one frame",
    )
    t.add_argument("--model", type=Path, required=True, help="an exported .onnx model (dynamic size)")
    t.add_argument("--pairs", type=Path, help="folder of pairs for the PSNR table (omit to skip it)")
    t.add_argument("--limit", type=non_negative_int, default=0, help="only the first N pairs (default: all)")
    t.add_argument(
        "--tiling",
        nargs="+",
        default=["256x256:32", "256x256:64", "256x256:96", "512x512:64", "512x512:128"],
        metavar="HxW:OVERLAP",
        help="configurations to compare with untiled (default: 256x256 with overlap 32/64/96, "
        "512x512 with 64/128)",
    )
    t.add_argument(
        "--memory-size",
        type=parse_size,
        metavar="HxW",
        help="also time one frame of this size per configuration, each in a fresh process",
    )
    t.set_defaults(run=run_tiling)
    s = targets.add_parser(
        "serving",
        help="pairs/min and latency through Triton (dpanet serve) by instances and clients, vs local",
    )
    s.add_argument("--model", type=Path, required=True, help="an exported .onnx model (dynamic size)")
    add_size_option(s, "pair size", (512, 512))
    s.add_argument("--count", type=positive_int, default=8, help="pairs per run (default: 8)")
    s.add_argument("--instances", type=positive_int, nargs="+", default=[1, 2], help="default: 1 2")
    s.add_argument("--clients", type=positive_int, nargs="+", default=[1, 2, 3, 4], help="default: 1 2 3 4")
    s.set_defaults(run=run_serving)
    mem = targets.add_parser(
        "memory",
        help="peak memory per pixel of a backend and precision (the table --max-memory plans from)",
    )
    mem.add_argument(
        "--model",
        nargs="+",
        required=True,
        metavar="MODEL",
        help="models to measure: .onnx (ONNX Runtime), .plan (TensorRT), .pt (PyTorch)",
    )
    mem.add_argument(
        "--sizes",
        type=parse_size,
        nargs="+",
        default=[(192, 192), (320, 320), (448, 448)],
        metavar="HxW",
        help="input sizes to fit the line through, each in a fresh process (default: 192x192 320x320 "
        "448x448)",
    )
    mem.add_argument("--threads", type=positive_int, help="CPU threads (default: all cores)")
    mem.set_defaults(run=run_memory)
    c = targets.add_parser(
        "calibration",
        help="int8 fidelity on held-out pairs by calibration method and number of pairs (docs/int8.md)",
    )
    c.add_argument("--checkpoint", type=Path, help="our checkpoint (default: the bundled demo model)")
    c.add_argument("--data", type=Path, required=True, help="pairs, as dpanet calibrate's --data")
    c.add_argument("--target", nargs="+", choices=list(TARGETS), default=["tensorrt"],
                   help="layouts (default: tensorrt)")  # fmt: skip
    c.add_argument("--method", nargs="+", choices=list(METHOD_NAMES), default=[DEFAULT_METHOD],
                   help=f"calibration methods (default: {DEFAULT_METHOD})")  # fmt: skip
    c.add_argument(
        "--count",
        nargs="+",
        type=positive_int,
        default=[16],
        help="numbers of calibration pairs; the scenes after the largest are held out (default: 16)",
    )
    add_size_option(c, "centre crop", (256, 256))
    c.add_argument("--threads", type=positive_int, help="onnxruntime threads (default: all cores)")
    c.set_defaults(run=run_calibration)


def run_model(args: argparse.Namespace) -> int:
    from dpanet.training.benchmark import run_model_benchmark
    from dpanet.training.config import DPANetConfig

    h, w = check_multiple("--size", args.size)
    print(run_model_benchmark(h, w, args.repeats, DPANetConfig(width=args.width)))
    return 0


def run_export(args: argparse.Namespace) -> int:
    import tempfile

    from dpanet.export.benchmark import run_export_benchmark
    from dpanet.training.checkpoint import save_checkpoint
    from dpanet.training.model import DPANet

    sizes = [check_multiple("--size", size) for size in args.size]
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = args.checkpoint
        if checkpoint is None:
            checkpoint = Path(folder) / "dpanet-random.pt"
            save_checkpoint(checkpoint, DPANet(), "BGR", {"note": "random weights for benchmarking"})
        print(
            run_export_benchmark(
                checkpoint, sizes, args.repeats, tuple(args.backends), args.threads, profile=args.profile
            )
        )
    return 0


def run_train(args: argparse.Namespace) -> int:
    from dpanet.training.step_benchmark import run_step_benchmark

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    print(run_step_benchmark(args.width, args.batch, check_multiple("--size", args.size), args.steps))
    return 0


def run_ops(args: argparse.Namespace) -> int:
    if not 0 < args.scale <= 1 or args.repeats < 1:
        raise DPANetError("--scale must be in (0, 1] and --repeats at least 1")
    library = None
    if args.cpu_library is not None:
        library = args.cpu_library / "libdpanet_cpu.so"
        if not library.is_file():
            raise DPANetError(f"--cpu-library: no libdpanet_cpu.so in {args.cpu_library}")
    from dpanet.plugins.benchmark import run_ops_benchmark

    print(run_ops_benchmark(args.scale, args.repeats, args.threads or 0, library))
    return 0


def run_tiling(args: argparse.Namespace) -> int:
    from dpanet.runtime.tiling import Tiling
    from dpanet.runtime.tiling_benchmark import memory_table, quality_table

    configs = []
    for text in args.tiling:
        size, _, overlap = text.partition(":")
        try:
            tile = check_multiple("--tiling", parse_size(size))
            configs.append((Tiling(tile, int(overlap)).check().tile, int(overlap)))
        except (argparse.ArgumentTypeError, ValueError) as exc:
            problem = str(exc).split(": ", 1)[-1]  # without the --tile/--overlap it names for deblur
            raise DPANetError(f"--tiling {text}: {problem} (use HxW:OVERLAP)") from None
    if args.pairs is None and args.memory_size is None:
        raise DPANetError("give --pairs (PSNR table), --memory-size (time and memory table) or both")
    if args.pairs is not None:
        print(quality_table(args.pairs, args.model, configs, args.limit))
    if args.memory_size is not None:
        memory_table(args.model, check_multiple("--memory-size", args.memory_size), [None, *configs])
    return 0


def run_serving(args: argparse.Namespace) -> int:
    from dpanet.runtime.serving_benchmark import run_serving_benchmark

    size = check_multiple("--size", args.size)
    print(run_serving_benchmark(args.model, size, args.count, args.instances, args.clients))
    return 0


def run_memory(args: argparse.Namespace) -> int:
    from dpanet.runtime.memory_benchmark import memory_cost_table

    sizes = [check_multiple("--sizes", size) for size in args.sizes]
    print(memory_cost_table([str(m) for m in args.model], sizes, args.threads))
    return 0


def run_calibration(args: argparse.Namespace) -> int:
    from dpanet.calib.sweep import run_calibration_sweep
    from dpanet.training.checkpoint import default_checkpoint_path

    checkpoint = args.checkpoint or default_checkpoint_path()
    table = run_calibration_sweep(
        checkpoint,
        args.data,
        args.target,
        args.method,
        sorted(set(args.count)),
        check_multiple("--size", args.size),
        args.threads,
    )
    print(table)
    return 0
