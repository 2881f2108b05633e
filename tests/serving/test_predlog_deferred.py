"""Deferred prediction-log items: summarised on the writer thread, coalesced, in order."""

from __future__ import annotations

import json
import threading

import pytest

from serving.predlog import PredictionLog


def _rows(directory):
    files = sorted(directory.glob("predictions-*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def test_deferred_items_are_coalesced_and_keep_order_with_plain_records(tmp_path):
    gate, calls = threading.Event(), []

    def summarise(items):
        gate.wait(5)  # hold the writer so that later items queue up behind the first
        calls.append(list(items))
        return [{"i": i} for i in items]

    log = PredictionLog(tmp_path, rotate_rows=100, summarise=summarise)
    for i in range(4):
        assert log.submit_deferred(i, 1)
    log.submit([{"i": "plain"}])
    assert log.submit_deferred(9, 1)
    gate.set()
    assert log.flush()
    assert [r["i"] for r in _rows(tmp_path)] == [0, 1, 2, 3, "plain", 9]
    assert len(calls) < 5 and [i for c in calls for i in c] == [0, 1, 2, 3, 9]
    log.close()


def test_a_failing_summary_drops_and_counts_its_rows(tmp_path):
    def summarise(items):
        raise ValueError("bad")

    log = PredictionLog(tmp_path, rotate_rows=100, summarise=summarise)
    log.submit_deferred("x", 3)
    assert log.flush()
    assert log.dropped == 3 and log.written == 0
    log.submit([{"ok": 1}])
    assert log.flush() and _rows(tmp_path) == [{"ok": 1}]
    log.close()


def test_deferred_items_need_a_summarise_function(tmp_path):
    log = PredictionLog(tmp_path, rotate_rows=10)
    with pytest.raises(RuntimeError, match="summarise"):
        log.submit_deferred("x", 1)
    log.close()
