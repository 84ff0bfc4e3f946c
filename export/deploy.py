"""``dpanet deploy``: a checkpoint to a checked deployment folder in one run (docs/serving.md).

Steps, each a library call of the stage that owns it: export (:mod:`dpanet.export.exporter`) or,
for int8, calibrate (:mod:`dpanet.calib.pipeline`); build the engine where TensorRT is present
(:mod:`dpanet.runtime.tensorrt_engine`; elsewhere the step stops with the trtexec line and why);
parity of every model made against the PyTorch reference on held-out pairs
(:mod:`dpanet.runtime.parity`). ``deploy.json`` records each step's input hash and output
hashes: a step whose inputs and outputs are unchanged is not redone (``force`` redoes all).
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from dpanet import __version__
from dpanet.errors import DPANetError
from dpanet.files import output_folder, write_text_atomic
from dpanet.runtime.tensorrt_engine import sha256_of as _sha256

MANIFEST = "deploy.json"


@dataclass(frozen=True)
class DeployOptions:
    precision: str = "fp32"  # fp32, fp16, int8
    flavor: str = "plugin"
    target: str = "tensorrt"  # tensorrt or cpu
    calibration: Path | None = None  # int8 only
    profile_min: tuple[int, int] | None = None
    profile_opt: tuple[int, int] | None = None
    profile_max: tuple[int, int] | None = None
    force: bool = False


def _folder_files(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder``."""
    return {str(p.relative_to(folder)): _sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def _hash(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class Steps:
    """The manifest's steps: runs a step unless its inputs and outputs are as recorded."""

    def __init__(self, out_dir: Path, force: bool, log: Callable[[str], object]) -> None:
        self.out_dir, self.log = out_dir, log
        previous = out_dir / MANIFEST
        old = {}
        if previous.is_file() and not force:
            try:
                old = json.loads(previous.read_text(encoding="utf-8"))
            except ValueError:
                log(f"{previous}: not readable as JSON; every step is redone")
        self.old = old.get("steps", {}) if isinstance(old, dict) else {}
        self.steps: dict[str, dict] = {}

    def run(self, name: str, inputs: str, outputs: list[str], work: Callable[[], dict]) -> dict:
        old = self.old.get(name)
        if (
            old
            and old["inputs"] == inputs
            and all((self.out_dir / f).is_file() for f in old["outputs"])
            and all(_sha256(self.out_dir / f) == h for f, h in old["outputs"].items())
        ):
            self.steps[name] = {**old, "reused": True}
            self.log(f"{name}: unchanged, kept ({old['outputs'] and ', '.join(old['outputs'])})")
            return self.steps[name]
        start = time.monotonic()
        record = work()
        seconds = time.monotonic() - start
        made = {f: _sha256(self.out_dir / f) for f in outputs if (self.out_dir / f).is_file()}
        self.steps[name] = {"inputs": inputs, "outputs": made, "seconds": round(seconds, 2), **record}
        self.log(f"{name}: {record.get('summary', 'done')} ({seconds:.1f} s)")
        return self.steps[name]


def deploy(checkpoint: Path, out_dir: Path, pairs: Path, options: DeployOptions, log=print) -> dict:
    """Write ``out_dir`` and return the manifest (``manifest["passed"]``)."""
    from dpanet.runtime.pairs import find_pairs

    _check(options, pairs)
    if not checkpoint.is_file():
        raise DPANetError(f"--checkpoint {checkpoint}: no such file")
    found = find_pairs(pairs)
    if found.incomplete or not found.pairs:
        raise DPANetError(f"--pairs {pairs}: {found.incomplete[0] if found.incomplete else 'no pairs'}")
    pair_hashes = _folder_files(pairs)
    if options.calibration is not None:
        shared = set(pair_hashes.values()) & set(_folder_files(options.calibration).values())
        if shared:
            raise DPANetError(
                f"--pairs {pairs}: {len(shared)} file(s) are also calibration pairs; parity needs "
                "held-out pairs"
            )
    with output_folder(out_dir, "-o"):
        return _run_steps(checkpoint, out_dir, pairs, pair_hashes, options, log)


def _run_steps(
    checkpoint: Path, out_dir: Path, pairs: Path, pair_hashes: dict[str, str], options: DeployOptions, log
) -> dict:
    steps = Steps(out_dir, options.force, log)
    checkpoint_sha = _sha256(checkpoint)
    onnx_name = "model.onnx"
    model_inputs = _hash(checkpoint_sha, options.precision, options.flavor, options.target, __version__)
    if options.precision == "int8":
        model_inputs = _hash(model_inputs, _folder_files(options.calibration))
        steps.run("calibrate", model_inputs, [onnx_name], lambda: _calibrate(checkpoint, out_dir, options))
    else:
        steps.run(
            "export", model_inputs, [onnx_name], lambda: _export(checkpoint, out_dir / onnx_name, options)
        )
    onnx_sha = _sha256(out_dir / onnx_name)
    models = [out_dir / onnx_name]
    if options.target == "tensorrt":
        # TensorRT's version is an input: a run where it has been installed since builds the engine
        engine_inputs = _hash(
            onnx_sha,
            options.profile_min,
            options.profile_opt,
            options.profile_max,
            _versions().get("tensorrt"),
        )
        engine = steps.run(
            "engine", engine_inputs, ["model.plan", "model.plan.json"], lambda: _engine(out_dir, options)
        )
        if engine.get("built"):
            models.append(out_dir / "model.plan")
    from dpanet.runtime.parity import TOLERANCES

    tolerances = {k: asdict(v) for k, v in TOLERANCES.items()}
    parity_inputs = _hash([_sha256(m) for m in models], pair_hashes, checkpoint_sha, tolerances)
    parity_files = ["parity.md", "parity.json"]
    parity = steps.run(
        "parity", parity_inputs, parity_files, lambda: _parity(checkpoint, models, pairs, out_dir)
    )
    manifest = {
        "dpanet": __version__,
        "python": platform.python_version(),
        "versions": _versions(),
        "checkpoint": {"path": str(checkpoint), "sha256": checkpoint_sha},
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()},
        "pairs": {"path": str(pairs), "files": len(pair_hashes)},
        "steps": steps.steps,
        "passed": parity["passed"],
    }
    write_text_atomic(out_dir / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    write_text_atomic(out_dir / "README.md", _readme(out_dir, manifest))
    return manifest


def _check(options: DeployOptions, pairs: Path) -> None:
    if options.precision == "int8" and options.calibration is None:
        raise DPANetError("--precision int8 needs --calibration PAIRS (held out from --pairs)")
    if options.precision != "int8" and options.calibration is not None:
        raise DPANetError("--calibration is for --precision int8")
    if options.calibration is not None and options.calibration.resolve() == pairs.resolve():
        raise DPANetError("--pairs: the calibration pairs cannot check the deployment (give held-out pairs)")
    if options.target == "cpu" and any((options.profile_min, options.profile_opt, options.profile_max)):
        raise DPANetError("--min/--opt/--max are the engine's profile (--target tensorrt)")


def _export(checkpoint: Path, output: Path, options: DeployOptions) -> dict:
    from dpanet.export.exporter import ExportOptions, export_checkpoint

    export_options = ExportOptions(options.flavor, options.precision)
    export_options.validate()
    export_checkpoint(checkpoint, output, export_options, lambda step: None)
    return {"summary": f"wrote {output.name} ({options.flavor} flavour, {options.precision})"}


def _calibrate(checkpoint: Path, out_dir: Path, options: DeployOptions) -> dict:
    from dpanet.calib.pipeline import CalibrateOptions, calibrate_checkpoint
    from dpanet.runtime.pairs import find_pairs

    # every calibration pair up to calibrate's default count (deploy has no --count)
    count = min(CalibrateOptions.count, len(find_pairs(options.calibration).pairs))
    calib = CalibrateOptions(
        target=options.target, flavor=options.flavor, count=count, report=out_dir / "calibration.md"
    )
    report = calibrate_checkpoint(
        checkpoint, options.calibration, out_dir / "model.onnx", calib, log=lambda m: None
    )
    return {
        "summary": f"wrote model.onnx (int8, {options.target} layout), PSNR vs float32 "
        f"{report.whole.vs_float32:.2f} dB on the calibration pairs",
        "calibration": str(options.calibration),
    }


def _engine(out_dir: Path, options: DeployOptions) -> dict:
    from dpanet.runtime.tensorrt_engine import (
        BuildRequest,
        build,
        import_pycuda,
        import_tensorrt,
        read_model,
        trtexec_line,
    )

    request = BuildRequest(
        onnx=out_dir / "model.onnx",
        output=out_dir / "model.plan",
        profile_min=options.profile_min,
        profile_opt=options.profile_opt,
        profile_max=options.profile_max,
    )
    try:
        import_tensorrt()
        import_pycuda()
    except DPANetError as exc:
        facts = read_model(request)
        plugins = Path("libdpanet_trt10_plugins.so") if facts.flavor == "plugin" else None
        line = trtexec_line(request, facts, plugins, 10)
        return {
            "built": False,
            "summary": f"not built here ({exc}); on the GPU: dpanet build-engine --onnx model.onnx -o "
            f"model.plan, or (TensorRT 10) {line}",
            "why": str(exc),
            "trtexec": line,
            "profile": facts.profile.describe(),
        }
    sidecar = build(request, progress=lambda line: None)
    return {
        "built": True,
        "summary": f"wrote model.plan (TensorRT {sidecar.tensorrt_version}, {sidecar.gpu_name})",
        "profile": sidecar.engine_profile.describe(),
        "tensorrt": sidecar.tensorrt_version,
    }


def _parity(checkpoint: Path, models: list[Path], pairs: Path, out_dir: Path) -> dict:
    """The models against the PyTorch reference, reports written beside them (parity.md/json and a
    heat map per model)."""
    from dpanet.cli.parity import compare_with_reference

    results, report_json = compare_with_reference(checkpoint, models, pairs, out_dir / "parity.md")
    compared = [r for r in results if not r.skipped]
    passed = bool(compared) and all(r.passed for r in compared)
    worst = {r.label: r.tolerance and asdict(r.tolerance) for r in results}
    return {
        "passed": passed,
        "tolerances": worst,
        "summary": "passed" if passed else "FAILED (see parity.md)",
        "report": json.loads(report_json),
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("torch", "onnx", "onnxruntime", "onnxruntime-extensions", "tensorrt", "numpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def _readme(out_dir: Path, manifest: dict) -> str:
    engine = manifest["steps"].get("engine", {})
    lines = [
        "# DPANet deployment",
        "",
        f"From `{manifest['checkpoint']['path']}` ({manifest['options']['precision']}, "
        f"{manifest['options']['flavor']} flavour, target {manifest['options']['target']}). "
        f"Parity on `{manifest['pairs']['path']}`: **{'passed' if manifest['passed'] else 'FAILED'}** "
        "(parity.md; every step and hash: deploy.json).",
        "",
        "```bash",
        f"dpanet deblur --left L.png --right R.png -o out.png --model {out_dir}/model.onnx   # CPU",
    ]
    if engine.get("built"):
        lines.append(f"dpanet deblur --left L.png --right R.png -o out.png --engine {out_dir}/model.plan")
        lines.append(f"dpanet triton-repo --engine {out_dir}/model.plan -o REPO   # Triton (docs/serving.md)")
    elif engine:
        lines.append(f"# engine not built here: {engine['why']}")
        lines.append(
            f"dpanet build-engine --onnx {out_dir}/model.onnx -o {out_dir}/model.plan   # on the GPU"
        )
    lines.append(
        f"dpanet serve --model {out_dir}/model.onnx   # Triton through PyTriton, then deblur --server"
    )
    lines += ["```", ""]
    return "\n".join(lines)
