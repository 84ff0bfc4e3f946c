"""Atomic file writes (torch-free): nothing half-written is ever left at the target path."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from dpanet.errors import DPANetError


def check_writable_folder(path: str | os.PathLike) -> Path:
    """Raise :class:`DPANetError` unless ``path`` can be created in an existing, writable folder."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise DPANetError(f"{path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise DPANetError(f"{path}: folder {parent} is not writable")
    if path.is_dir():
        raise DPANetError(f"{path}: is a folder")
    return path


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call ``write(temporary_path)`` on a file beside ``path`` (same suffix, so format-sniffing
    writers work), give it the usual permissions, then rename it over ``path``. On any failure the
    temporary file is removed and the error propagates."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, _default_mode())  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` through :func:`atomic_write`."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
