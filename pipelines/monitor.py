"""The scheduled monitoring pass: lock -> ledger -> drift -> cooldown -> retrain -> gate.

Monitoring decides (:mod:`monitoring.check`, :mod:`monitoring.loop`), training trains
(:func:`pipelines.train.train` with a warm start, in process), the promotion gate is the
training job's last step, and a promotion can be packaged at once
(:func:`pipelines.deploy.package_version`). A failure at any step leaves the champion alias
untouched and the window unhandled, so the next run retries it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from core.config import ProjectConfig
from monitoring.check import WindowCheck, check_window
from monitoring.loop import (
    LEDGER_FILE,
    LOCK_FILE,
    Ledger,
    cooldown_left,
    monitoring_dir,
    run_lock,
    window_key,
)
from monitoring.reference import champion_reference
from pipelines.train import TrainRequest, TrainResult, train

#: Exit status of ``interest monitor run`` per outcome (documented in the README).
EXIT_CODES = {
    "ok": 0,
    "promoted": 3,
    "not_enough_data": 4,
    "refused": 5,
    "already_handled": 6,
    "cooldown": 6,
    "lock_held": 7,
    "no_data": 8,
}


@dataclass(frozen=True)
class RetrainRequest:
    """What to retrain on when drift is found, and with which budget."""

    data: Path
    format: str
    trials: int
    epochs: int | None = None
    timeout_s: float | None = None  # stop starting trials after this long


@dataclass
class MonitorOutcome:
    """What one scheduled pass did; ``status`` keys :data:`EXIT_CODES`."""

    status: str
    key: str
    message: str
    champion: str | None = None
    check: WindowCheck | None = None
    retrain: TrainResult | None = None
    study_name: str | None = None


def retrain_config(
    config: ProjectConfig, request: RetrainRequest, study_name: str
) -> ProjectConfig:
    """The project config with the retraining budget, log format and study name applied."""
    train = {"trials": request.trials, "study_name": study_name}
    if request.epochs is not None:
        train["epochs"] = request.epochs
    if request.timeout_s is not None:
        train["timeout_s"] = request.timeout_s
    return config.model_copy(
        update={
            "train": config.train.model_copy(update=train),
            "data": config.data.model_copy(update={"format": request.format}),
        },
        deep=True,
    )


def retrain(config: ProjectConfig, request: RetrainRequest, study_name: str) -> TrainResult:
    """Warm-start retraining on the recent log: a small study, refit, register, gate.

    The test cutoff defaults to the last event minus the horizon, so the gate scores
    champion and challenger on the most recent labelled window.
    """
    job = TrainRequest(data=request.data, warm_start=True, show_progress=False)
    return train(retrain_config(config, request, study_name), job)


#: A retraining step: ``(config, request, study_name) -> TrainResult`` (tests pass small ones).
Retrainer = Callable[[ProjectConfig, RetrainRequest, str], TrainResult]


def run_monitor(
    config: ProjectConfig,
    start: datetime,
    end: datetime,
    now: datetime,
    request: RetrainRequest | None,
    retrainer: Retrainer | None = None,
) -> MonitorOutcome:
    """One scheduled pass over the window ``[start, end)``.

    Args:
        config: project configuration (``monitoring`` thresholds and cooldown).
        start: window start (inclusive) of the prediction log.
        end: window end (exclusive).
        now: the run's clock (cooldown, study name, report stamp).
        request: what to retrain on, or ``None`` when no event log is configured.
        retrainer: the retraining step (default :func:`retrain`, the training pipeline).

    Raises:
        monitoring.loop.LockHeldError: another run holds the lock (nothing was done).
        Exception: whatever retraining raised; the window stays unhandled, no alias moved.
    """
    stamp = pd.Timestamp(now).strftime("%Y%m%dT%H%M%SZ")
    folder = monitoring_dir(config)
    with run_lock(folder / LOCK_FILE):
        ledger = Ledger.load(folder / LEDGER_FILE)
        _, champion = champion_reference(config)  # raises, naming the fix, when none
        key = window_key(start, end, champion)
        if ledger.is_handled(key):
            done = ledger.windows[key].get("status")
            return MonitorOutcome("already_handled", key, f"window {key} already handled: {done}")
        check = check_window(config, None, start, end, stamp=stamp, trigger="monitor run")
        drift = check.drift
        out = MonitorOutcome(drift.status, key, drift.reason, champion, check)
        entry = {"status": drift.status, "checked_at": stamp, "report": str(check.report.json)}
        if drift.status == "not_enough_data":
            return out  # late log lines may still arrive: check the window again next time
        if not drift.should_retrain:
            ledger.record(key, entry, retrained_at=None)
            return out
        left = cooldown_left(ledger, config.monitoring.cooldown, now)
        if left is not None:
            out.status, out.message = "cooldown", f"drift, but the retrain cooldown has {left} left"
            return out
        if request is None:
            out.status = "no_data"
            out.message = "drift, but no event log to retrain on: pass --data and --format"
            return out
        out.study_name = f"monitor-{stamp}-v{champion}"
        out.retrain = (retrainer or retrain)(config, request, out.study_name)
        reasons = out.retrain.decision.reasons if out.retrain.decision else []
        out.status = "promoted" if out.retrain.promoted else "refused"
        out.message = "; ".join(reasons)
        entry.update(
            status=out.status, study=out.study_name, version=out.retrain.version, reasons=reasons
        )
        ledger.record(key, entry, retrained_at=now)
        return out
