"""Prediction log: a write that fails midway leaves no torn line before later records."""

from __future__ import annotations

import errno
import json
import os

import pytest

from core.predlog import LOG_GLOB, PredictionLog, PredictionLogError
from tests.core.test_predlog_record import make_record


def _lines(directory):
    return {f.name: f.read_bytes() for f in sorted(directory.glob(LOG_GLOB))}


def _ids(data: bytes) -> list[str]:
    return [json.loads(line)["request_id"] for line in data.splitlines()]


def _fail_after_half(monkeypatch, times: int = 1):
    real, state = os.write, {"left": times}

    def broken(fd, data):
        if state["left"] == 0:
            return real(fd, data)
        state["left"] -= 1
        real(fd, bytes(data[: len(data) // 2]))  # the disk took half, then filled up
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", broken)


def test_failed_write_is_rolled_back_to_the_last_complete_line(tmp_path, monkeypatch):
    log = PredictionLog(tmp_path, rotate_rows=100)
    log.write([make_record("ok1")])
    _fail_after_half(monkeypatch)
    with pytest.raises(PredictionLogError, match="No space left"):
        log.write([make_record(f"lost{i}") for i in range(4)])
    log.write([make_record("ok2")])
    (name, data), *_ = _lines(tmp_path).items()
    assert _ids(data) == ["ok1", "ok2"]
    assert (log.written, log.failed) == (2, 4)
    log.close()


def test_when_rollback_fails_the_torn_file_is_abandoned(tmp_path, monkeypatch):
    log = PredictionLog(tmp_path, rotate_rows=100)
    log.write([make_record("ok1")])
    _fail_after_half(monkeypatch)

    def no_truncate(fd, size):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "ftruncate", no_truncate)
    with pytest.raises(PredictionLogError):
        log.write([make_record(f"lost{i}") for i in range(3)])
    log.write([make_record("ok2")])
    first, second = _lines(tmp_path).values()
    assert not first.endswith(b"\n")  # the torn tail is the last line of its file
    assert _ids(first.splitlines()[0]) == ["ok1"]
    assert _ids(second) == ["ok2"]
    log.close()
