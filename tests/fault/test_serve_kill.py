"""SIGKILL a real ``bentoml serve`` under load: every 200 has exactly one whole log record.

Clients post ``/predict`` and ``/predict_batch`` (every prediction carries a ``request_id``)
while the server's process group is killed mid-load. Then each request answered 200 must
have exactly one complete, parseable record in the prediction log; every line parses except
at most a torn last line per file (reported, and tolerated by the monitoring reader). As
each 200 arrives, its records must already be in the log: a kill at any instant keeps them.
Before the load, the log folder is blocked by a file: that request must get a 503 naming
the log, not a 200 without a record.
A log rotation every few dozen rows makes the kill land near file boundaries too.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from serving.launch import Server, ServerStartError, kill_server, start_server, stop_server
from tests.serving.test_service_e2e import _events, small_store

pytestmark = [pytest.mark.fault, pytest.mark.slow]

CLIENTS = 8
LOAD_S = 4.0
ROTATE_ROWS = 40


@dataclass
class Tally:
    """What the clients saw; appended to from several threads (list.append is atomic)."""

    answered: list[str] = field(default_factory=list)  # request ids of 200 predictions
    statuses: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # connection errors
    early: list[str] = field(default_factory=list)  # 200s whose record was not yet in the log


class LogWatch:
    """Request ids of the complete lines in the log so far, read incrementally."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ids: set[str] = set()
        self._offsets: dict[Path, int] = {}
        self._lock = threading.Lock()

    def has(self, request_id: str) -> bool:
        """Whether a record of ``request_id`` is in the log now (what a kill would keep)."""
        with self._lock:
            if request_id not in self.ids:
                self._read_new_lines()
            return request_id in self.ids

    def _read_new_lines(self) -> None:
        for path in sorted(self.directory.glob("predictions-*.jsonl")):
            start = self._offsets.get(path, 0)
            with path.open("rb") as handle:
                handle.seek(start)
                data = handle.read()
            end = data.rfind(b"\n") + 1
            for line in data[:end].splitlines():
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    self.ids.add(json.loads(line)["request_id"])
            self._offsets[path] = start + end


def _serve(tmp: Path, config: str) -> tuple[Server, Path]:
    _, home, tag = small_store(tmp)
    (tmp / "config.yaml").write_text(config)
    env = {
        "BENTOML_HOME": str(home),
        "INTEREST_STATE_DIR": str(tmp / "state"),
        "INTEREST_CONFIG": str(tmp / "config.yaml"),
        "INTEREST_BENTO_MODEL": tag,
    }
    try:
        return start_server(env, tmp / "server.log", timeout=120), tmp / "state" / "predictions"
    except ServerStartError as exc:
        pytest.fail(str(exc))


def _client(url: str, index: int, stop: threading.Event, tally: Tally, watch: LogWatch) -> None:
    with httpx.Client(timeout=20) as client:
        n = 0
        while not stop.is_set():
            n += 1
            user = {"user_id": f"kill-{index}-{n}", "events": _events(1 + n % 8)}
            batch = n % 5 == 0
            try:
                if batch:
                    users = [{**user, "user_id": f"{user['user_id']}-{k}"} for k in range(3)]
                    resp = client.post(f"{url}/predict_batch", json={"users": users})
                else:
                    resp = client.post(f"{url}/predict", json=user)
            except httpx.HTTPError as exc:
                tally.failures.append(type(exc).__name__)
                time.sleep(0.05)
                continue
            tally.statuses.append(resp.status_code)
            if resp.status_code == 200:
                body = resp.json()
                predictions = body["predictions"] if batch else [body]
                ids = [p["request_id"] for p in predictions]
                tally.answered.extend(ids)
                # The record must be in the kernel before the 200: a SIGKILL at this very
                # moment would otherwise lose it.
                tally.early.extend(r for r in ids if not watch.has(r))


