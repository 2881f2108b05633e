"""Does the service serve the champion? Asked of the registry off the request path.

A stored model's ``alias`` label was true when it was imported and goes stale when the
registry moves ``champion``. :class:`ChampionChecker` asks the registry instead: a daemon
thread every ``serving.champion_check_s`` seconds, a reload before it swaps the new model
in, and ``GET /model`` when the cached answer is older than that. Predictions only read the
cache (their ``model.alias`` is ``"champion"`` while the last answer said so).

Prometheus gauge ``interest_model_is_champion{model_version}``, set on every check:
``1`` the served version holds ``champion``, ``0`` it does not (another version or none
does), ``-1`` unknown (the registry could not be read, or this version is no longer served
here: BentoML keeps metrics in Prometheus' multiprocess files, which cannot drop a series).
No series while the check is disabled (``champion_check_s = 0``). Several workers report the
largest value per version.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import bentoml

from core.config import ProjectConfig
from serving.schemas import ModelId

CHAMPION = "champion"  # the alias (modelkit.registry.CHAMPION; importing it needs MLflow)
IS_CHAMPION = bentoml.metrics.Gauge(
    name="interest_model_is_champion",
    documentation="1: the served version holds the registry alias champion; 0: not; -1: unknown",
    labelnames=["model_version"],
    multiprocess_mode="livemax",
)
#: ``model name -> version holding champion (None: no champion)``; raises when unreadable.
Lookup = Callable[[str], str | None]


@dataclass(frozen=True)
class ChampionStatus:
    """The registry's answer for one served version (``is_champion`` None: unknown)."""

    model: ModelId
    is_champion: bool | None
    champion_version: str | None
    registry_error: str | None
    checked_at: datetime | None


def registry_lookup(config: ProjectConfig) -> Lookup:
    """A :data:`Lookup` on the configured MLflow registry (``modelkit.registry``)."""

    def lookup(model_name: str) -> str | None:
        uri = config.paths.resolved().tracking_uri
        # Checked before importing MLflow (seconds of CPU), and MLflow would create the file.
        if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
            raise LookupError(f"no registry: tracking store {uri} does not exist")
        try:  # lazily: the bento image does not ship MLflow
            from modelkit.registry import model_aliases, registry_client
        except ImportError as exc:
            raise LookupError(f"MLflow is not installed in this environment ({exc})") from exc
        aliases = model_aliases(registry_client(config), model_name)
        if aliases is None:
            raise LookupError(f"model {model_name!r} is not registered at {uri}")
        return aliases.get(CHAMPION)

    return lookup


class ChampionChecker:
    """Caches whether the served model holds ``champion``, refreshed in the background.

    Args:
        lookup: reads the champion version of a model name (see :func:`registry_lookup`).
        interval_s: seconds between checks; 0 disables checking.
    """

    def __init__(self, lookup: Lookup, interval_s: float) -> None:
        self.lookup = lookup
        self.interval_s = interval_s
        self._model: ModelId | None = None  # the served model, which the thread checks
        self._statuses: dict[str, ChampionStatus] = {}  # by _key: the served one, a new one
        self._lock = threading.Lock()  # _model, _statuses and the gauge
        self._checking = threading.Lock()  # one registry call at a time
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        """Whether checking is on (``interval_s > 0``)."""
        return self.interval_s > 0

    def watch(self, model: ModelId) -> None:
        """Make ``model`` the served one: its cached answer (if any) goes to the gauge at once,
        and the thread checks it next."""
        with self._lock:
            previous, self._model = self._model, model
            if previous == model:
                return
            if self.enabled and previous is not None and previous.version != model.version:
                IS_CHAMPION.labels(model_version=previous.version).set(-1)
            self._statuses = {k: v for k, v in self._statuses.items() if k == _key(model)}
            if (status := self._statuses.get(_key(model))) is not None:
                _set_gauge(status)
        self._wake.set()

    def start(self) -> None:
        """Start the background thread (nothing when checking is disabled)."""
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="champion-check", daemon=True)
            self._thread.start()

    def wait_first(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the thread's first check; say whether it finished."""
        return not self.enabled or self._first.wait(timeout_s)

    def cached(self, model: ModelId) -> ChampionStatus:
        """The last answer for ``model`` (unknown when none), never asking the registry."""
        status = self._statuses.get(_key(model))
        if status is not None:
            return status
        reason = "not checked yet" if self.enabled else "champion check disabled"
        return ChampionStatus(model, None, None, reason, None)

    def check(self, model: ModelId) -> ChampionStatus:
        """Ask the registry about ``model`` now (blocking) and cache the answer."""
        if not self.enabled:
            return self.cached(model)
        with self._checking:
            return self._check(model)

    def current(self, model: ModelId) -> ChampionStatus:
        """The answer for ``model``, asking the registry first when the cache is stale."""
        status = self.cached(model)
        if not self.enabled:
            return status
        age = None if status.checked_at is None else datetime.now(UTC) - status.checked_at
        if age is not None and age.total_seconds() <= self.interval_s:
            return status
        if not self._checking.acquire(blocking=False):
            return status  # a check is running: answer from the cache rather than wait
        try:
            return self._check(model)
        finally:
            self._checking.release()

    def close(self) -> None:
        """Stop the background thread."""
        self._stop.set()
        self._wake.set()

    def _check(self, model: ModelId) -> ChampionStatus:
        try:
            champion = self.lookup(model.name)
            status = ChampionStatus(model, champion == model.version, champion, None, _now())
        except Exception as exc:  # noqa: BLE001 - any registry failure means "unknown"
            status = ChampionStatus(model, None, None, f"{type(exc).__name__}: {exc}", _now())
        with self._lock:
            self._statuses[_key(model)] = status
            if model == self._model:
                _set_gauge(status)
        return status

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before the check: a watch() during it wakes the next one
            if (model := self._model) is not None:
                self.check(model)
            self._first.set()
            self._wake.wait(self.interval_s)


def _key(model: ModelId) -> str:
    return f"{model.bento_tag}|{model.name}|{model.version}"


def _set_gauge(status: ChampionStatus) -> None:
    value = -1 if status.is_champion is None else int(status.is_champion)
    IS_CHAMPION.labels(model_version=status.model.version).set(value)


def _now() -> datetime:
    return datetime.now(UTC)
