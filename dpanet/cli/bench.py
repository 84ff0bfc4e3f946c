"""dpanet bench: speed measurements that print tables (never assertions)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dpanet.errors import DPANetError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("bench", help="benchmarks (tables with peers measured in the same run)")
    targets = p.add_subparsers(dest="target", required=True, metavar="TARGET")
    m = targets.add_parser("model", help="forward latency of DPANet on the CPU, float32 and bfloat16")
    m.add_argument(
        "--size",
        type=int,
        nargs="+",
        default=[256],
        metavar="N",
        help="square size, or height and width (default: 256)",
    )
    m.add_argument("--width", type=int, default=64, help="base width (default: 64, the release)")
    m.add_argument("--repeats", type=int, default=3, help="timed forwards per precision (default: 3)")
    m.set_defaults(run=run_model)
    e = targets.add_parser("export", help="CPU latency: PyTorch vs ONNX Runtime (portable, plugin, float16)")
    e.add_argument("--checkpoint", type=Path, help="default: the released architecture, random weights")
    e.add_argument("--size", type=str, nargs="+", default=["256x256", "1120x1680"], metavar="HxW",
                   help="sizes (default: 256x256 1120x1680)")  # fmt: skip
    e.add_argument("--repeats", type=int, default=1, help="timed runs per size and backend (default: 1)")
    e.add_argument(
        "--backends",
        nargs="+",
        choices=["torch", "portable", "plugin", "portable-fp16", "int8-cpu"],
        default=["torch", "portable", "plugin", "portable-fp16"],
        help="rows, the first is the ratios' reference (default: torch portable plugin portable-fp16; "
        "int8-cpu: the plugin flavour calibrated for --target cpu, docs/int8.md)",
    )
    e.add_argument("--threads", type=int, help="threads for every backend (default: all cores)")
    e.set_defaults(run=run_export)
    o = targets.add_parser(
        "ops",
        help="C++/CUDA correlation and DCN vs ONNX Runtime and the PyTorch ops at DPANet's shapes",
    )
    o.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="shrink H and W of the 1680 x 1120 frame for a quick run (default: 1, the real shapes)",
    )
    o.add_argument("--repeats", type=int, default=3, help="timed runs per measurement, median (default: 3)")
    o.add_argument("--threads", type=int, default=0, help="CPU threads for every peer (default: all cores)")
    o.set_defaults(run=run_ops)


def run_model(args: argparse.Namespace) -> int:
    from dpanet.training.benchmark import run_model_benchmark
    from dpanet.training.config import DPANetConfig

    if len(args.size) > 2:
        raise DPANetError("--size takes one or two numbers")
    h, w = (args.size * 2)[:2]
    if h % 8 or w % 8 or h <= 0 or w <= 0:
        raise DPANetError(f"--size {h} {w}: height and width must be positive multiples of 8")
    print(run_model_benchmark(h, w, args.repeats, DPANetConfig(width=args.width)))
    return 0


def run_export(args: argparse.Namespace) -> int:
    import tempfile

    from dpanet.cli.options import parse_size
    from dpanet.export.benchmark import run_export_benchmark
    from dpanet.training.checkpoint import save_checkpoint
    from dpanet.training.model import DPANet

    if args.threads is not None and args.threads < 1:
        raise DPANetError(f"--threads: must be at least 1, got {args.threads}")
    sizes = []
    for text in args.size:
        try:
            h, w = parse_size(text)
        except argparse.ArgumentTypeError as exc:
            raise DPANetError(str(exc)) from None
        if h % 8 or w % 8:
            raise DPANetError(f"--size {text}: height and width must be multiples of 8")
        sizes.append((h, w))
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = args.checkpoint
        if checkpoint is None:
            checkpoint = Path(folder) / "dpanet-random.pt"
            save_checkpoint(checkpoint, DPANet(), "BGR", {"note": "random weights for benchmarking"})
        print(run_export_benchmark(checkpoint, sizes, args.repeats, tuple(args.backends), args.threads))
    return 0


def run_ops(args: argparse.Namespace) -> int:
    if not 0 < args.scale <= 1 or args.repeats < 1:
        raise DPANetError("--scale must be in (0, 1] and --repeats at least 1")
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise DPANetError(
            f"bench ops needs onnx and onnxruntime ({exc}): pip install -e '.[export]'"
        ) from exc
    from dpanet.plugins.benchmark import run_ops_benchmark

    print(run_ops_benchmark(args.scale, args.repeats, args.threads))
    return 0
