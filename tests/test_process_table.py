"""Ending the processes a stopped server left behind: only those run from its folder, and only
after the processes they started have ended by themselves."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

from dpanet.runtime.process_table import end_processes_run_from


def children(pid: int) -> list[int]:
    listing = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(field) for field in listing.split()]


def state(pid: int) -> str:
    return subprocess.run(
        ["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True
    ).stdout.strip()


def test_processes_run_from_a_folder_are_ended_after_a_wait(tmp_path):
    """A shell whose program lies in the folder is killed; the sleep it started outlives it and
    has ended when the call returns; a process whose program lies elsewhere is left running."""
    inside = tmp_path / "bin" / "sh"
    inside.parent.mkdir()
    shutil.copy(shutil.which("sh"), inside)
    stub = subprocess.Popen([str(inside), "-c", "sleep 1.5 & wait"])
    other = subprocess.Popen([shutil.which("sleep"), "60"])
    try:
        deadline = time.monotonic() + 10
        while not children(stub.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        (descendant,) = children(stub.pid)
        assert end_processes_run_from(tmp_path, wait_s=0.3) == [stub.pid]
        assert stub.wait(timeout=10) == -signal.SIGKILL
        assert state(descendant) in ("", "Z")  # the sleep ended before the call returned
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_nothing_to_end(tmp_path):
    inside = Path(tmp_path) / "sleep"
    shutil.copy(shutil.which("sleep"), inside)
    subprocess.run([str(inside), "0"], check=True)  # ended and reaped
    assert end_processes_run_from(tmp_path, wait_s=0) == []
