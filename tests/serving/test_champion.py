"""The champion check: answers, staleness, the gauge, the background thread, no registry."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from core.config import ProjectConfig
from serving.champion import ChampionChecker, registry_lookup
from serving.schemas import ModelId

V7 = ModelId(name="m", version="7", bento_tag="m:aaa")
V8 = ModelId(name="m", version="8", bento_tag="m:bbb")


def _gauge(version: str) -> float | None:
    return REGISTRY.get_sample_value("interest_model_is_champion", {"model_version": version})


class Registry:
    """A fake registry: the champion version, or an error to raise; counts calls."""

    def __init__(self, champion: str | None = "7") -> None:
        self.champion = champion
        self.error: Exception | None = None
        self.calls = 0

    def __call__(self, name: str) -> str | None:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.champion


def test_the_answer_follows_the_registry_and_sets_the_gauge():
    registry = Registry("7")
    checker = ChampionChecker(registry, interval_s=30)
    checker.watch(V7)
    assert checker.cached(V7).is_champion is None  # never asked yet
    status = checker.check(V7)
    assert status.is_champion is True and status.champion_version == "7"
    assert status.registry_error is None and _gauge("7") == 1
    registry.champion = "9"
    assert checker.check(V7).is_champion is False and _gauge("7") == 0
    registry.error = ConnectionError("registry down")
    status = checker.check(V7)
    assert status.is_champion is None and "registry down" in status.registry_error
    assert _gauge("7") == -1 and status.checked_at is not None


def test_current_asks_again_only_when_the_cache_is_stale():
    registry = Registry("7")
    checker = ChampionChecker(registry, interval_s=0.2)
    checker.watch(V7)
    checker.current(V7)
    checker.current(V7)
    assert registry.calls == 1
    time.sleep(0.25)
    assert checker.current(V7).is_champion is True
    assert registry.calls == 2


def test_a_new_served_version_marks_the_old_one_unknown():
    checker = ChampionChecker(Registry("8"), interval_s=30)
    checker.watch(V7)
    checker.check(V7)
    checker.check(V8)  # checked before the swap: the gauge waits for watch()
    assert _gauge("7") == 0
    checker.watch(V8)
    assert _gauge("7") == -1 and _gauge("8") == 1
    assert checker.cached(V8).is_champion is True


def test_a_disabled_check_never_asks():
    registry = Registry("7")
    checker = ChampionChecker(registry, interval_s=0)
    checker.watch(V7)
    checker.start()
    assert checker.wait_first(0.1)
    status = checker.current(V7)
    assert status.is_champion is None and "disabled" in status.registry_error
    assert registry.calls == 0


def test_the_thread_checks_at_start_and_after_a_watch():
    registry = Registry("7")
    checker = ChampionChecker(registry, interval_s=30)
    checker.watch(V7)
    checker.start()
    assert checker.wait_first(5)
    assert checker.cached(V7).is_champion is True
    checker.watch(V8)  # the thread checks the new model now, not in 30 s
    deadline = time.monotonic() + 5
    while checker.cached(V8).checked_at is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert checker.cached(V8).is_champion is False
    checker.close()


def test_without_a_tracking_store_the_reason_names_it(tmp_path: Path):
    config = ProjectConfig.model_validate({"paths": {"state_dir": str(tmp_path)}})
    with pytest.raises(LookupError, match="no registry"):
        registry_lookup(config)("interest-evolution")
    assert not (tmp_path / "mlflow.db").exists()  # not created by asking
