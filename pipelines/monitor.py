"""The scheduled monitoring pass: lock -> ledger -> evidence -> cooldown -> retrain -> gate.

Two kinds of evidence ask for a retrain: interest drift (:mod:`monitoring.drift`, per column
and per segment) and a realised-performance drop (:mod:`monitoring.policy`: the window's
scores against the champion's own test scores, judged with a bootstrap interval; only with
an event log that holds the outcomes). Every decision names the evidence that fired in the
ledger, the outcome's message and an MLflow ``decision`` run.

Monitoring decides (:mod:`monitoring.check`, :mod:`monitoring.loop`), training trains
(:func:`pipelines.train.train` with a warm start, in process), the promotion gate is the
training job's last step, and a promotion can be packaged at once
(:func:`pipelines.deploy.package_version`). A failure at any step leaves the champion alias
untouched and the window unhandled, so the next run retries it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

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
from monitoring.policy import (
    PerformanceCheck,
    judge_window,
    log_decision,
    record_performance,
    retrain_evidence,
)
from monitoring.reference import champion_bundle, champion_reference
from monitoring.workspace import RealisedScore
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
    progress: bool = False  # draw the study's and the refit's progress (a terminal only)


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
    performance: PerformanceCheck | None = None
    evidence: list[str] = field(default_factory=list)  # "drift", "performance"
    mlflow_run: str | None = None  # the decision's run in the ``monitoring`` experiment


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
    job = TrainRequest(data=request.data, warm_start=True, show_progress=request.progress)
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
        if drift.status == "not_enough_data":
            return out  # late log lines may still arrive: check the window again next time
        out.performance = _judge(config, start, end, request, champion)
        out.evidence = retrain_evidence(drift.should_retrain, out.performance)
        out.message = _evidence_message(drift.reason, out.performance, out.evidence)
        entry = {
            "status": drift.status,
            "checked_at": stamp,
            "report": str(check.report.json),
            "evidence": out.evidence,
            "drifted_segments": drift.drifted_segments,
            "performance": out.performance.to_dict() if out.performance else None,
        }
        _decided(out, config, start, end, retrainer, request, ledger, entry, now, stamp)
        return out


def _judge(
    config: ProjectConfig,
    start: datetime,
    end: datetime,
    request: RetrainRequest | None,
    champion: str,
) -> PerformanceCheck | None:
    """The realised-performance check, when an event log with outcomes is given."""
    if request is None or not Path(request.data).is_file():
        return None
    from eventlogs.loaders import load_events

    data = config.data.model_copy(update={"format": request.format})
    check = judge_window(
        config,
        start,
        end,
        lambda: load_events(request.data, data).events,
        champion,
        champion_bundle(config)[0],
    )
    if check.n_users:  # the dashboard's realised-performance panel
        score = RealisedScore(champion, check.window_mean, check.reference_mean, check.n_users)
        context = {
            "since": pd.Timestamp(start).isoformat(),
            "until": pd.Timestamp(end).isoformat(),
            "trigger": "monitor run",
        }
        record_performance(config, [score], check.metric, context, end)
    return check


def _evidence_message(reason: str, perf: PerformanceCheck | None, evidence: list[str]) -> str:
    said = f"retrain evidence: {' + '.join(evidence) or 'none'}; drift: {reason}"
    return said + (f"; performance ({perf.status}): {perf.reason}" if perf else "")


def _decided(
    out: MonitorOutcome,
    config: ProjectConfig,
    start: datetime,
    end: datetime,
    retrainer: Retrainer | None,
    request: RetrainRequest | None,
    ledger: Ledger,
    entry: dict[str, Any],
    now: datetime,
    stamp: str,
) -> None:
    """Retrain when evidence fired (cooldown and data allowing); record and log the decision."""
    retrained = None
    if not out.evidence:
        out.status = "ok"
        ledger.record(out.key, {**entry, "status": "ok"}, retrained_at=None)
    elif (left := cooldown_left(ledger, config.monitoring.cooldown, now)) is not None:
        out.status = "cooldown"
        out.message = f"{' + '.join(out.evidence)}, but the retrain cooldown has {left} left"
    elif request is None:
        out.status = "no_data"
        out.message = (
            f"{' + '.join(out.evidence)}, but no event log to retrain on: pass --data and --format"
        )
    else:
        out.study_name = f"monitor-{stamp}-v{out.champion}"
        out.retrain = retrained = (retrainer or retrain)(config, request, out.study_name)
        reasons = retrained.decision.reasons if retrained.decision else []
        out.status = "promoted" if retrained.promoted else "refused"
        out.message = f"retrained on {' + '.join(out.evidence)}: " + "; ".join(reasons)
        entry.update(status=out.status, study=out.study_name, version=retrained.version)
        ledger.record(out.key, {**entry, "reasons": reasons}, retrained_at=now)
    params = {
        "since": pd.Timestamp(start).isoformat(),
        "until": pd.Timestamp(end).isoformat(),
        "champion": str(out.champion),
        "study": str(out.study_name),
    }
    out.mlflow_run = log_decision(config, out.status, out.evidence, out.performance, params)
