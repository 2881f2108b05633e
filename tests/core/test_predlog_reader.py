"""read_prediction_log over rotated JSONL files with a half-written last line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.predlog import RECORD_COLUMNS, PredictionLog, PredictionRecord, read_prediction_log
from tests.core.test_predlog_record import make_record


def _record(stamp: str, i: int) -> dict:
    return {"logged_at": stamp, "request_id": f"r{i}", "seq_len": float(i), "top_category": "c1"}


def _write(path: Path, records: list[dict], tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


def test_torn_last_lines_are_counted_apart_from_damaged_lines(tmp_path: Path) -> None:
    first = tmp_path / "predictions-20240101T000000-11.jsonl"
    _write(first, [_record("2024-01-01T00:30:00Z", 0)], '[1, 2]\n{"broken\n')
    with first.open("a") as handle:
        handle.write(json.dumps(_record("2024-01-01T00:40:00Z", 1)) + '\n{"logged_at": "20')
    second = tmp_path / "predictions-20240101T010000-12.jsonl"
    _write(second, [], json.dumps(_record("2024-01-01T01:30:00Z", 2)))  # whole, no newline
    frame = read_prediction_log(tmp_path)
    assert frame["request_id"].tolist() == ["r0", "r1", "r2"]
    assert (frame.attrs["skipped_lines"], frame.attrs["torn_lines"]) == (3, 1)


def test_window_over_rotated_files_skips_truncated_line(tmp_path: Path) -> None:
    _write(
        tmp_path / "predictions-20240101T000000-11.jsonl",
        [_record("2024-01-01T00:30:00+00:00", 0), _record("2024-01-01T01:30:00+00:00", 1)],
    )
    _write(
        tmp_path / "predictions-20240101T020000-11_0001.jsonl",
        [_record("2024-01-01T02:30:00+00:00", 2), _record("2024-01-01T03:30:00Z", 3)],
        tail='{"logged_at": "2024-01-01T03:40:00+00:00", "seq_l',
    )
    (tmp_path / "notes.txt").write_text("not a log")
    frame = read_prediction_log(
        tmp_path, datetime(2024, 1, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, 3)
    )
    assert frame["request_id"].tolist() == ["r1", "r2"]
    assert frame.attrs["skipped_lines"] == frame.attrs["torn_lines"] == 1
    assert len(frame.attrs["files"]) == 2
    everything = read_prediction_log(tmp_path)
    assert everything["request_id"].tolist() == ["r0", "r1", "r2", "r3"]
    assert str(everything["logged_at"].dt.tz) == "UTC"


def test_files_opened_after_window_are_not_read(tmp_path: Path) -> None:
    _write(tmp_path / "predictions-20240105T000000-1.jsonl", [_record("2024-01-05T00:00:01Z", 9)])
    frame = read_prediction_log(tmp_path, None, datetime(2024, 1, 2, tzinfo=UTC))
    assert frame.empty and frame.attrs["files"] == []


def test_missing_log_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        read_prediction_log(tmp_path / "nowhere")


def test_what_the_writer_writes_the_reader_reads(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, rotate_rows=2)
    records = [make_record(i, shadow=i == 2) for i in range(3)]
    log.write(records)
    log.close()
    frame = read_prediction_log(tmp_path)
    assert list(frame.columns) == list(RECORD_COLUMNS) and len(frame.attrs["files"]) == 2
    assert frame["shadow"].tolist() == [False, False, True]
    rows = frame.assign(logged_at=frame["logged_at"].map(lambda t: t.isoformat()))
    assert [PredictionRecord.from_dict(row) for row in rows.to_dict("records")] == records
