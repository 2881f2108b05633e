"""Realised performance of past predictions, once the ground truth (later events) arrives.

Each prediction-log record is joined, by ``user_hash`` (``core.hashing.hash_user`` of the
event log's user ids), with that user's events in ``[cutoff, cutoff + horizon)``: the same
labels training uses (``core/labels.py``). A record is scored only when the event log
covers its whole horizon. Figures, per model version and overall:
    ``recall_at_k``     hits of the served top-K among the horizon's categories / min(truth, K),
                        over records whose user did something in the horizon
    ``buy_auc``         AUC of ``p_buy`` for "bought anything in the horizon"
    ``churn_auc``       AUC of ``p_churn`` for "no event in the horizon"
    ``trajectory_mae``  mean |predicted - realised| share of the logged trajectory buckets,
                        over future periods in which the user had events
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.config import FeatureConfig
from core.hashing import hash_user
from core.periods import duration_ns, period_ns
from evaluation.metrics import auc

ALL = "all"


@dataclass
class PerformanceResult:
    """Scores per model version (plus an ``all`` row) and how many records were scored."""

    table: pd.DataFrame  # index: model_version; columns: n_labelled, recall_at_k, ...
    k: int
    n_records: int
    n_labelled: int
    labels_until: pd.Timestamp | None

    def overall(self) -> dict[str, float]:
        """The ``all`` row as a dict."""
        return {k: float(v) for k, v in self.table.loc[ALL].items()}


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")


def join_outcomes(
    predictions: pd.DataFrame, events: pd.DataFrame, config: FeatureConfig
) -> pd.DataFrame:
    """Attach the realised horizon to every record whose horizon the events cover.

    Returns:
        One row per labelled record: ``model_version``, ``p_buy``, ``p_churn``,
        ``top_categories``, ``trajectory``, ``cutoff``, plus ``truth`` (set of categories),
        ``bought``, ``churned`` and ``events`` (the user's (offset ns, category) pairs).

    Raises:
        ValueError: if the log lacks ``user_hash`` or ``cutoff`` (names the columns).
    """
    missing = [c for c in ("user_hash", "cutoff", "p_buy", "p_churn") if c not in predictions]
    if missing:
        raise ValueError(f"prediction log lacks columns {missing} needed to score it")
    preds = predictions.copy()
    preds["cutoff"] = _utc(preds["cutoff"])
    preds = preds[preds["user_hash"].notna() & preds["cutoff"].notna()].reset_index(drop=True)
    if events.empty or preds.empty:
        return preds.iloc[:0]
    horizon = pd.Timedelta(duration_ns(config.horizon, "horizon"), unit="ns")
    last = events["timestamp"].max()
    preds = preds[preds["cutoff"] + horizon <= last].reset_index(drop=True)
    users = pd.Series(events["user_id"].unique())
    hashes = dict(zip(users, users.map(hash_user), strict=True))
    ev = events.loc[events["user_id"].map(hashes).isin(set(preds["user_hash"]))]
    ev = ev.assign(user_hash=ev["user_id"].map(hashes))
    ev = ev[["user_hash", "timestamp", "category_id", "behavior"]]
    span = max(horizon, pd.Timedelta(period_ns(config.period) * config.future_periods, unit="ns"))
    pairs = preds[["user_hash", "cutoff"]].reset_index(names="row").merge(ev, on="user_hash")
    pairs = pairs[
        (pairs["timestamp"] >= pairs["cutoff"]) & (pairs["timestamp"] < pairs["cutoff"] + span)
    ]
    pairs = pairs.assign(offset=(pairs["timestamp"] - pairs["cutoff"]).dt.total_seconds() * 1e9)
    in_horizon = pairs[pairs["offset"] < horizon.value]
    truth = in_horizon.groupby("row")["category_id"].agg(set)
    bought = in_horizon[in_horizon["behavior"] == "buy"].groupby("row").size()
    preds["truth"] = [truth.get(i, set()) for i in preds.index]
    preds["bought"] = [i in bought.index for i in preds.index]
    preds["churned"] = [not t for t in preds["truth"]]
    per_row = {
        i: list(zip(g["offset"], g["category_id"], strict=True)) for i, g in pairs.groupby("row")
    }
    preds["events"] = [per_row.get(i, []) for i in preds.index]
    return preds


def _recall(top: Any, truth: set[str], k: int) -> float | None:
    if not truth or not isinstance(top, list | np.ndarray) or len(top) == 0:
        return None
    return len(set(list(top)[:k]) & truth) / min(len(truth), k)


def _trajectory_error(trajectory: Any, events: list, period: int, periods: int) -> float | None:
    if not isinstance(trajectory, list) or not events:
        return None
    errors = []
    for p, shares in enumerate(trajectory[:periods]):
        cats = [c for offset, c in events if p * period <= offset < (p + 1) * period]
        if not cats or not isinstance(shares, dict):
            continue
        counts = pd.Series(cats).value_counts(normalize=True)
        for bucket, share in shares.items():
            if bucket == "other" or bucket.startswith("<"):
                continue  # "other" is the rest of the vocabulary, unknown from the log alone
            errors.append(abs(float(share) - float(counts.get(bucket, 0.0))))
    return float(np.mean(errors)) if errors else None


def _nanmean(values: list[float | None]) -> float:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else math.nan


def score_outcomes(joined: pd.DataFrame, config: FeatureConfig, k: int) -> pd.DataFrame:
    """Score labelled records per ``model_version`` and overall (row ``all``)."""
    period = period_ns(config.period)
    frame = joined.assign(model_version=joined.get("model_version", "unknown"))
    frame["model_version"] = frame["model_version"].fillna("unknown").astype(str)
    groups = [(str(v), g) for v, g in frame.groupby("model_version")] + [(ALL, frame)]
    rows = {}
    for version, g in groups:
        tops = g["top_categories"] if "top_categories" in g else pd.Series([None] * len(g))
        trajs = g["trajectory"] if "trajectory" in g else pd.Series([None] * len(g))
        rows[version] = {
            "n_labelled": float(len(g)),
            "recall_at_k": _nanmean(
                [_recall(t, s, k) for t, s in zip(tops, g["truth"], strict=True)]
            ),
            "buy_auc": auc(g["bought"].to_numpy(float), g["p_buy"].to_numpy(float)),
            "churn_auc": auc(g["churned"].to_numpy(float), g["p_churn"].to_numpy(float)),
            "trajectory_mae": _nanmean(
                [
                    _trajectory_error(t, e, period, config.future_periods)
                    for t, e in zip(trajs, g["events"], strict=True)
                ]
            ),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model_version")


def evaluate_log(
    predictions: pd.DataFrame, events: pd.DataFrame, config: FeatureConfig, k: int
) -> PerformanceResult:
    """Join the log with the events and score it (see the module docstring)."""
    joined = join_outcomes(predictions, events, config)
    table = score_outcomes(joined, config, k) if len(joined) else pd.DataFrame()
    last = events["timestamp"].max() if len(events) else None
    return PerformanceResult(table, k, len(predictions), len(joined), last)


def log_performance(
    result: PerformanceResult, tracking_uri: str, artifact_root: str, params: dict[str, str]
) -> str:
    """Log overall and per-version figures to the MLflow experiment ``monitoring``.

    Returns:
        The MLflow run id.
    """
    import mlflow

    from monitoring.report import use_monitoring_experiment

    use_monitoring_experiment(tracking_uri, artifact_root)
    with mlflow.start_run(run_name="performance") as run:
        mlflow.set_tags({"kind": "performance"})
        mlflow.log_params({"k": result.k, "n_records": result.n_records, **params})
        metrics = {"n_labelled": float(result.n_labelled)}
        for version, row in result.table.iterrows():
            prefix = "perf_" if version == ALL else f"perf_v{version}_"
            metrics.update({f"{prefix}{name}": float(v) for name, v in row.items()})
        mlflow.log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)})
        return run.info.run_id
