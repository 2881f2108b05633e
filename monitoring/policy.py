"""Retrain on a realised-performance drop: the window's scores vs the champion's test scores.

The champion's refit stored its per-sample test scores (:mod:`evaluation.stored`); the
window's logged predictions are scored per sample against the outcomes that followed
(:func:`monitoring.performance.evaluate_log`). The two are different users, so the interval
is an *unpaired* bootstrap: users of each side are resampled with replacement (all of a
drawn user's samples together), and the percentile interval of the relative change of the
means is taken. The drop fires only when the whole interval lies below
``-MonitoringConfig.perf_tolerance``: a confident drop beyond the tolerance, never noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from core.config import MonitoringConfig, ProjectConfig
from evaluation.samples import SampleScores
from evaluation.stored import MODEL, read_stored_samples
from modelkit.registry import registry_client
from monitoring.performance import SHADOW, BundleLabelling, PerformanceResult, evaluate_log
from monitoring.segments import segment_scores
from monitoring.workspace import RealisedScore, add_performance

PerfStatus = Literal["drop", "ok", "not_enough_labels", "no_reference"]


@dataclass(frozen=True)
class PerformanceCheck:
    """The realised-performance evidence of one window."""

    status: PerfStatus
    metric: str
    tolerance: float
    window_mean: float = math.nan
    reference_mean: float = math.nan
    change: float = math.nan  # relative: (window - reference) / |reference|
    lower: float = math.nan
    upper: float = math.nan
    n_users: int = 0
    n_reference_users: int = 0
    reason: str = ""
    # realised metric per user segment of the window: {"activity=high": {"mean", "n"}}
    segments: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def fired(self) -> bool:
        """Say whether the drop is confidently beyond the tolerance."""
        return self.status == "drop"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (nan becomes ``None``)."""
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in asdict(self).items()
        }


def _user_sums(scores: SampleScores, metric: str) -> tuple[np.ndarray, np.ndarray]:
    values = scores.values.get(metric, np.full(len(scores), np.nan))
    ok = np.isfinite(values)
    codes = pd.factorize(scores.user_id[ok])[0]
    return np.bincount(codes, weights=values[ok]), np.bincount(codes).astype(np.float64)


