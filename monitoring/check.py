"""One drift check of a prediction-log window: per producing version, saved and recorded.

Every record of the prediction log names the registry version that produced it. A window
that holds traffic of several versions (a promotion happened inside it) is split by version
and each part is compared with *that version's* training reference, never with another
model's: the predictions of v1 checked against v2's profile would drift by construction.
Shadow records duplicate served traffic and are left out.

``interest monitor drift`` (by hand) and the scheduled pass (:mod:`pipelines.monitor`) both
call :func:`check_window`, so a window checked either way yields the same decision, the same
report files, the same Evidently snapshots and the same MLflow ``monitoring`` runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from core.config import ProjectConfig
from core.predlog import read_prediction_log
from modelkit.registry import registered_champion
from monitoring.drift import DriftResult, check_drift, monitored_columns
from monitoring.reference import (
    REFERENCE_FILE,
    champion_reference,
    load_reference,
    version_reference,
)
from monitoring.report import ReportFiles, log_to_mlflow, save_report
from monitoring.snapshot import build_snapshot
from monitoring.stats import cached_stats
from monitoring.workspace import add_snapshot

UNKNOWN = "unknown"  # records written before versions were logged
ALL = "all"  # every served record, checked against one given reference


@dataclass
class VersionCheck:
    """The drift of one producing version's records against its own reference."""

    version: str
    reference: Path
    drift: DriftResult
    report: ReportFiles
    evidently_run: str | None = None
    mlflow_run: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "version": self.version,
            "reference": str(self.reference),
            "status": self.drift.status,
            "n_current": self.drift.n_current,
            "share_drifted": self.drift.share_drifted,
            "drifted_columns": [c.column for c in self.drift.drifted_columns],
            "reason": self.drift.reason,
            "report_json": str(self.report.json),
        }


@dataclass
class WindowCheck:
    """The window's decision (taken on one version's records) and every version's check."""

    decided_by: VersionCheck
    context: dict[str, Any]  # window, log folder, skipped lines, versions and row counts
    versions: list[VersionCheck] = field(default_factory=list)

    @property
    def drift(self) -> DriftResult:
        """The deciding version's drift result."""
        return self.decided_by.drift

    @property
    def report(self) -> ReportFiles:
        """The deciding version's report files."""
        return self.decided_by.report

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (``interest monitor drift --json``)."""
        return {
            **self.drift.to_dict(),
            **self.context,
            "decided_by": self.decided_by.version,
            "versions": [v.to_dict() for v in self.versions],
            "report_json": str(self.report.json),
            "report_html": str(self.report.html) if self.report.html else None,
            "evidently_run": self.decided_by.evidently_run,
            "mlflow_run": self.decided_by.mlflow_run,
        }


def split_by_version(current: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Served (non-shadow) records of a window, grouped by the version that produced them."""
    if current.empty:
        return {}
    if "shadow" in current.columns:
        current = current[~current["shadow"].fillna(False).astype(bool)]
    versions = (
        current["model_version"].astype("string").fillna(UNKNOWN)
        if "model_version" in current.columns
        else pd.Series(UNKNOWN, index=current.index)
    )
    return {str(v): part for v, part in current.groupby(versions.to_numpy(), sort=True)}


def _reference_of(config: ProjectConfig, version: str, given: Path | None) -> Path:
    if given is not None:
        return given
    if version == UNKNOWN:
        return champion_reference(config)[0]
    return version_reference(config, version)


def _reference_file(path: Path) -> Path:
    """The reference parquet file of a bundle folder or file (where its stats are cached)."""
    path = Path(path)
    if path.is_file():
        return path
    return next(p for p in (path / REFERENCE_FILE, path / "bundle" / REFERENCE_FILE) if p.is_file())


def _deciding(parts: dict[str, pd.DataFrame], champion: str | None, min_rows: int) -> str:
    """The champion's records decide when there are enough of them, else the largest part."""
    if champion in parts and len(parts[champion]) >= min_rows:
        return champion
    return max(parts, key=lambda v: (len(parts[v]), v == champion))


def check_window(
    config: ProjectConfig,
    reference: Path | None,
    start: datetime,
    end: datetime,
    *,
    stamp: str,
    trigger: str,
) -> WindowCheck:
    """Drift of the logged window ``[start, end)``, each version against its own reference.

    Args:
        config: project configuration (``monitoring`` thresholds, ``paths``).
        reference: one reference (a bundle folder or ``reference.parquet``) for all served
            records as one population, or ``None`` to check each producing version's
            records against that version's registered reference.
        start: window start (inclusive, on ``logged_at``).
        end: window end (exclusive).
        stamp: UTC stamp naming the report files.
        trigger: who asked (``monitor drift``, ``monitor run``), logged as an MLflow param.

    Raises:
        OSError, ValueError, LookupError: unreadable reference or log, unknown version.
    """
    paths = config.paths.resolved()
    log_dir = paths.prediction_log
    current = read_prediction_log(log_dir, start, end) if log_dir.is_dir() else pd.DataFrame()
    champion = registered_champion(config) if reference is None else None
    champion_version = champion[0] if champion else None
    parts = split_by_version(current)
    versions = {v: len(p) for v, p in parts.items()}
    if reference is not None and parts:  # one given reference: one population
        parts = {ALL: pd.concat(list(parts.values()))}
    if not parts:  # nothing logged: the champion's reference, and "not enough data"
        parts = {champion_version or UNKNOWN: pd.DataFrame()}
    decider = _deciding(parts, champion_version, config.monitoring.min_rows)
    context = {
        "since": pd.Timestamp(start).isoformat(),
        "until": pd.Timestamp(end).isoformat(),
        "prediction_log": str(log_dir),
        "skipped_lines": int(current.attrs.get("skipped_lines", 0)),
        "champion": champion_version,
        "rows_per_version": versions,
    }
    checks = []
    for version, part in parts.items():
        ref_path = _reference_of(config, version, reference)
        ref = load_reference(ref_path)
        current_part = part if not part.empty else ref.iloc[:0]
        # The decision first, on the reference's cached binned statistics ...
        stats = cached_stats(
            _reference_file(ref_path),
            ref,
            *monitored_columns(ref, current_part),
            segments=config.monitoring,
        )
        result = check_drift(ref, current_part, config.monitoring, stats=stats)
        tag = stamp if len(parts) == 1 else f"{stamp}-v{version}"
        own = {**context, "model_version": version, "reference": str(ref_path)}
        # ... then the Evidently report for people, which does not change it.
        result.snapshot = build_snapshot(ref, current_part, result, config.monitoring, own)
        files = save_report(result, paths.state_dir / "reports", tag, own)
        check = VersionCheck(version, ref_path, result, files)
        if result.snapshot is not None:
            check.evidently_run = add_snapshot(
                paths.evidently_workspace,
                result.snapshot,
                name=files.json.stem,
                method=config.monitoring.stattest,
                threshold=config.monitoring.stattest_threshold,
            )
        params = {
            "reference": str(ref_path),
            "trigger": trigger,
            "since": context["since"],
            "until": context["until"],
            "model_version": version,
        }
        check.mlflow_run = log_to_mlflow(
            result, files, config.monitoring, paths.tracking_uri, paths.artifact_root, params
        )
        checks.append(check)
    deciding = next(c for c in checks if c.version == decider)
    if len(checks) > 1:
        deciding.drift.reason += (
            f" (decided on v{decider}'s {len(parts[decider])} records; window holds "
            + ", ".join(f"v{v}: {len(p)}" for v, p in parts.items())
            + ")"
        )
    return WindowCheck(deciding, {**context, "reference": str(deciding.reference)}, checks)
