"""Bounded load on loopback: 16 clients for 20 s against a real ``bentoml serve``.

Zero 5xx, memory flat (RSS of the server's process tree before vs after, within a
tolerance), and it prints requests/s and latency percentiles.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serving.test_service_e2e import _events, deployed  # noqa: F401  (fixture)

pytestmark = [pytest.mark.load, pytest.mark.slow]

CLIENTS = 16
SECONDS = 20.0
RSS_TOLERANCE_MB = 64.0


def tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and all its descendants (from /proc), in MiB."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue  # the process ended while we read it
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parents[int(entry.name)] = int(fields["PPid"])
        rss[int(entry.name)] = int(fields.get("VmRSS", "0 kB").split()[0])
    tree, frontier = {root}, [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree.update(children)
        frontier = children
    return sum(rss.get(pid, 0) for pid in tree) / 1024


def _hammer(url: str, stop: float, latencies: list[float], statuses: list[int], index: int) -> None:
    with httpx.Client(timeout=30) as client:
        n = 0
        while time.monotonic() < stop:
            body = {"user_id": f"load-{index}-{n}", "events": _events(1 + n % 12)}
            start = time.perf_counter()
            try:
                code = client.post(f"{url}/predict", json=body).status_code
            except httpx.HTTPError:
                code = 599  # a dropped connection counts as a server failure
            latencies.append(time.perf_counter() - start)
            statuses.append(code)
            n += 1


def _run(url: str, seconds: float) -> tuple[list[float], list[int], float]:
    latencies: list[float] = []
    statuses: list[int] = []
    stop = time.monotonic() + seconds
    threads = [
        threading.Thread(target=_hammer, args=(url, stop, latencies, statuses, i))
        for i in range(CLIENTS)
    ]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, statuses, time.monotonic() - start


def test_sixteen_clients_for_twenty_seconds(deployed) -> None:  # noqa: F811
    url, pid = deployed["url"], deployed["proc"].pid
    _run(url, 3.0)  # warm-up: traced functions, batch buckets, lazily imported modules
    rss_before = tree_rss_mb(pid)
    latencies, statuses, elapsed = _run(url, SECONDS)
    rss_after = tree_rss_mb(pid)
    errors = sum(code >= 500 for code in statuses)
    ms = np.asarray(latencies) * 1e3
    print(
        f"\nload: {CLIENTS} clients x {elapsed:.1f} s on loopback: {len(statuses)} requests, "
        f"{len(statuses) / elapsed:.1f} req/s, p50 {np.percentile(ms, 50):.1f} ms, "
        f"p99 {np.percentile(ms, 99):.1f} ms, 5xx {errors}, other non-200 "
        f"{sum(code != 200 for code in statuses) - errors}; server RSS "
        f"{rss_before:.0f} -> {rss_after:.0f} MiB (process tree of {pid}, {os.cpu_count()} CPUs)"
    )
    assert statuses and errors == 0
    assert all(code == 200 for code in statuses)
    assert deployed["proc"].poll() is None
    assert rss_before > 0 and rss_after - rss_before < RSS_TOLERANCE_MB