def _resampled_means(sums: np.ndarray, counts: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Means of ``n`` user resamples, drawn in blocks of at most ~2M indices (memory)."""
    rng, out = np.random.default_rng(seed), np.empty(n)
    block = max(1, 2_000_000 // sums.size)
    for start in range(0, n, block):
        drawn = rng.integers(0, sums.size, size=(min(block, n - start), sums.size))
        out[start : start + len(drawn)] = sums[drawn].sum(axis=1) / counts[drawn].sum(axis=1)
    return out


def check_performance(
    window: SampleScores | None,
    reference: SampleScores | None,
    config: MonitoringConfig,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
) -> PerformanceCheck:
    """Compare the window's mean ``config.perf_metric`` with the champion's test mean.

    Args:
        window: the window's per-sample scores (served records of the champion).
        reference: the champion's stored test scores (``None``: the run stored none).
        config: metric, tolerance, minimum labelled users and confidence.
        n_resamples: bootstrap resamples per side.
        seed: resampling seed (the same inputs give the same interval).
    """
    metric, tol = config.perf_metric, config.perf_tolerance
    base = PerformanceCheck("no_reference", metric, tol)
    if reference is None or reference.users_with(metric) == 0:
        return PerformanceCheck(**{**asdict(base), "reason": f"champion stored no {metric}"})
    n_users = window.users_with(metric) if window is not None else 0
    if window is None or n_users < config.perf_min_users:
        reason = f"{n_users} labelled users, need {config.perf_min_users} to judge {metric}"
        return PerformanceCheck("not_enough_labels", metric, tol, n_users=n_users, reason=reason)
    (w_sum, w_n), (r_sum, r_n) = _user_sums(window, metric), _user_sums(reference, metric)
    w_mean, r_mean = w_sum.sum() / w_n.sum(), r_sum.sum() / r_n.sum()
    scale = abs(r_mean) or 1.0
    change = (
        _resampled_means(w_sum, w_n, n_resamples, seed)
        - _resampled_means(r_sum, r_n, n_resamples, seed + 1)
    ) / scale
    tail = (1.0 - config.perf_confidence) / 2.0
    lower = float(np.quantile(change, tail, method="lower"))
    upper = float(np.quantile(change, 1.0 - tail, method="higher"))
    drop = upper < -tol
    reason = (
        f"{metric} {w_mean:.4f} on {n_users} users vs champion test {r_mean:.4f}: "
        f"{(w_mean - r_mean) / scale:+.1%} ({config.perf_confidence:.0%} CI "
        f"{lower:+.1%}..{upper:+.1%}), {'a drop beyond' if drop else 'within'} the "
        f"{tol:.0%} tolerance"
    )
    return PerformanceCheck(
        "drop" if drop else "ok",
        metric,
        tol,
        float(w_mean),
        float(r_mean),
        float((w_mean - r_mean) / scale),
        lower,
        upper,
        n_users,
        int(r_sum.size),
        reason,
    )


def champion_test_samples(config: ProjectConfig, version: str) -> SampleScores | None:
    """The per-sample test scores the version's refit stored (``None`` if it stored none)."""
    client = registry_client(config)
    found = client.get_model_version(config.registry.model_name, version)
    return read_stored_samples(client, found.run_id).get(MODEL)


def window_scores(
    records: pd.DataFrame, events: pd.DataFrame, bundle: Path, version: str
) -> tuple[PerformanceResult, SampleScores | None]:
    """Score a window's logged records and keep the served records of ``version``."""
    result = evaluate_log(records, events, BundleLabelling.load(bundle))
    served = {v: s for v, s in result.samples.items() if not v.endswith(SHADOW)}
    return result, served.get(version)


def judge_window(
    config: ProjectConfig,
    start: datetime,
    end: datetime,
    events: Callable[[], pd.DataFrame],
    champion: str,
    bundle: Path,
) -> PerformanceCheck:
    """Realised performance of the champion's records of ``[start, end)``, judged.

    ``events`` loads the event log; it is called only when the champion stored test scores
    and the window's records can be labelled (they carry ``user_hash`` and ``cutoff``).
    """
    from core.predlog import read_prediction_log

    mon = config.monitoring
    reference = champion_test_samples(config, champion)
    if reference is None:
        return check_performance(None, None, mon)
    log_dir = config.paths.resolved().prediction_log
    records = read_prediction_log(log_dir, start, end) if log_dir.is_dir() else pd.DataFrame()
    missing = [c for c in ("user_hash", "cutoff") if c not in records.columns]
    if records.empty or missing:
        why = f"the window's records lack {missing}" if missing else "no record in the window"
        return PerformanceCheck(
            "not_enough_labels", mon.perf_metric, mon.perf_tolerance, reason=why
        )
    window = window_scores(records, events(), bundle, champion)[1]
    check = check_performance(window, reference, mon)
    profile = Path(bundle) / "reference.parquet"
    if window is None or not profile.is_file():
        return check
    by_segment = segment_scores(records, window, pd.read_parquet(profile), mon, mon.perf_metric)
    if not by_segment:
        return check
    worst = min(by_segment, key=lambda s: by_segment[s]["mean"])
    reason = check.reason + (
        f"; lowest segment {worst}: {by_segment[worst]['mean']:.4f} "
        f"on {int(by_segment[worst]['n'])} samples"
    )
    return replace(check, segments=by_segment, reason=reason)


def retrain_evidence(drift_fired: bool, performance: PerformanceCheck | None) -> list[str]:
    """Which evidence asks for a retrain: ``drift``, ``performance``, both or none."""
    return [
        name
        for name, fired in (
            ("drift", drift_fired),
            ("performance", bool(performance and performance.fired)),
        )
        if fired
    ]


def log_decision(
    config: ProjectConfig,
    status: str,
    evidence: list[str],
    performance: PerformanceCheck | None,
    params: dict[str, str],
) -> str:
    """Log one ``monitor run`` decision to the MLflow experiment ``monitoring``.

    Tags ``kind=decision``, ``status`` and ``evidence`` (``drift,performance``, or ``none``);
    the performance check's figures as ``perf_*`` metrics.

    Returns:
        The MLflow run id.
    """
    import mlflow

    from monitoring.report import use_monitoring_experiment

    paths = config.paths.resolved()
    use_monitoring_experiment(paths.tracking_uri, paths.artifact_root)
    with mlflow.start_run(run_name="decision") as run:
        mlflow.set_tags(
            {"kind": "decision", "status": status, "evidence": ",".join(evidence) or "none"}
        )
        mlflow.log_params(params)
        if performance is not None:
            mlflow.set_tag("performance.status", performance.status)
            mlflow.set_tag("performance.reason", performance.reason[:5000])
            figures = {
                "perf_window_mean": performance.window_mean,
                "perf_reference_mean": performance.reference_mean,
                "perf_change": performance.change,
                "perf_change_lower": performance.lower,
                "perf_change_upper": performance.upper,
                "perf_n_users": float(performance.n_users),
            }
            mlflow.log_metrics({k: v for k, v in figures.items() if math.isfinite(v)})
        return run.info.run_id


def realised_scores(
    config: ProjectConfig, result: PerformanceResult, metric: str
) -> list[RealisedScore]:
    """Per served version of a scored log, the realised ``metric`` and its stored test mean."""
    scores = []
    for version, samples in sorted(result.samples.items()):
        if version.endswith(SHADOW) or metric not in result.table.columns:
            continue
        try:
            test = champion_test_samples(config, version)
        except Exception:  # noqa: BLE001 - an unknown or pre-registry version has no reference
            test = None
        scores.append(
            RealisedScore(
                version,
                float(result.table.loc[version, metric]),
                test.mean(metric) if test is not None else None,
                samples.users_with(metric),
            )
        )
    return scores


def record_performance(
    config: ProjectConfig,
    scores: list[RealisedScore],
    metric: str,
    context: dict[str, Any],
    at: datetime,
) -> str | None:
    """Put a window's realised performance on the Evidently dashboard (its run id, or None)."""
    mon = config.monitoring
    return add_performance(
        config.paths.resolved().evidently_workspace,
        scores,
        metric,
        context,
        at,
        method=mon.stattest,
        threshold=mon.stattest_threshold,
    )
