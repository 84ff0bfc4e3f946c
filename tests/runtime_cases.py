"""Small inputs for the runtime tests: smooth random views (real images are smooth, noise is not)
and an exported model edited to take one static size."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx

from dpanet.runtime.images import write_image


def smooth_views(height: int, width: int, seed: int = 0, shift: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """H x W x 3 float32 left/right views in [0, 1]: blurred noise, the right view shifted."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.random((height, width + shift, 3)).astype(np.float32), (0, 0), 3)
    base = (base - base.min()) / (base.max() - base.min())
    return np.ascontiguousarray(base[:, shift:]), np.ascontiguousarray(base[:, :width])


def write_pair(folder: Path, name: str, height: int, width: int, seed: int, bit_depth: int = 8) -> None:
    for view, pixels in zip("LR", smooth_views(height, width, seed), strict=True):
        write_image(folder / f"{name}_{view}.png", pixels, bit_depth)


def static_copy(model: Path, out: Path, height: int, width: int) -> Path:
    """``model`` with its inputs fixed to 1 x 3 x height x width and its metadata saying so, as a
    static export declares itself; ONNX Runtime then refuses any other size."""
    proto = onnx.load(str(model))
    for value in proto.graph.input:
        dims = value.type.tensor_type.shape.dim
        for index, size in ((0, 1), (2, height), (3, width)):
            dims[index].Clear()
            dims[index].dim_value = size
    for entry in proto.metadata_props:
        if entry.key == "dpanet.size":
            entry.value = f"{height}x{width}"
    onnx.save(proto, str(out))
    return out
