"""``interest monitor``: drift of the prediction log against the champion's reference.

Exit codes of ``drift``: 0 no drift, 3 drift (retraining advised), 4 not enough data, 1 error.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from interest.common import config_from, echo_err, fail

app = typer.Typer(help="Monitor the served model: drift reports and retraining triggers.")

EXIT_CODES = {"ok": 0, "drift": 3, "not_enough_data": 4}
# A window shorter than a day compares a few hours of traffic with whole days of training
# data: hour_of_day and hours_since_last would drift by construction.
DEFAULT_WINDOW = "24h"


def _window(since: str | None, window: str | None, now: datetime) -> tuple[datetime, datetime]:
    if since and window:
        raise ValueError("pass --since or --window, not both")
    if since:
        start = pd.Timestamp(since)
        start = start.tz_localize(UTC) if start.tzinfo is None else start.tz_convert(UTC)
        return start.to_pydatetime(), now
    try:
        span = pd.Timedelta(window or DEFAULT_WINDOW)
    except ValueError:
        raise ValueError(f"--window {window!r} is not a duration such as 1h, 24h or 7d") from None
    if span <= pd.Timedelta(0):
        raise ValueError(f"--window must be positive, got {window!r}")
    return now - span.to_pytimedelta(), now


@app.command()
def drift(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option(help="Window start, ISO time (UTC if naive).")
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(help=f"Window length up to now, e.g. 24h (default {DEFAULT_WINDOW})."),
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(help="Reference profile: a model bundle folder or a reference.parquet."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Compare the logged window with the reference; exit 3 when retraining is advised."""
    from monitoring.drift import check_drift
    from monitoring.reference import load_reference, read_prediction_log, resolve_reference
    from monitoring.report import log_to_mlflow, save_report
    from monitoring.workspace import add_snapshot

    config = config_from(ctx)
    paths = config.paths.resolved()
    now = datetime.now(UTC)
    try:
        start, end = _window(since, window, now)
        ref_path = reference or resolve_reference(config)
        ref = load_reference(ref_path)
        log_dir = paths.prediction_log
        current = read_prediction_log(log_dir, start, end) if log_dir.is_dir() else pd.DataFrame()
        if current.empty:
            current = ref.iloc[:0]
        result = check_drift(ref, current, config.monitoring)
    except (OSError, ValueError) as err:
        raise fail(str(err)) from err
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    context = {
        "since": start.isoformat(),
        "until": end.isoformat(),
        "reference": str(ref_path),
        "prediction_log": str(paths.prediction_log),
        "skipped_lines": int(current.attrs.get("skipped_lines", 0)),
    }
    files = save_report(result, paths.state_dir / "reports", stamp, context)
    run_id = None
    if result.snapshot is not None:
        run_id = add_snapshot(paths.evidently_workspace, result.snapshot, name=files.json.stem)
    mlflow_run = log_to_mlflow(
        result,
        files,
        config.monitoring,
        paths.tracking_uri,
        paths.artifact_root,
        {"reference": str(ref_path), "since": context["since"], "until": context["until"]},
    )
    summary = {
        **result.to_dict(),
        **context,
        "report_json": str(files.json),
        "report_html": str(files.html) if files.html else None,
        "evidently_run": run_id,
        "mlflow_run": mlflow_run,
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=1, default=str))
    else:
        drifted = ", ".join(c.column for c in result.drifted_columns) or "none"
        typer.echo(
            f"{result.status}: {result.share_drifted:.0%} of columns drifted ({drifted}); "
            f"rows current={result.n_current} reference={result.n_reference}; "
            f"retrain={'yes' if result.should_retrain else 'no'}"
        )
        echo_err(f"report: {files.json}" + (f" and {files.html}" if files.html else ""))
    if result.status == "not_enough_data":
        echo_err(result.reason)
    raise typer.Exit(EXIT_CODES[result.status])
