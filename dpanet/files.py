"""Atomic file writes (torch-free): nothing half-written is ever left at the target path.

The output policy every command follows (docs/cli.md):

- An existing output file is replaced, as image tools do, keeping its permission bits; an output
  path that is a symbolic link keeps the link and replaces the file it points to.
- An output that is one of the command's inputs (after resolving links) is refused before any work.
- A failed write (full disk, read-only folder) is a one-line :class:`DPANetError` naming the file,
  and leaves the target as it was; an output folder a failed command created is removed again
  (:func:`output_folder`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from dpanet.errors import DPANetError


def check_writable_folder(path: str | os.PathLike) -> Path:
    """Raise :class:`DPANetError` unless ``path`` can be created in an existing, writable folder."""
    path = Path(path)
    if path.is_dir():
        raise DPANetError(f"{path}: is a folder (give a file name)")
    if path.exists() and not path.is_file():
        raise DPANetError(f"{path}: is not a regular file (a device or a pipe); give a file name")
    parent = Path(os.path.realpath(path)).parent if path.is_symlink() else path.parent
    if not parent.is_dir():
        raise DPANetError(f"{path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise DPANetError(f"{path}: folder {parent} is not writable")
    return path


def describe(error: OSError) -> str:
    """An OSError as a message: 'no space left on device', 'permission denied', ..."""
    text = error.strerror or str(error) or type(error).__name__
    return text[:1].lower() + text[1:]


def check_not_input(output: str | os.PathLike, *inputs: str | os.PathLike | None) -> None:
    """Raise :class:`DPANetError` if ``output`` names the same file as one of ``inputs``."""
    target = Path(os.path.realpath(output))
    for source in inputs:
        if source is not None and Path(os.path.realpath(source)) == target:
            raise DPANetError(f"{output}: is an input of this command; refusing to write over it")


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call ``write(temporary_path)`` on a file beside ``path`` (same suffix, so format-sniffing
    writers work), give it the permissions of the file it replaces (else the usual ones), then
    rename it over ``path``, or over the file ``path`` links to. On any failure the temporary file
    is removed and the error propagates. Returns ``path``."""
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    mode = (target.stat().st_mode & 0o7777) if target.is_file() else _default_mode()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
    except OSError as exc:
        raise DPANetError(f"{path}: {describe(exc)}") from None
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, mode)  # mkstemp creates 0600
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise DPANetError(f"{path}: {describe(exc)}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_write`."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` through :func:`atomic_write`."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


@contextlib.contextmanager
def output_folder(path: str | os.PathLike, option: str = "--out") -> Iterator[Path]:
    """Create the output folder ``path`` (and missing parents) for the ``with`` body; if the body
    fails, remove again the folders this created, when they are still empty."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DPANetError(f"{option} {path}: is a file, not a folder")
    created = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DPANetError(f"{option} {path}: {describe(exc)}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        _remove_empty(created)
        raise DPANetError(f"{option} {path}: folder is not writable")
    try:
        yield path
    except BaseException:
        _remove_empty(created)
        raise


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        with contextlib.suppress(OSError):
            folder.rmdir()
