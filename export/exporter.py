"""``dpanet export``: a checkpoint to an ONNX model (docs/export.md).

The graph comes from ``torch.onnx.export`` (dynamo) with our ops translated by
:mod:`dpanet.export.onnx_ops`; then it is renamed, optionally converted to float16, stamped with
metadata, checked (``onnx.checker`` full check and strict shape inference, which covers our
custom nodes) and written atomically.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import onnx_ir as ir
import onnxscript.optimizer
import torch

from dpanet import __version__
from dpanet.contract import SIZE_MULTIPLE
from dpanet.errors import DPANetError
from dpanet.export.float16 import to_float16
from dpanet.export.onnx_ops import register_schemas, translation_table
from dpanet.files import atomic_write, check_not_input, check_writable_folder
from dpanet.runtime.model_info import INPUT_NAMES, METADATA_PREFIX, OUTPUT_NAME
from dpanet.training.checkpoint import LoadedCheckpoint, load_checkpoint

FLAVORS = ("plugin", "portable")
PRECISIONS = ("fp32", "fp16")
MIN_OPSET = 19  # DeformConv (portable flavour); the plugin flavour is kept on the same floor
DYNAMIC_EXAMPLE = (2, 64, 96)  # batch, height, width traced for dynamic export (not 0/1, not square)


@dataclass(frozen=True)
class ExportOptions:
    flavor: str = "plugin"
    precision: str = "fp32"
    opset: int = MIN_OPSET
    height: int | None = None
    width: int | None = None

    @property
    def dynamic(self) -> bool:
        return self.height is None

    def validate(self) -> None:
        if self.flavor not in FLAVORS:
            raise DPANetError(f"flavor must be one of {', '.join(FLAVORS)}, got {self.flavor!r}")
        if self.precision not in PRECISIONS:
            raise DPANetError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        newest = onnx.defs.onnx_opset_version()
        if not MIN_OPSET <= self.opset <= newest:
            raise DPANetError(f"opset must be between {MIN_OPSET} and {newest}, got {self.opset}")
        if (self.height is None) != (self.width is None):
            raise DPANetError("give both height and width for a static model, or neither for a dynamic one")
        if not self.dynamic and (
            self.height <= 0 or self.width <= 0 or self.height % SIZE_MULTIPLE or self.width % SIZE_MULTIPLE
        ):
            size = f"{self.height}x{self.width}"
            raise DPANetError(f"size {size}: height and width must be positive multiples of {SIZE_MULTIPLE}")


def check_output_path(path: Path) -> None:
    if path.suffix.lower() != ".onnx":
        raise DPANetError(f"{path}: the output must end in .onnx")
    check_writable_folder(path)


def _trace(loaded: LoadedCheckpoint, options: ExportOptions) -> onnx.ModelProto:
    model = loaded.model.eval()
    channels = loaded.config.in_channels
    if options.dynamic:
        n, h, w = DYNAMIC_EXAMPLE
        batch = torch.export.Dim("batch", min=1, max=64)
        rows = torch.export.Dim("h", min=1, max=4096)
        cols = torch.export.Dim("w", min=1, max=4096)
        spec = {0: batch, 2: SIZE_MULTIPLE * rows, 3: SIZE_MULTIPLE * cols}
        dynamic_shapes = (spec, spec)
    else:
        n, h, w = 1, options.height, options.width
        dynamic_shapes = None
    views = (torch.rand(n, channels, h, w), torch.rand(n, channels, h, w))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation chatter
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        program = torch.onnx.export(
            model,
            views,
            dynamo=True,
            custom_translation_table=translation_table(options.flavor),
            opset_version=options.opset,
            dynamic_shapes=dynamic_shapes,
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            verbose=False,
            optimize=False,  # its pattern rewriter takes most of the export time; see _clean_up
        )
    return _clean_up(program.model_proto)


def _clean_up(model: onnx.ModelProto) -> onnx.ModelProto:
    """Constant folding, dead-node removal, constants lifted to initializers, shared
    initializers and common subexpressions merged: the exporter's optimizer without its pattern
    rewriter, which took about 40 s of a 60 s export and changed little in this graph."""
    ir_model = ir.from_proto(model)
    onnxscript.optimizer.fold_constants(ir_model)
    onnxscript.optimizer.remove_unused_nodes(ir_model)
    common = ir.passes.common
    ir.passes.Sequential(
        common.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0),
        common.DeduplicateInitializersPass(),
        common.CommonSubexpressionEliminationPass(),
        common.RemoveUnusedNodesPass(),
    )(ir_model)
    return ir.to_proto(ir_model)


def _name_dynamic_dims(model: onnx.ModelProto) -> None:
    """Graph inputs and output: N x C x H x W with dims named batch, height, width."""
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        for index, name in ((0, "batch"), (2, "height"), (3, "width")):
            if not dims[index].HasField("dim_value"):
                dims[index].dim_param = name


def _stamp(model: onnx.ModelProto, loaded: LoadedCheckpoint, options: ExportOptions) -> None:
    size = "dynamic" if options.dynamic else f"{options.height}x{options.width}"
    metadata = {
        "config": json.dumps(loaded.config.to_dict(), sort_keys=True),
        "channel_order": loaded.channel_order,
        "checkpoint_sha256": loaded.sha256,
        "flavor": options.flavor,
        "precision": options.precision,
        "size": size,
        "version": __version__,
    }
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key = f"{METADATA_PREFIX}{key}"
        entry.value = value
    model.producer_name = "dpanet"
    model.producer_version = __version__
    model.doc_string = (
        f"DPANet dual-pixel deblurring ({options.flavor} flavour, {options.precision}). Inputs "
        f"{', '.join(INPUT_NAMES)}: N x {loaded.config.in_channels} x H x W float32 in [0, 1], "
        f"{loaded.channel_order}, H and W multiples of {SIZE_MULTIPLE}. Output {OUTPUT_NAME}: same layout."
    )


def check_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """Full checker and strict shape inference (custom nodes included); returns the inferred model."""
    register_schemas()
    try:
        onnx.checker.check_model(model, full_check=True)
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise DPANetError(f"the exported graph failed ONNX checks: {exc}") from exc


def export_model(loaded: LoadedCheckpoint, options: ExportOptions, progress=None) -> onnx.ModelProto:
    """The checked ONNX model of a loaded checkpoint; ``progress(step)`` is told each stage."""
    options.validate()
    step = progress or (lambda _: None)
    step("tracing and translating")
    model = _trace(loaded, options)
    if options.precision == "fp16":
        step("converting to float16")
        model = to_float16(model, options.flavor)
    _name_dynamic_dims(model)
    _stamp(model, loaded, options)
    step("checking")
    return check_model(model)


def export_checkpoint(checkpoint: str | os.PathLike, output: str | os.PathLike, options: ExportOptions,
                      progress=None) -> onnx.ModelProto:  # fmt: skip
    output = Path(output)
    options.validate()
    check_not_input(output, checkpoint)
    check_output_path(output)
    model = export_model(load_checkpoint(checkpoint), options, progress)
    if progress:
        progress("writing")
    atomic_write(output, lambda tmp: onnx.save_model(model, tmp))
    return model
