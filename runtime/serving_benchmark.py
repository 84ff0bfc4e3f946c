"""``dpanet bench serving``: pairs per minute and latency through a Triton server (``dpanet
serve``'s, PyTriton) with 1 or more model instances and 1 or more concurrent clients, against the
local ``deblur --pairs`` path in the same run (torch-free).

Every configuration deblurs the same pairs from files to files: a client takes the next pair,
reads it, sends it through :class:`~dpanet.runtime.triton_client.TritonBackend` and writes the
result, as ``dpanet deblur --server`` does; latency is per pair, from reading to written.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from dpanet.runtime.deblurrer import Deblurrer
from dpanet.runtime.folders import deblur_folder
from dpanet.runtime.images import write_image
from dpanet.runtime.pairs import find_pairs


def _write_pairs(folder: Path, count: int, size: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    h, w = size
    for i in range(count):
        base = rng.random((h, w + 2, 3)).astype(np.float32)
        write_image(folder / f"p{i:02d}_L.png", base[:, 2:], 8)
        write_image(folder / f"p{i:02d}_R.png", base[:, :w], 8)


def _through_server(url: str, pairs, out: Path, clients: int) -> tuple[float, list[float]]:
    """(wall seconds, per-pair latencies) of ``clients`` threads deblurring ``pairs``."""

    todo: queue.Queue = queue.Queue()
    for pair in pairs:
        todo.put(pair)
    latencies: list[float] = []
    errors: list[BaseException] = []

    def client() -> None:
        deblurrer = Deblurrer(url, note=lambda message: None)
        try:
            while True:
                try:
                    pair = todo.get_nowait()
                except queue.Empty:
                    return
                start = time.perf_counter()
                deblurrer.deblur_files(pair.left, pair.right, out / f"{pair.name}.png")
                latencies.append(time.perf_counter() - start)
        except BaseException as exc:  # reported after the threads are joined
            errors.append(exc)
        finally:
            deblurrer.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - start, latencies


def run_serving_benchmark(
    model: Path, size: tuple[int, int], count: int, instances: list[int], clients: list[int]
) -> str:
    from dpanet.runtime.triton_serve import Ports, free_loopback_ports, load_network, start_server

    cores = os.cpu_count() or 1
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        pairs_dir = Path(folder) / "pairs"
        pairs_dir.mkdir()
        _write_pairs(pairs_dir, count, size)
        found = find_pairs(pairs_dir)
        local = Deblurrer(model, note=lambda message: None)
        out = Path(folder) / "local"
        out.mkdir()
        start = time.perf_counter()
        deblur_folder(found, out, local, overwrite=True)
        local_s = time.perf_counter() - start
        rows.append(("local deblur --pairs (1 process)", local_s, []))
        for n in instances:
            networks = [load_network(model, None, max(1, cores // n)) for _ in range(n)]
            ports = Ports(*free_loopback_ports(3))
            triton = start_server({"dpanet": networks}, ports, log_file=Path(folder) / "triton.log")
            try:
                for c in clients:
                    out = Path(folder) / f"served-{n}-{c}"
                    out.mkdir()
                    wall, latencies = _through_server(f"http://127.0.0.1:{ports.http}", found.pairs, out, c)
                    rows.append((f"Triton, {n} instance(s), {c} client(s)", wall, latencies))
            finally:
                triton.stop()
    h, w = size
    lines = [
        f"{count} pairs of {h}x{w}, {model.name}, {cores} CPU core(s); ONNX Runtime threads: all cores "
        "locally, cores / instances on the server",
        "",
        "| run | pairs/min | vs local | latency median (s) | latency max (s) |",
        "|---|---|---|---|---|",
    ]
    for label, wall, latencies in rows:
        rate = count / wall * 60
        median = f"{np.median(latencies):.2f}" if latencies else "-"
        worst = f"{max(latencies):.2f}" if latencies else "-"
        lines.append(f"| {label} | {rate:.1f} | {local_s / wall:.2f}x | {median} | {worst} |")
    return "\n".join(lines) + "\n"
