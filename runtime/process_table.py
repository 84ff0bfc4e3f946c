"""Ending processes left behind by a server that has stopped (Linux: read from /proc).

Used by :class:`dpanet.runtime.triton_serve.RunningServer`: PyTriton's stop now and then leaves a
Triton Python-backend stub running, and a stub's own children (Python's multiprocessing resource
tracker) clean its shared memory up only once the stub is gone, printing as they do.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

DESCENDANT_EXIT_WAIT_S = 5.0


def end_processes_run_from(
    folder: Path, wait_s: float, descendants_wait_s: float = DESCENDANT_EXIT_WAIT_S
) -> list[int]:
    """SIGKILL the processes whose program lies under ``folder`` and that are still alive
    ``wait_s`` seconds from now; then wait up to ``descendants_wait_s`` for the processes they
    had started to end by themselves, so that what those print is printed before this returns.
    Returns the PIDs killed."""
    prefix = f"{folder}{os.sep}".encode()
    deadline = time.monotonic() + wait_s
    while True:
        left = [pid for pid in _pids() if _program(pid).startswith(prefix) and _alive(pid)]
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    descendants = _descendants(left)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + descendants_wait_s
    while any(_alive(pid) for pid in descendants) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _program(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:  # gone, or not ours to read
        return b""


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # after "pid (comm) state"


def _descendants(roots: list[int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid in _pids():
        children.setdefault(_parent(pid), []).append(pid)
    found, todo = [], list(roots)
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _alive(pid: int) -> bool:
    """Running or sleeping; a zombie (ended, not yet reaped) is not."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status