def _scan(directory: Path) -> tuple[Counter[str], list[str], int]:
    """Request ids of whole records, damaged lines (file:line) and torn last lines."""
    ids: Counter[str] = Counter()
    damaged, torn = [], 0
    for path in sorted(directory.glob("predictions-*.jsonl")):
        *lines, tail = path.read_bytes().split(b"\n")
        for number, line in enumerate(lines, start=1):
            try:
                record = json.loads(line)
                ids[record["request_id"]] += 1
                assert record["logged_at"] and "top_categories" in record
            except (ValueError, KeyError, TypeError, AssertionError):
                damaged.append(f"{path.name}:{number}")
        if tail:  # no newline: torn, unless the cut fell just before it (reader keeps it)
            try:
                ids[json.loads(tail)["request_id"]] += 1
            except (ValueError, KeyError, TypeError):
                torn += 1
    return ids, damaged, torn


def test_sigkill_under_load_keeps_one_whole_record_per_200(tmp_path: Path) -> None:
    from core.predlog import read_prediction_log

    log_dir = tmp_path / "state" / "predictions"
    log_dir.parent.mkdir()
    log_dir.write_text("")  # a file where the log folder goes: the log cannot be written
    started = time.monotonic()
    server, _ = _serve(
        tmp_path,
        f"serving:\n  max_events: 30\n  log_rotate_rows: {ROTATE_ROWS}\n  log_write: sync\n",
    )
    started = time.monotonic() - started
    stop, tally, watch = threading.Event(), Tally(), LogWatch(log_dir)
    threads = [
        threading.Thread(target=_client, args=(server.url, i, stop, tally, watch))
        for i in range(CLIENTS)
    ]
    try:
        blocked = httpx.post(f"{server.url}/predict", json={"events": _events(3)}, timeout=30)
        log_dir.unlink()  # the disk is back: the next write creates the folder
        for thread in threads:
            thread.start()
        time.sleep(LOAD_S)
        before_kill = len(tally.statuses)
        kill_server(server)  # SIGKILL, server and workers, clients still posting
        time.sleep(0.5)  # let in-flight requests fail against the dead server
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        stop_server(server)
    assert blocked.status_code == 503, blocked.text  # no 200 without a record
    assert blocked.json()["field"] == "prediction_log" and str(log_dir) in blocked.text
    ids, damaged, torn = _scan(log_dir)
    lost = [r for r in tally.answered if ids[r] == 0]
    doubled = [r for r, n in ids.items() if n > 1]
    files = len(list(log_dir.glob("predictions-*.jsonl")))
    print(
        f"\nserve kill (bundle + server ready in {started:.0f} s, {CLIENTS} clients for "
        f"{LOAD_S:g} s): {len(tally.statuses) + len(tally.failures)} requests sent "
        f"({before_kill} answered before the kill), {tally.statuses.count(200)} got 200 "
        f"({len(tally.answered)} predictions), other statuses "
        f"{dict(Counter(s for s in tally.statuses if s != 200))}, connection failures "
        f"{len(tally.failures)} {dict(Counter(tally.failures))}; log: {sum(ids.values())} "
        f"records in {files} files, {torn} torn last lines, {len(damaged)} damaged lines, "
        f"{len(lost)} answered predictions without a record ({len(tally.early)} answered "
        "before their record was written), "
        f"{len(ids) - len(set(tally.answered) & set(ids))} records of unanswered requests"
    )
    assert tally.answered and files > 1, "no load reached the server before the kill"
    assert tally.failures, "the kill did not land while clients were posting"
    assert not lost, f"{len(lost)} predictions answered 200 have no log record: {lost[:5]}"
    assert not tally.early, f"{len(tally.early)} predictions answered before their record"
    assert not doubled, f"records logged twice: {doubled[:5]}"
    assert not damaged, f"unparseable lines before the end of a file: {damaged[:5]}"
    assert torn <= files
    frame = read_prediction_log(log_dir)  # the monitoring reader copes with the torn tails
    assert len(frame) == sum(ids.values()) and frame.attrs["torn_lines"] == torn
    assert set(tally.answered) <= set(frame["request_id"])
