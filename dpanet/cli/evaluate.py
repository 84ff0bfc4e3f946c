"""dpanet evaluate: PSNR / SSIM / MAE (LPIPS when available) on a DPDD-layout split, through any backend."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dpanet.cli.options import add_max_memory_option, non_negative_int, positive_int
from dpanet.errors import DPANetError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score a checkpoint on a DPDD-layout split",
        description="Deblur every scene of a DPDD-layout split and score it against the all-in-focus "
        "image, beside the blurry combined input and the paper's Table I. Writes a per-image CSV and a "
        "summary (docs/training.md) into OUT, replacing those files if present (keeping their "
        "permissions); a folder this run created is removed again if it fails.",
    )
    p.add_argument("--data", required=True, type=Path, help="DPDD root ({split}_{c,l,r}/... folders)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"], help="(default: test)")
    p.add_argument(
        "--checkpoint",
        type=Path,
        help="our checkpoint, PyTorch backend (default: the bundled demo model unless --model/--engine)",
    )
    p.add_argument(
        "--model", type=Path, help="an exported .onnx model, ONNX Runtime (with --checkpoint: both rows)"
    )
    p.add_argument("--engine", type=Path, help="a TensorRT engine (with --checkpoint: both rows)")
    p.add_argument("--threads", type=positive_int, help="onnxruntime intra-op threads (default: all cores)")
    p.add_argument(
        "--protocol",
        choices=["release", "16bit", "both"],
        default="both",
        help="release: 8-bit reads, output truncated to uint8 (the paper's protocol); 16bit: the "
        "files' precision, output rounded (default: both)",
    )
    p.add_argument(
        "--unsharp",
        metavar="SIGMA,AMOUNT",
        action="append",
        default=[],
        help="also score unsharp masking of the combined image (repeatable)",
    )
    p.add_argument("--limit", type=non_negative_int, default=0, help="only the first N scenes (default: all)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="torch device (default: cpu)")
    p.add_argument(
        "--out", type=Path, default=Path("dpanet-eval"), help="output folder (default: dpanet-eval)"
    )
    add_max_memory_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dpanet.files import output_folder, write_text_atomic
    from dpanet.runtime.pairs import list_dpdd
    from dpanet.training.baseline import UnsharpMask
    from dpanet.training.evaluation import PROTOCOLS, evaluate_split, summary_table, write_csv
    from dpanet.training.inference import float32_mode
    from dpanet.training.metrics import load_lpips

    baselines = {}
    for text in args.unsharp:
        try:
            method = UnsharpMask.parse(text)
        except ValueError as exc:
            raise DPANetError(f"--unsharp: {exc}") from None
        baselines[str(method)] = method
    if args.threads is not None and args.model is None:
        raise DPANetError("--threads is ONNX Runtime's: it needs --model")
    scenes = list_dpdd(args.data, args.split)
    scenes = scenes[: args.limit] if args.limit else scenes
    models = _deblurrers(args)
    notes: set[str] = set()

    def note_once(message: str) -> None:  # tiling notes repeat for every image of one size
        if message not in notes:
            notes.add(message)
            print(f"note: {message}", file=sys.stderr)

    with output_folder(args.out):  # before the long part, so a bad --out fails at once
        lpips, lpips_note = load_lpips()
        if lpips is None:
            lpips_note = f"skipped: {lpips_note}"
        protocols = PROTOCOLS if args.protocol == "both" else (args.protocol,)
        evaluations = []
        with float32_mode("ieee"):  # the release's GPU had no TF32
            for protocol in protocols:
                evaluation = None
                for i, (label, deblurrer) in enumerate(models):
                    part = evaluate_split(
                        scenes,
                        deblurrer.backend,
                        deblurrer.channel_order,
                        protocol,
                        baselines,
                        lpips,
                        label=label,
                        with_inputs=i == 0,
                        max_memory=deblurrer.max_memory,
                        note=note_once,
                    )
                    if evaluation is None:
                        evaluation = part
                    else:
                        evaluation.rows += part.rows
                evaluations.append(evaluation)
        csv_path = write_csv(args.out / "per_image.csv", evaluations)
        summary = summary_table(evaluations, len(scenes), lpips_note)
        write_text_atomic(args.out / "summary.txt", summary + "\n")
    print(summary)
    print(f"per-image scores: {csv_path}")
    return 0


def _deblurrers(args: argparse.Namespace) -> list[tuple[str, object]]:
    """(row label, :class:`~dpanet.runtime.deblurrer.Deblurrer`) for each backend asked for; the
    PyTorch one first."""
    from dpanet.runtime.deblurrer import Deblurrer

    models = []
    if args.checkpoint is not None or (args.model is None and args.engine is None):
        from dpanet.training.checkpoint import default_checkpoint_path

        deblurrer = Deblurrer(
            args.checkpoint or default_checkpoint_path(),
            backend="torch",
            device=args.device,
            max_memory=args.max_memory,
        )
        models.append(("model (PyTorch)" if args.model or args.engine else "model", deblurrer))
    if args.model is not None:
        deblurrer = Deblurrer(
            args.model, backend="onnxruntime", threads=args.threads, max_memory=args.max_memory
        )
        models.append((f"model (ONNX Runtime, {deblurrer.backend.info.precision})", deblurrer))
    if args.engine is not None:
        deblurrer = Deblurrer(args.engine, backend="tensorrt", max_memory=args.max_memory)
        models.append(("model (TensorRT)", deblurrer))
    return models
