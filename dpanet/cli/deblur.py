"""dpanet deblur: one DP view pair, or a folder of pairs, to deblurred images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dpanet.cli.options import (
    add_max_memory_option,
    check_multiple,
    non_negative_int,
    parse_size,
    positive_int,
)
from dpanet.errors import DPANetError
from dpanet.runtime.tiling import DEFAULT_OVERLAP


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "deblur",
        help="deblur a pair of dual-pixel views",
        description="Deblur a left/right dual-pixel view pair (--left, --right), or every pair of a "
        "folder (--pairs). Reads PNG/TIFF/JPEG, 8- or 16-bit, 3-channel or single-channel; writes the "
        "input's bit depth and channel count. A single existing output is replaced (keeping its "
        "permissions; a symlink keeps pointing at the replaced file); an output that is one of the "
        "inputs is refused.",
    )
    p.add_argument("--left", "-l", type=Path, help="left view")
    p.add_argument("--right", "-r", type=Path, help="right view")
    p.add_argument(
        "--pairs",
        type=Path,
        metavar="DIR",
        help="a folder of pairs instead: DPDD layout (*_l/source, *_r/source) or NAME_L.* / NAME_R.* "
        "files; -o is then a folder that gets NAME.ext per pair. Pairs that fail are reported and "
        "skipped (exit 1 at the end)",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        help="output image (.png, .tif, .jpg), or folder with --pairs",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="with --pairs: redo outputs already present (by default they are skipped, so an "
        "interrupted run resumes)",
    )
    p.add_argument(
        "--checkpoint", type=Path, help="our checkpoint, torch backend (default: the bundled demo model)"
    )
    p.add_argument("--model", type=Path, help="an exported .onnx model, onnxruntime backend")
    p.add_argument("--engine", type=Path, help="a TensorRT engine from dpanet build-engine, tensorrt backend")
    p.add_argument("--plugins", type=Path, help="tensorrt backend: plugin library (default: the sidecar's)")
    p.add_argument(
        "--server",
        metavar="URL",
        help="a Triton server instead of a local backend: http://HOST:PORT or grpc://HOST:PORT "
        "(dpanet serve, or a repository from dpanet triton-repo; docs/serving.md)",
    )
    p.add_argument("--server-model", default="dpanet", metavar="NAME", help="with --server: default dpanet")
    p.add_argument(
        "--backend",
        choices=["torch", "onnxruntime", "tensorrt"],
        help="inference backend (default: tensorrt with --engine, onnxruntime with --model, else torch)",
    )
    p.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        help="torch device (default: cpu); the onnxruntime backend runs on the CPU only",
    )
    p.add_argument("--threads", type=positive_int, help="CPU threads of either backend (default: all cores)")
    p.add_argument(
        "--tile",
        type=parse_size,
        metavar="HxW",
        help="run in overlapping tiles of this size (multiples of 8) instead of the size --max-memory "
        "chooses; a static-size model always tiles at its own size (docs/runtime.md)",
    )
    p.add_argument(
        "--overlap",
        type=non_negative_int,
        metavar="N",
        help="pixels neighbouring tiles share, a multiple of 8 below half the tile "
        f"(default: {DEFAULT_OVERLAP})",
    )
    add_max_memory_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dpanet.files import check_not_input
    from dpanet.runtime.images import check_writable, read_image

    if args.tile is not None:
        check_multiple("--tile", args.tile)
    check_not_input(
        args.output, args.left, args.right, args.pairs, args.checkpoint, args.model, args.engine, args.plugins
    )
    if args.pairs is not None:
        return _run_folder(args)
    if args.left is None or args.right is None:
        raise DPANetError("give --left and --right (one pair) or --pairs DIR (a folder)")
    if args.overwrite:
        raise DPANetError("--overwrite applies to --pairs; a single output is always replaced")
    left = read_image(args.left)  # bad inputs fail before the model loads
    check_writable(args.output, left.bit_depth)
    _deblurrer(args).deblur_files(args.left, args.right, args.output)
    print(
        f"wrote {args.output} ({left.size[0]}x{left.size[1]}, {left.channels} channel(s), "
        f"{left.bit_depth}-bit)"
    )
    return 0


def _run_folder(args: argparse.Namespace) -> int:
    from dpanet.runtime.folders import deblur_folder, prepare_output_folder
    from dpanet.runtime.pairs import find_pairs

    if args.left is not None or args.right is not None:
        raise DPANetError("--pairs deblurs a folder; give it without --left/--right")
    found = find_pairs(args.pairs)
    if not found.pairs:
        raise DPANetError(
            f"{args.pairs}: no complete pair ({len(found.incomplete)} view(s) without a partner)"
        )
    deblurrer = _deblurrer(args)
    out_dir = prepare_output_folder(args.output)
    summary = deblur_folder(found, out_dir, deblurrer, args.overwrite)
    print(summary)
    return 1 if summary.failed else 0


def _deblurrer(args: argparse.Namespace):
    """The :class:`~dpanet.runtime.deblurrer.Deblurrer` of --server, --backend, --engine, --model,
    --checkpoint and the tiling and memory options; combinations that mix backends are refused here,
    naming the options."""
    from dpanet.runtime.deblurrer import Deblurrer

    common = {"tile": args.tile, "overlap": args.overlap, "max_memory": args.max_memory, "note": _note}
    if args.server is not None:
        local = ("backend", "model", "engine", "checkpoint", "plugins", "device", "threads")
        given = [f"--{name}" for name in local if getattr(args, name) is not None]
        if given:
            raise DPANetError(
                f"--server runs the model on the server; {', '.join(given)} are for local backends"
            )
        return Deblurrer(args.server, backend="triton", server_model=args.server_model, **common)
    backend_name = args.backend or ("tensorrt" if args.engine else "onnxruntime" if args.model else "torch")
    if (backend_name == "tensorrt") != (args.engine is not None):
        raise DPANetError(
            "the tensorrt backend and --engine ENGINE.plan go together (see `dpanet build-engine`)"
        )
    if args.plugins is not None and backend_name != "tensorrt":
        raise DPANetError("--plugins is for the tensorrt backend (--engine)")
    if backend_name == "tensorrt":
        if any(v is not None for v in (args.model, args.checkpoint, args.threads, args.device)):
            raise DPANetError(
                "--engine runs a TensorRT engine on the GPU; --model, --checkpoint, --threads and --device "
                "are for other backends"
            )
        model = args.engine
    elif backend_name == "onnxruntime":
        if args.model is None:
            raise DPANetError("--backend onnxruntime needs --model MODEL.onnx (see `dpanet export`)")
        if args.checkpoint is not None:
            raise DPANetError("--checkpoint is for the torch backend; the onnxruntime backend reads --model")
        if args.device == "cuda":
            raise DPANetError("--device cuda: the onnxruntime backend runs on the CPU (use --backend torch)")
        model = args.model
    else:
        if args.model is not None:
            raise DPANetError("--model is for the onnxruntime backend; the torch backend reads --checkpoint")
        from dpanet.training.checkpoint import default_checkpoint_path

        model = args.checkpoint or default_checkpoint_path()
    return Deblurrer(
        model,
        backend=backend_name,
        threads=args.threads,
        plugins=args.plugins,
        device=args.device if backend_name == "torch" else None,
        progress=args.pairs is None,
        **common,
    )


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)
