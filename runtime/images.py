"""Reading and writing DP views: PNG, TIFF and JPEG, 8- or 16-bit, 1 or 3 channels (OpenCV).

Pixels are handed around as H x W x C float32 arrays in [0, 1] in the file's channel order, which
for colour images is BGR (OpenCV's, and the release's). Writes are atomic: a temporary file in the
target folder, renamed once complete, so a failure leaves no partial output.

The codecs' own messages (libpng and libjpeg warnings, OpenCV's log) are caught rather than printed:
a libjpeg warning means the decoded pixels are not the ones stored (a truncated or corrupt JPEG,
which libjpeg fills with grey), so that image is refused; other warnings are dropped.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dpanet.errors import DPANetError
from dpanet.files import check_writable_folder, write_bytes_atomic

READ_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
SIXTEEN_BIT_SUFFIXES = (".png", ".tif", ".tiff")
_MAX_VALUE = {8: 255.0, 16: 65535.0}
_JPEG_DAMAGE = ("Premature end of JPEG file", "Corrupt JPEG data")
_PNG_ALPHA_KINDS = {4: "2 channels (grey + alpha)", 6: "4 channels (colour + alpha)"}  # IHDR colour type

# Problems reach the user as one line, not as OpenCV's log. OpenCV 4.12+ has a logging API; older
# releases (4.11 is the newest that runs with numpy < 2, which the serve extra's PyTriton needs) read
# OPENCV_LOG_LEVEL when they log their first line.
if hasattr(cv2.utils, "logging"):
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
else:
    os.environ["OPENCV_LOG_LEVEL"] = "SILENT"


class ImageError(DPANetError):
    """An image that cannot be read or written as asked."""


@dataclass
class Image:
    pixels: np.ndarray  # H x W x C float32 in [0, 1], file channel order (BGR for colour)
    bit_depth: int  # 8 or 16
    path: Path | None = None

    @property
    def channels(self) -> int:
        return self.pixels.shape[2]

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[0], self.pixels.shape[1]


@contextlib.contextmanager
def native_stderr() -> Iterator[list[str]]:
    """Catch what native code (libpng, libjpeg, OpenCV) writes to file descriptor 2 during the
    ``with`` body; the list it yields holds that text afterwards."""
    caught: list[str] = []
    sys.stderr.flush()
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield caught
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            caught.append(sink.read().decode(errors="replace"))


def _channel_problem(path: Path, channels: int) -> str:
    with open(path, "rb") as f:
        header = f.read(26)
    kind = f"{channels} channels"
    if header.startswith(b"\x89PNG") and len(header) == 26:
        kind = _PNG_ALPHA_KINDS.get(header[25], kind)
    return f"{kind} are not supported (need 1 or 3; drop alpha first)"


def read_image(path: str | os.PathLike) -> Image:
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image file")
    if not path.is_file():
        raise ImageError(f"{path}: {'not a regular file' if path.exists() else 'no such file'}")
    if path.suffix.lower() not in READ_SUFFIXES:
        raise ImageError(f"{path}: unsupported format {path.suffix!r} (use {', '.join(READ_SUFFIXES)})")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: file is empty")
    with native_stderr() as messages:
        data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    native = [line.strip() for line in messages[0].splitlines() if line.strip()]
    if data is None:
        raise ImageError(f"{path}: cannot be decoded as an image" + (f" ({native[0]})" if native else ""))
    damage = [line for line in native if line.startswith(_JPEG_DAMAGE)]
    if damage:
        raise ImageError(f"{path}: truncated or corrupt JPEG (libjpeg: {damage[0].rstrip('.')})")
    if data.ndim == 3 and data.shape[2] not in (1, 3):
        raise ImageError(f"{path}: {_channel_problem(path, data.shape[2])}")
    return image_from_array(data, str(path), path)


def image_from_array(data: np.ndarray, label: str, path: Path | None = None) -> Image:
    """An :class:`Image` of pixels as OpenCV reads them: uint8 or uint16, H x W or H x W x C with
    C = 1 or 3 (BGR); ``label`` names the array in errors."""
    if not isinstance(data, np.ndarray):
        raise ImageError(f"{label}: a numpy array is needed, got {type(data).__name__}")
    if data.size == 0:
        raise ImageError(f"{label}: image is empty")
    if data.dtype == np.uint8:
        bit_depth = 8
    elif data.dtype == np.uint16:
        bit_depth = 16
    else:
        raise ImageError(f"{label}: {data.dtype} pixels are not supported (need 8- or 16-bit integers)")
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3 or data.shape[2] not in (1, 3):
        raise ImageError(f"{label}: shape {data.shape} is not H x W, H x W x 1 or H x W x 3")
    pixels = data.astype(np.float32) / _MAX_VALUE[bit_depth]
    return Image(pixels, bit_depth, path)


def check_writable(path: str | os.PathLike, bit_depth: int) -> Path:
    """Fail early (before any work) if ``path`` cannot take an image of this depth."""
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path}: is a folder (give an image file name)")
    suffix = path.suffix.lower()
    if suffix not in READ_SUFFIXES:
        raise ImageError(
            f"{path}: unsupported output format {path.suffix!r} (use {', '.join(READ_SUFFIXES)})"
        )
    if bit_depth == 16 and suffix not in SIXTEEN_BIT_SUFFIXES:
        raise ImageError(f"{path}: {suffix} cannot hold 16-bit pixels (use .png or .tif)")
    return check_writable_folder(path)


def to_integer(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    """[0, 1] floats to the integer range of ``bit_depth``, rounded to nearest."""
    if bit_depth not in _MAX_VALUE:
        raise ImageError(f"bit depth must be 8 or 16, got {bit_depth}")
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    scaled = np.clip(pixels, 0.0, 1.0) * _MAX_VALUE[bit_depth]
    return np.rint(scaled).astype(dtype)


def write_image(path: str | os.PathLike, pixels: np.ndarray, bit_depth: int) -> Path:
    """Write H x W x C (C = 1 or 3, file channel order) floats in [0, 1] atomically. Non-finite
    values (a network's NaN or Inf) are refused: they would be written as black."""
    path = check_writable(path, bit_depth)
    if not np.isfinite(pixels).all():
        raise ImageError(f"{path}: the image has NaN or Inf values (a non-finite network output)")
    data = to_integer(pixels, bit_depth)
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[:, :, 0]
    with native_stderr():
        encoded, buffer = cv2.imencode(path.suffix.lower(), data)
    if not encoded:
        raise ImageError(f"{path}: OpenCV could not encode the image")
    write_bytes_atomic(path, buffer.tobytes())
    return path
