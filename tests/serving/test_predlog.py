"""Prediction log: rotation by rows, flushing, bounded queue, never raising."""

from __future__ import annotations

import json
import threading

from serving.predlog import PredictionLog, hash_user


def _rows(directory):
    files = sorted(directory.glob("predictions-*.jsonl"))
    return files, [json.loads(line) for f in files for line in f.read_text().splitlines()]


def test_records_are_written_in_order_and_rotated_by_rows(tmp_path):
    log = PredictionLog(tmp_path / "log", rotate_rows=3)
    log.submit([{"i": i} for i in range(5)])
    log.submit([{"i": 5}])
    log.submit([{"i": i} for i in range(6, 8)])
    assert log.flush()
    files, rows = _rows(tmp_path / "log")
    assert [r["i"] for r in rows] == list(range(8))
    assert [len(f.read_text().splitlines()) for f in files] == [3, 3, 2]
    assert all(f.name.startswith("predictions-") for f in files)
    assert log.written == 8 and log.dropped == 0
    log.close()


def test_flushed_records_are_readable_before_close(tmp_path):
    log = PredictionLog(tmp_path, rotate_rows=100)
    log.submit([{"a": 1}])
    assert log.flush()
    assert _rows(tmp_path)[1] == [{"a": 1}]
    log.close()


def test_full_queue_drops_and_counts_instead_of_blocking(tmp_path):
    gate = threading.Event()
    log = PredictionLog(tmp_path, rotate_rows=100, max_pending=1)
    original = log._write
    log._write = lambda records: (gate.wait(5), original(records))
    assert log.submit([{"a": 1}])  # taken by the writer, which now waits on the gate
    for _ in range(200):  # wait until the writer holds it so the queue is empty again
        if log._queue.empty():
            break
        threading.Event().wait(0.01)
    assert log.submit([{"a": 2}])  # fills the single slot
    assert not log.submit([{"a": 3}, {"a": 4}])
    assert log.dropped == 2
    gate.set()
    assert log.flush()
    assert [r["a"] for r in _rows(tmp_path)[1]] == [1, 2]
    log.close()


def test_unserialisable_or_failing_batches_are_counted_not_raised(tmp_path):
    target = tmp_path / "file-not-dir"
    target.write_text("")
    log = PredictionLog(target, rotate_rows=10)  # mkdir fails: the path is a file
    assert log.submit([{"a": 1}, {"a": 2}])
    assert log.flush()
    assert log.dropped == 2 and log.written == 0
    log.close()


def test_user_hash_is_16_hex_and_stable():
    assert hash_user("u1") == hash_user("u1") != hash_user("u2")
    assert len(hash_user("u1")) == 16 and int(hash_user("u1"), 16) >= 0
    assert hash_user(None) is None
