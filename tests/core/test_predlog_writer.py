"""Prediction log writer: synchronous appends, one os.write per file chunk, rotation."""

from __future__ import annotations

import json
import os
import threading

import pytest

from core.hashing import hash_user
from core.predlog import LOG_GLOB, PredictionLog, PredictionLogError, PredictionRecord
from tests.core.test_predlog_record import make_record


def _recs(ids) -> list[PredictionRecord]:
    return [make_record(i) for i in ids]


def _rows(directory):
    files = sorted(directory.glob(LOG_GLOB))
    return files, [json.loads(line) for f in files for line in f.read_text().splitlines()]


def _ids(rows) -> list[int]:
    return [int(r["request_id"]) for r in rows]


def _count_writes(monkeypatch):
    calls: list[int] = []
    real = os.write

    def counted(fd, data):
        calls.append(len(data))
        return real(fd, data)

    monkeypatch.setattr(os, "write", counted)
    return calls


def test_records_are_written_in_order_and_rotated_by_rows(tmp_path):
    log = PredictionLog(tmp_path / "log", rotate_rows=3)
    log.write(_recs(range(5)))
    log.write(_recs([5]))
    log.write(_recs(range(6, 8)))
    files, rows = _rows(tmp_path / "log")
    assert _ids(rows) == list(range(8))
    assert [len(f.read_text().splitlines()) for f in files] == [3, 3, 2]
    assert all(f.read_bytes().endswith(b"\n") for f in files)
    assert log.written == 8 and log.failed == 0 and log.path == files[-1]
    log.close()


def test_a_batch_is_one_os_write_per_file_and_readable_when_write_returns(tmp_path, monkeypatch):
    calls = _count_writes(monkeypatch)
    log = PredictionLog(tmp_path, rotate_rows=4)
    log.write(_recs(range(3)))
    assert len(calls) == 1
    assert _ids(_rows(tmp_path)[1]) == [0, 1, 2]  # no flush, no close needed
    log.write(_recs(range(3, 6)))  # 1 row fits, 2 go to a new file
    assert len(calls) == 3
    files, rows = _rows(tmp_path)
    assert _ids(rows) == list(range(6)) and len(files) == 2
    log.close()


def test_short_writes_are_completed(tmp_path, monkeypatch):
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, bytes(data[:7])))
    log = PredictionLog(tmp_path, rotate_rows=100)
    log.write(_recs(range(3)))
    assert _ids(_rows(tmp_path)[1]) == [0, 1, 2]
    log.close()


def test_unwritable_folder_raises_naming_it_and_counts(tmp_path):
    target = tmp_path / "file-not-dir"
    target.write_text("")
    log = PredictionLog(target, rotate_rows=10)  # mkdir fails: the path is a file
    with pytest.raises(PredictionLogError, match="file-not-dir"):
        log.write(_recs([1, 2]))
    assert log.failed == 2 and log.written == 0
    log.close()


def test_unserialisable_record_raises_and_writes_nothing(tmp_path):
    loop: dict = {}
    loop["self"] = loop
    log = PredictionLog(tmp_path, rotate_rows=10)
    with pytest.raises(PredictionLogError, match="not serialisable"):
        log.write([make_record(1), make_record(2, trajectory=(loop,))])
    assert _rows(tmp_path)[1] == [] and log.failed == 2
    log.close()


def test_concurrent_writers_never_interleave_lines(tmp_path):
    log = PredictionLog(tmp_path, rotate_rows=37)

    def writer(t: int) -> None:
        for n in range(40):
            log.write([make_record(f"{t}-{n}", model_name="y" * (n * 13)) for _ in range(3)])

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    files, rows = _rows(tmp_path)
    assert len(rows) == 6 * 40 * 3 == log.written
    assert all(len(f.read_text().splitlines()) <= 37 for f in files)
    log.close()


def test_a_second_log_in_the_same_second_never_appends_to_the_first(tmp_path):
    first, second = PredictionLog(tmp_path, 10), PredictionLog(tmp_path, 10)
    first.write(_recs([1]))
    second.write(_recs([2]))
    assert first.path != second.path
    assert [len(f.read_text().splitlines()) for f in _rows(tmp_path)[0]] == [1, 1]
    first.close()
    second.close()


def test_user_hash_is_16_hex_and_stable():
    assert hash_user("u1") == hash_user("u1") != hash_user("u2")
    assert len(hash_user("u1")) == 16 and int(hash_user("u1"), 16) >= 0
    assert hash_user(None) is None
