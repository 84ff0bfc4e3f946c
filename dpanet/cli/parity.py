"""dpanet parity: deployed models (ONNX, TensorRT engines) against the PyTorch reference."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from dpanet.cli.options import add_max_memory_option
from dpanet.errors import DPANetError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "parity",
        help="check ONNX models and TensorRT engines against the PyTorch reference on your images",
        description="Run every candidate (--model, --engine) on the pairs and compare its output with "
        "the reference: the PyTorch model in float32 (--checkpoint) or a reference saved earlier "
        "(--load-reference, Polygraphy RunResults JSON; no torch needed). Per candidate and pair: max and "
        "mean absolute error, PSNR against the reference, PSNR/SSIM against ground truth when the pairs "
        "have it. Exit 1 if any candidate is out of tolerance (defaults per precision: docs/runtime.md).",
    )
    p.add_argument("--checkpoint", type=Path, help="reference: our checkpoint, run in PyTorch (float32)")
    p.add_argument("--load-reference", type=Path, metavar="JSON", help="reference: saved by --save-reference")
    p.add_argument("--save-reference", type=Path, metavar="JSON", help="save the PyTorch reference here")
    p.add_argument("--model", type=Path, action="append", default=[], help="an .onnx candidate (repeatable)")
    p.add_argument("--engine", type=Path, action="append", default=[], help="a TensorRT engine (repeatable)")
    p.add_argument("--left", "-l", type=Path, help="left view of one pair")
    p.add_argument("--right", "-r", type=Path, help="right view of one pair")
    p.add_argument("--pairs", type=Path, metavar="DIR", help="a folder of pairs (as dpanet deblur --pairs)")
    p.add_argument("--report", type=Path, help="write REPORT.md, REPORT.json and a heat map per candidate")
    p.add_argument("--atol", type=float, help="maximum absolute error (default: per precision)")
    p.add_argument(
        "--min-psnr", type=float, help="minimum PSNR in dB against the reference (default: per precision)"
    )
    p.add_argument("--device", choices=["cpu", "cuda"], help="torch device for --checkpoint (default: cpu)")
    p.add_argument("--threads", type=int, help="onnxruntime intra-op threads (default: all cores)")
    add_max_memory_option(p)
    p.set_defaults(run=run)


def _check_options(args: argparse.Namespace) -> None:
    if (args.checkpoint is None) == (args.load_reference is None):
        raise DPANetError("give the reference: --checkpoint (PyTorch) or --load-reference, one of them")
    if args.save_reference is not None and args.checkpoint is None:
        raise DPANetError("--save-reference saves the PyTorch reference: it needs --checkpoint")
    if not args.model and not args.engine and args.save_reference is None:
        raise DPANetError("nothing to compare: give --model and/or --engine (or only --save-reference)")
    if (args.pairs is None) == (args.left is None and args.right is None):
        raise DPANetError("give the images: --left and --right, or --pairs DIR")
    if args.pairs is None and (args.left is None or args.right is None):
        raise DPANetError("give both --left and --right")
    if args.device is not None and args.checkpoint is None:
        raise DPANetError("--device is the PyTorch reference's: it needs --checkpoint")
    if args.threads is not None and not args.model:
        raise DPANetError("--threads is ONNX Runtime's: it needs --model")
    if args.atol is not None and not args.atol > 0:
        raise DPANetError(f"--atol {args.atol}: must be positive")
    if args.report is not None and args.report.suffix.lower() != ".md":
        raise DPANetError(f"--report {args.report}: must end in .md (the JSON and heat maps go beside it)")


def _outputs(args: argparse.Namespace) -> dict[str, Path]:
    """Every file this run will write, checked before any work."""
    from dpanet.files import check_not_input, check_writable_folder

    outputs = {}
    if args.report is not None:
        outputs["report"] = args.report
        outputs["json"] = args.report.with_suffix(".json")
        for i, path in enumerate([*args.model, *args.engine]):
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem)
            outputs[f"heat{i}"] = args.report.with_name(f"{args.report.stem}-{i + 1}-{stem}.png")
    if args.save_reference is not None:
        outputs["reference"] = args.save_reference
    inputs = [args.checkpoint, args.load_reference, args.left, args.right, *args.model, *args.engine]
    for path in outputs.values():
        check_writable_folder(path)
        check_not_input(path, *inputs)
    return outputs


def _pair_files(args: argparse.Namespace) -> list[tuple[str, Path, Path, Path | None]]:
    if args.pairs is None:
        return [(args.left.stem, args.left, args.right, None)]
    from dpanet.runtime.pairs import find_pairs

    found = find_pairs(args.pairs)
    if found.incomplete:
        raise DPANetError(found.incomplete[0])
    if not found.pairs:
        raise DPANetError(f"{args.pairs}: no pairs")
    return [(p.name, p.left, p.right, p.target) for p in found.pairs]


def _candidates(args: argparse.Namespace):
    from dpanet.runtime.onnxruntime_backend import OnnxRuntimeBackend
    from dpanet.runtime.parity import Candidate

    candidates = []
    for path in args.model:
        backend = OnnxRuntimeBackend(path, args.threads)
        info = backend.info
        candidates.append(
            Candidate(str(path), backend, info.precision, info.channel_order, info.checkpoint_sha256)
        )
    for path in args.engine:
        if not path.is_file():
            raise DPANetError(f"{path}: no such file")
        unavailable = _tensorrt_unavailable()
        if unavailable:
            candidates.append(Candidate(str(path), None, "-", "", "", unavailable))
            continue
        from dpanet.runtime.tensorrt_backend import TensorRTBackend

        backend = TensorRTBackend(path)
        info = backend.info
        candidates.append(
            Candidate(str(path), backend, info.precision, info.channel_order, info.checkpoint_sha256)
        )
    return candidates


def _tensorrt_unavailable() -> str:
    """Why TensorRT engines cannot run here (the install hint), or '' when they can."""
    from dpanet.runtime.tensorrt_engine import import_pycuda, import_tensorrt

    try:
        import_tensorrt()
        import_pycuda()
    except DPANetError as exc:
        return str(exc)
    return ""


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    results, report = check(args)
    print(report, end="")
    compared = [r for r in results if not r.skipped]
    if results and not compared:
        print("no candidate could be run: nothing was checked")
        return 1
    return 0 if all(r.passed for r in compared) else 1


def compare_with_reference(checkpoint: Path, candidates: list[Path], pairs: Path, report: Path):
    """What ``dpanet parity --checkpoint C --model/--engine ... --pairs DIR --report REPORT`` does,
    for ``dpanet deploy``: (results, the JSON report's text); the reports are written."""
    from dpanet.cli import build_parser

    argv = ["parity", "--checkpoint", str(checkpoint), "--pairs", str(pairs), "--report", str(report)]
    for candidate in candidates:
        argv += ["--model" if candidate.suffix == ".onnx" else "--engine", str(candidate)]
    args = build_parser().parse_args(argv)  # the command's own defaults (tolerances, memory bound)
    results, _ = check(args)
    return results, report.with_suffix(".json").read_text(encoding="utf-8")


def check(args: argparse.Namespace):
    """Run the comparison ``args`` describe and write its files: (results, the Markdown report)."""
    from dpanet.files import write_text_atomic
    from dpanet.runtime import parity
    from dpanet.runtime.images import write_image
    from dpanet.runtime.memory import default_budget
    from dpanet.runtime.pipeline import check_tiling

    _check_options(args)
    outputs = _outputs(args)
    pairs = parity.read_pairs(_pair_files(args))
    candidates = _candidates(args)
    backends = [c.backend for c in candidates if c.backend is not None]
    tiling = parity.SharedTiling(backends, args.max_memory, _note)
    if args.load_reference is not None:
        reference, channel_order, sha256 = parity.load_reference(args.load_reference)
        inputs = parity.feeds(pairs, channel_order)
        parity.check_reference(reference, inputs, args.load_reference)
        parity.check_candidates(candidates, channel_order, sha256)
    else:
        from dpanet.training.checkpoint import load_checkpoint
        from dpanet.training.inference import TorchBackend, resolve_device

        loaded = load_checkpoint(args.checkpoint)
        channel_order, sha256 = loaded.channel_order, loaded.sha256
        parity.check_candidates(candidates, channel_order, sha256)
        inputs = parity.feeds(pairs, channel_order)
        torch_backend = TorchBackend(loaded.model, resolve_device(args.device or "cpu"), progress=False)
        tiling.backends.insert(0, torch_backend)
    if tiling.max_memory is None:  # the default: the smallest of the backends' default budgets
        budgets = [default_budget(b) for b in tiling.backends]
        tiling.max_memory = min((b for b in budgets if b is not None), default=None)
    for backend in tiling.backends:  # a bound too small for any tile fails before any work
        check_tiling(backend, None, None, tiling.max_memory)
    if args.load_reference is None:
        reference = parity.compute_reference(torch_backend, channel_order, sha256, inputs, tiling)
    results = parity.compare(
        reference, candidates, pairs, inputs, channel_order, args.atol, args.min_psnr, tiling
    )
    reference_label = next(iter(reference.keys()))
    heat_maps = {}
    if args.report is not None:
        for i, result in enumerate(results):
            if result.heat_map is not None:
                heat_maps[result.label] = outputs[f"heat{i}"].name
    report = parity.markdown_report(results, reference_label, heat_maps)
    if args.save_reference is not None:
        parity.save_reference(reference, outputs["reference"])
    if args.report is not None:
        for i, result in enumerate(results):
            if result.heat_map is not None:
                write_image(outputs[f"heat{i}"], result.heat_map, 8)
        write_text_atomic(outputs["json"], parity.json_report(results, reference_label))
        write_text_atomic(outputs["report"], report)
    return results, report
