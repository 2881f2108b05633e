"""The background prediction-log writer: order kept, everything written at close, drops
counted when full, a failed write neither stops the thread nor loses later batches."""

from __future__ import annotations

import threading
import time

from serving.logqueue import LogQueue


class SlowLog:
    """A writer that takes ``delay`` seconds per batch (a slow disk), or waits for ``gate``."""

    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None) -> None:
        self.delay, self.gate, self.lines, self.fail_next = delay, gate, [], False

    def write(self, records) -> None:
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.delay)
        if self.fail_next:
            self.fail_next = False
            raise OSError("disk full")
        self.lines.extend(records)


def test_close_writes_every_queued_batch_in_order() -> None:
    log = SlowLog(delay=0.005)
    q = LogQueue(log.write, max_batches=100)
    for b in range(40):
        assert q.submit(lambda b=b: [f"{b}-{i}" for i in range(3)], 3)
    assert len(log.lines) < 120  # the answers did not wait for the writes
    q.close()
    assert log.lines == [f"{b}-{i}" for b in range(40) for i in range(3)]
    assert q.written == 120 and q.dropped == 0
    assert not q.submit(lambda: ["late"], 1) and q.dropped == 1  # closed: dropped, counted


def test_a_full_queue_drops_and_counts_instead_of_blocking() -> None:
    gate = threading.Event()
    log = SlowLog(gate=gate)
    q = LogQueue(log.write, max_batches=2)
    started = time.perf_counter()
    accepted = [q.submit(lambda b=b: [b], 1) for b in range(6)]
    assert time.perf_counter() - started < 1.0
    # The writer holds one batch, two wait: the other three are dropped.
    assert accepted.count(False) >= 3 and q.dropped == accepted.count(False)
    gate.set()
    q.close()
    assert log.lines == [b for b, ok in enumerate(accepted) if ok]


def test_a_failed_write_is_counted_and_later_batches_are_written() -> None:
    log = SlowLog()
    failed: list[int] = []
    q = LogQueue(log.write, on_failure=failed.append)
    log.fail_next = True
    q.submit(lambda: ["lost-1", "lost-2"], 2)
    q.submit(lambda: 1 / 0, 4)  # a record that cannot be built
    q.submit(lambda: ["kept"], 1)
    q.close()
    assert log.lines == ["kept"] and failed == [2, 4]


def test_after_runs_once_the_earlier_batches_are_written() -> None:
    log = SlowLog(delay=0.01)
    q = LogQueue(log.write)
    seen: list[int] = []
    q.submit(lambda: ["served-1", "served-2"], 2)
    q.after(lambda: seen.append(len(log.lines)))  # the shadow step starts here
    q.close()
    assert seen == [2] and q.dropped == 0
