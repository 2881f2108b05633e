"""Model slots: an atomic swap between micro-batches, a failed load, workers that follow."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from serving.batching import MicroBatcher
from serving.deployed import Deployed
from serving.desired import DesiredFile
from serving.schemas import ModelId
from serving.slots import ModelSlots


class SpyBatcher(MicroBatcher):
    """A batcher that says when it was closed."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.closed = threading.Event()

    def close(self) -> None:
        super().close()
        self.closed.set()


def _model(version: str, factor: float = 1.0, gate: threading.Event | None = None) -> Deployed:
    def predict(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if gate is not None:
            assert gate.wait(10)
        return {"y": inputs["x"] * factor}

    model = ModelId(name="m", version=version, bento_tag=f"m:v{version}")
    return Deployed(model=model, bundle=SimpleNamespace(predict=predict), buckets=[])


def _attach(deployed: Deployed) -> None:
    deployed.batcher = SpyBatcher(deployed.bundle.predict, max_batch_rows=8, max_pending_rows=64)


def _slots(served: Deployed, models: dict[str, Deployed], desired=None, **kw) -> ModelSlots:
    _attach(served)

    def load(tag: str) -> Deployed:
        if tag not in models:
            raise LookupError(f"no model {tag}")
        return models[tag]

    return ModelSlots(served, None, load, _attach, desired=desired, **kw)


async def _call(slots: ModelSlots, x: float) -> tuple[str, float]:
    with slots.acquire() as served:
        await asyncio.sleep(0)  # encoding happens here, with the model taken above
        out = await served.batcher.run({"x": np.array([x])})
    return served.model.version, float(out["y"][0])


def test_reload_swaps_between_batches_and_retires_the_old_model_once_drained():
    gate = threading.Event()
    old, new = _model("1", 1.0, gate), _model("2", 10.0)
    swapped = []
    slots = _slots(old, {"m:v2": new}, on_swap=swapped.append)

    async def scenario() -> None:
        in_flight = asyncio.create_task(_call(slots, 3.0))
        await asyncio.sleep(0.05)  # the old model is busy with it
        loaded, replaced = await asyncio.to_thread(slots.reload, "m:v2")
        assert (loaded, replaced) == (new, old) and swapped == [new]
        assert await _call(slots, 3.0) == ("2", 30.0)  # the new model, at once
        assert not in_flight.done() and not old.batcher.closed.is_set()
        gate.set()
        assert await in_flight == ("1", 3.0)  # finished on the model it started on
        assert await asyncio.to_thread(old.batcher.closed.wait, 5)
        assert old.in_use == 0 and not new.batcher.closed.is_set()

    asyncio.run(scenario())
    slots.close()


def test_a_failed_load_keeps_the_old_model(tmp_path: Path):
    old = _model("1")
    desired = DesiredFile(tmp_path / "desired.json")
    slots = _slots(old, {}, desired=desired)
    with pytest.raises(LookupError):
        slots.reload("m:v9")
    assert slots.served is old and not old.batcher.closed.is_set()
    assert desired.read() is None  # nothing for the other workers to follow
    assert asyncio.run(_call(slots, 2.0)) == ("1", 2.0)
    slots.close()


def test_other_workers_follow_reloads_and_shadow_changes(tmp_path: Path):
    desired = DesiredFile(tmp_path / "desired.json")
    models = {"m:v2": _model("2"), "m:v3": _model("3")}
    first = _slots(_model("1"), models, desired=desired)
    second = _slots(_model("1"), models, desired=DesiredFile(desired.path))
    first.reload("m:v2")
    first.set_shadow("m:v3")
    assert desired.read().model_tag == "m:v2" and desired.read().shadow_tag == "m:v3"
    second.apply_desired()
    assert second.served.model.version == "2" and second.shadow.model.version == "3"

    second.follow(interval_s=0.02)
    first.set_shadow(None)
    deadline = time.monotonic() + 5
    while second.shadow is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert second.shadow is None and second.served.model.version == "2"
    first.close()
    second.close()


def test_a_worker_ignores_a_desired_file_older_than_its_server(tmp_path: Path):
    DesiredFile(tmp_path / "d.json").write("m:v2", None)
    assert DesiredFile(tmp_path / "d.json", since=time.time() + 60).read() is None
    assert DesiredFile(tmp_path / "d.json", since=time.time() - 60).read().model_tag == "m:v2"


def test_a_shadow_that_cannot_be_followed_is_reported(tmp_path: Path):
    desired = DesiredFile(tmp_path / "desired.json")
    desired.write("m:v1", "m:v404")
    slots = _slots(_model("1"), {}, desired=desired)
    slots.apply_desired()
    assert slots.shadow is None and "m:v404" in slots.shadow_error
    slots.close()


def test_an_admin_change_waits_until_every_live_worker_runs_it(tmp_path: Path):
    # Another worker: a real process that records m:v1, then follows to m:v2 after 1 s.
    desired = DesiredFile(tmp_path / "desired-1.json")
    script = (
        "import sys, time; from serving.desired import DesiredFile; "
        "d = DesiredFile(sys.argv[1]); d.mark_applied('m:v1', None); time.sleep(1); "
        "d.mark_applied('m:v2', 'm:v3'); time.sleep(60)"
    )
    repo = Path(__file__).resolve().parents[2]
    worker = subprocess.Popen([sys.executable, "-c", script, str(desired.path)], cwd=repo)
    try:
        deadline = time.monotonic() + 30
        while not desired.behind("m:v2", "m:v3") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert desired.behind("m:v2", "m:v3") == [worker.pid]
        assert desired.wait_applied("m:v2", "m:v3", timeout_s=0.2) == [worker.pid]
        assert desired.wait_applied("m:v2", "m:v3", timeout_s=30) == []
    finally:
        worker.kill()
        worker.wait()
    assert desired.behind("m:v9", None) == []  # a worker that is gone is not waited for
    slots = _slots(_model("1"), {"m:v2": _model("2")}, desired=desired)
    slots.follow(interval_s=0.02)  # records what this worker runs
    assert desired.behind("m:v1", None) == [] and desired.behind("m:v2", None) == [os.getpid()]
    slots.reload("m:v2")  # only this worker is alive: answers at once
    assert desired.behind("m:v2", None) == []
    slots.close()
