"""Micro-batching: concurrent requests share model calls and get their own rows back."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from serving.batching import MicroBatcher, OverloadedError


def _slow_double(calls, gate=None):
    def predict(inputs):
        if gate is not None:
            gate.wait(5)
        calls.append(inputs["x"].shape[0])
        return {"y": inputs["x"] * 2}

    return predict


def test_queued_requests_are_batched_and_split_in_order():
    calls: list[int] = []
    gate = threading.Event()
    batcher = MicroBatcher(_slow_double(calls, gate), max_batch_rows=100, max_pending_rows=1000)

    async def main():
        first = asyncio.ensure_future(batcher.run({"x": np.array([1])}))
        await asyncio.sleep(0.05)  # the first call is now inside the model
        rest = [asyncio.ensure_future(batcher.run({"x": np.arange(n) + 10 * n})) for n in (1, 2, 3)]
        await asyncio.sleep(0.05)
        gate.set()
        return await first, await asyncio.gather(*rest)

    first, rest = asyncio.run(main())
    batcher.close()
    assert calls == [1, 6]
    np.testing.assert_array_equal(first["y"], [2])
    for n, out in zip((1, 2, 3), rest, strict=True):
        np.testing.assert_array_equal(out["y"], (np.arange(n) + 10 * n) * 2)


def test_batches_respect_max_rows():
    calls: list[int] = []
    gate = threading.Event()
    batcher = MicroBatcher(_slow_double(calls, gate), max_batch_rows=4, max_pending_rows=100)

    async def main():
        first = asyncio.ensure_future(batcher.run({"x": np.zeros(1)}))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(batcher.run({"x": np.zeros(3)})) for _ in range(3)]
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(first, *rest)

    asyncio.run(main())
    batcher.close()
    assert calls == [1, 3, 3, 3]


def test_model_errors_reach_every_waiting_request_and_the_worker_survives():
    state = {"fail": True}

    def predict(inputs):
        if state["fail"]:
            raise RuntimeError("boom")
        return {"y": inputs["x"]}

    batcher = MicroBatcher(predict, max_batch_rows=10, max_pending_rows=100)

    async def main():
        with pytest.raises(RuntimeError, match="boom"):
            await batcher.run({"x": np.zeros(2)})
        state["fail"] = False
        return await batcher.run({"x": np.ones(2)})

    out = asyncio.run(main())
    batcher.close()
    np.testing.assert_array_equal(out["y"], np.ones(2))


def test_too_many_pending_rows_raise_overloaded():
    batcher = MicroBatcher(lambda inputs: inputs, max_batch_rows=10, max_pending_rows=5)

    async def main():
        with pytest.raises(OverloadedError):
            await batcher.run({"x": np.zeros(6)})

    asyncio.run(main())
    batcher.close()


def test_finish_runs_once_per_batch_before_any_request_is_answered():
    calls: list[int] = []
    gate, finishing = threading.Event(), threading.Event()
    seen: list[tuple[list, list[int]]] = []

    def finish(contexts, outputs):
        seen.append((list(contexts), [o["y"].shape[0] for o in outputs]))
        finishing.set()
        gate.wait(5)
        return [f"{c}:{o['y'].sum()}" for c, o in zip(contexts, outputs, strict=True)]

    batcher = MicroBatcher(_slow_double(calls), 100, 1000, finish=finish)

    async def main():
        jobs = [asyncio.ensure_future(batcher.run({"x": np.full(n, n)}, f"r{n}")) for n in (1, 2)]
        while not finishing.is_set():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        waiting = [not job.done() for job in jobs]
        gate.set()
        return waiting, await asyncio.gather(*jobs)

    waiting, results = asyncio.run(main())
    batcher.close()
    assert waiting == [True, True]  # nobody is answered while the batch's finish runs
    assert calls == [3] and seen == [(["r1", "r2"], [1, 2])]
    assert results == ["r1:2", "r2:8"]


def test_model_runs_the_next_batch_while_the_previous_one_finishes():
    calls: list[int] = []
    gate = threading.Event()

    def finish(contexts, outputs):
        gate.wait(5)
        return contexts

    batcher = MicroBatcher(_slow_double(calls), 100, 1000, finish=finish)

    async def main():
        first = asyncio.ensure_future(batcher.run({"x": np.zeros(1)}, "a"))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(batcher.run({"x": np.zeros(2)}, "b"))
        for _ in range(200):
            if len(calls) == 2:
                break
            await asyncio.sleep(0.01)
        predicted = list(calls)
        gate.set()
        return predicted, await first, await second

    predicted, first, second = asyncio.run(main())
    batcher.close()
    assert predicted == [1, 2] and (first, second) == ("a", "b")


def test_finish_errors_reach_the_batch_and_rows_stay_pending_until_answered():
    gate = threading.Event()
    state = {"fail": True}

    def finish(contexts, outputs):
        gate.wait(5)
        if state["fail"]:
            raise OSError("disk full")
        return contexts

    batcher = MicroBatcher(lambda inputs: inputs, 10, 3, finish=finish)

    async def main():
        held = asyncio.ensure_future(batcher.run({"x": np.zeros(2)}, "held"))
        await asyncio.sleep(0.05)
        with pytest.raises(OverloadedError):  # the 2 rows in finish still count
            await batcher.run({"x": np.zeros(2)})
        gate.set()
        with pytest.raises(OSError, match="disk full"):
            await held
        state["fail"] = False
        return await batcher.run({"x": np.zeros(3)}, "after")

    assert asyncio.run(main()) == "after"
    batcher.close()


def test_small_requests_gather_on_the_loop_larger_ones_and_busy_times_take_the_threads():
    threads: list[str] = []
    finished: list[list] = []
    gate = threading.Event()
    gate.set()

    def predict(inputs):
        threads.append(threading.current_thread().name)
        gate.wait(5)
        return {"y": inputs["x"] * 2}

    def finish(contexts, outputs):
        finished.append(contexts)
        return [(c, o["y"].tolist()) for c, o in zip(contexts, outputs, strict=True)]

    stages: list[tuple[str, int]] = []
    batcher = MicroBatcher(
        predict, 10, 100, finish, lambda s, _, n: stages.append((s, n)), loop_rows=2
    )

    async def main():
        lone = await batcher.run({"x": np.array([3])}, "a")  # a group of one, on the loop
        # Three arrive together: they gather into one model call on the loop.
        group = await asyncio.gather(
            *(batcher.run({"x": np.array([v])}, c) for v, c in ((1, "b"), (2, "c"), (5, "d")))
        )
        big = await batcher.run({"x": np.array([1, 2, 3])}, "e")  # 3 rows > 2: model thread
        gate.clear()  # a slow model call holds the thread; a small request arriving meanwhile
        held = asyncio.ensure_future(batcher.run({"x": np.array([7, 8, 9])}, "f"))
        await asyncio.sleep(0.05)
        small = asyncio.ensure_future(batcher.run({"x": np.array([4])}, "g"))  # joins threads
        await asyncio.sleep(0.05)
        gate.set()
        return lone, group, big, await held, await small, threading.current_thread().name

    lone, group, big, held, small, caller = asyncio.run(main())
    batcher.close()
    assert lone == ("a", [6]) and group == [("b", [2]), ("c", [4]), ("d", [10])]
    assert (big, held, small) == (("e", [2, 4, 6]), ("f", [14, 16, 18]), ("g", [8]))
    assert threads[:2] == [caller, caller] and all(t.startswith("model") for t in threads[2:])
    assert finished == [["a"], ["b", "c", "d"], ["e"], ["f"], ["g"]]
    assert list(batcher.batch_sizes) == [1, 3, 3, 3, 1]
    assert stages[:2] == [("queue", 1), ("model", 1)]
    assert stages[2:6] == [("queue", 1)] * 3 + [("model", 3)]


def test_the_thread_batch_waits_for_requests_still_coming_at_most_max_wait():
    coming = [1]
    batcher = MicroBatcher(lambda inputs: inputs, 10, 100, coming=lambda: coming[0], max_wait_s=0.3)

    async def main():
        first = asyncio.ensure_future(batcher.run({"x": np.array([1, 2])}))
        await asyncio.sleep(0.05)
        waited = not first.done()  # the model waits for the request still coming
        coming[0] = 0
        second = await batcher.run({"x": np.array([3])})  # arrives: one model call for both
        coming[0] = 1  # one that never arrives holds a batch for max_wait_s only
        start = time.perf_counter()
        third = await batcher.run({"x": np.array([4])})
        return waited, await first, second, third, time.perf_counter() - start

    waited, first, second, third, took = asyncio.run(main())
    batcher.close()
    assert waited and first["x"].tolist() == [1, 2] and second["x"].tolist() == [3]
    assert third["x"].tolist() == [4] and 0.25 < took < 2
    assert list(batcher.batch_sizes) == [3, 1]


def test_a_larger_request_arriving_while_a_group_gathers_waits_for_its_model_call():
    active, most = [0], [0]
    lock = threading.Lock()

    def predict(inputs):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return {"y": inputs["x"] * 2}

    batcher = MicroBatcher(predict, 10, 100, loop_rows=1)

    async def main():
        return await asyncio.gather(
            batcher.run({"x": np.array([1])}), batcher.run({"x": np.array([2, 3])})
        )

    small, big = asyncio.run(main())
    batcher.close()
    assert small["y"].tolist() == [2] and big["y"].tolist() == [4, 6]
    assert most[0] == 1  # one model call at a time, as on the model thread alone
