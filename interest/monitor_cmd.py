"""``interest monitor``: drift reports, gated retraining and realised performance.

Exit codes of ``drift``: 0 no drift, 10 drift (retraining advised), 4 not enough data, 1 error
(the one table of every command's codes: :mod:`interest.exit_codes`).
Exit codes of ``performance``: 0 scored, 4 nothing labelled yet (horizons not over), 1 error.

Exit codes of ``run`` (the scheduled entry point; see ``RUN_EXIT_CODES``):
    0  no drift: nothing to do            5  drift, retrained, challenger refused by the gate
    3  drift, retrained, new champion     6  skipped: window already handled or cooldown
       (rebuild and redeploy the bento)   7  another run holds the lock
    4  not enough data in the window      8  drift, but no event log (--data) to retrain on
    1  error: nothing promoted, the window stays unhandled and is retried next run

The scheduled pass is :func:`pipelines.monitor.run_monitor`: monitoring decides, the training
pipeline retrains in process, and ``monitoring`` itself never imports ``training``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from core.config import ProjectConfig
from interest.common import (
    FormatOption,
    check_duration,
    check_time,
    config_from,
    echo_err,
    fail,
    quiet_libraries,
)
from interest.exit_codes import exit_code

if TYPE_CHECKING:  # annotations only: pipelines.monitor imports TensorFlow
    from pipelines.monitor import MonitorOutcome

app = typer.Typer(help="Monitor the served model: drift reports and retraining triggers.")

EXIT_CODES = {status: exit_code(status) for status in ("ok", "drift", "not_enough_data")}
# A window shorter than a day compares a few hours of traffic with whole days of training
# data: hour_of_day and hours_since_last would drift by construction.
DEFAULT_WINDOW = "24h"
REDEPLOY = "interest deploy --url URL"


def _window(since: str | None, window: str | None, now: datetime) -> tuple[datetime, datetime]:
    import pandas as pd  # deferred: --help stays fast

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
        str | None,
        typer.Option(help="Window start, ISO time (UTC if naive).", callback=check_time),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(
            help=f"Window length up to now, e.g. 24h (default {DEFAULT_WINDOW}).",
            callback=check_duration,
        ),
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(help="Reference profile: a model bundle folder or a reference.parquet."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Compare the logged window with the reference; exit 10 when retraining is advised."""
    config = config_from(ctx)
    # Imported here: Evidently and MLflow are slow to import, `--help` must stay fast.
    from monitoring.check import check_window
    from monitoring.reference import resolve_reference

    now = datetime.now(UTC)
    try:
        start, end = _window(since, window, now)
        if reference is None:
            resolve_reference(config)  # no champion: fail now, naming --reference
        ref_path = reference
        check = check_window(
            config,
            ref_path,
            start,
            end,
            stamp=now.strftime("%Y%m%dT%H%M%SZ"),
            trigger="monitor drift",
        )
    except (OSError, ValueError, LookupError) as err:
        raise fail(str(err)) from err
    result, files = check.drift, check.report
    if as_json:
        typer.echo(json.dumps(check.to_dict(), indent=1, default=str))
    else:
        drifted = ", ".join(c.column for c in result.drifted_columns) or "none"
        typer.echo(
            f"{result.status}: {result.share_drifted:.0%} of columns drifted ({drifted}); "
            f"rows current={result.n_current} reference={result.n_reference}; "
            f"retrain={'yes' if result.should_retrain else 'no'}"
        )
        echo_err(f"report: {files.json}" + (f" and {files.html}" if files.html else ""))
        for part in check.versions if len(check.versions) > 1 else []:
            typer.echo(
                f"  v{part.version}: {part.drift.status} on {part.drift.n_current} records "
                f"vs its own reference ({part.drift.share_drifted:.0%} of columns drifted)"
            )
    if result.status == "not_enough_data":
        echo_err(result.reason)
    raise typer.Exit(EXIT_CODES[result.status])


def _run_window(
    since: str | None, until: str | None, window: str, now: datetime
) -> tuple[datetime, datetime]:
    import pandas as pd

    from monitoring.loop import aligned_window

    if since is None and until is None:
        return aligned_window(now, window)
    if since is None or until is None:
        raise ValueError("pass both --since and --until, or neither (aligned --window)")
    start, end = (pd.Timestamp(v) for v in (since, until))
    start, end = (
        t.tz_localize(UTC) if t.tzinfo is None else t.tz_convert(UTC) for t in (start, end)
    )
    if end <= start:
        raise ValueError(f"--until {until} must be after --since {since}")
    return start.to_pydatetime(), end.to_pydatetime()


def _print_outcome(
    outcome: MonitorOutcome, config: ProjectConfig, rebuild: bool, config_path: Path | None
) -> None:
    from pipelines.deploy import deploy
    from serving.package import BentoBuildError

    typer.echo(f"{outcome.status}: {outcome.message}")
    if outcome.status not in ("already_handled", "not_enough_data"):
        typer.echo(f"evidence: {' + '.join(outcome.evidence) or 'none'}")
    if outcome.mlflow_run:
        echo_err(f"mlflow decision run: {outcome.mlflow_run}")
    if outcome.check is not None:
        echo_err(f"report: {outcome.check.report.json}")
    if outcome.retrain is not None:
        verdict = "promoted to champion" if outcome.retrain.promoted else "refused by the gate"
        typer.echo(f"challenger v{outcome.retrain.version} {verdict}")
        for reason in outcome.retrain.decision.reasons if outcome.retrain.decision else []:
            typer.echo(f"  - {reason}")
    if outcome.status != "promoted":
        return
    if not rebuild:
        typer.echo(f"rebuild and redeploy the service: {REDEPLOY}")
        return
    try:
        done = deploy(
            config, "champion", config_path=config_path, command="interest monitor run --rebuild"
        )
    except (LookupError, BentoBuildError, RuntimeError) as err:
        typer.echo(f"rebuild failed ({err}); run: {REDEPLOY}")
        return
    record = done.record
    typer.echo(
        f"bento {record.bento_tag} built from v{record.model_version} and recorded; "
        f"restart or reload the service: interest deploy --url URL"
    )


@app.command()
def run(
    ctx: typer.Context,
    data: Annotated[
        Path | None,
        typer.Option(help="Recent raw event log to retrain on (default monitoring.data_path)."),
    ] = None,
    format: FormatOption = None,
    window: Annotated[
        str,
        typer.Option(
            help="Length of the aligned window: the last complete one is checked.",
            callback=check_duration,
        ),
    ] = DEFAULT_WINDOW,
    since: Annotated[
        str | None, typer.Option(help="Explicit window start (with --until).", callback=check_time)
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Explicit window end (with --since).", callback=check_time)
    ] = None,
    trials: Annotated[
        int | None, typer.Option(help="Optuna trials (default monitoring.retrain_trials).")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs per trial and refit.")] = None,
    retrain_timeout: Annotated[
        float | None, typer.Option(help="Stop the retraining child after S seconds.")
    ] = None,
    rebuild: Annotated[
        bool, typer.Option(help="After a promotion, run interest bento import and build.")
    ] = False,
    progress: Annotated[
        bool,
        typer.Option(help="Show the retraining's trials and refit stages (stderr, terminal)."),
    ] = True,
) -> None:
    """Scheduled pass: drift check -> gated warm-start retrain -> new champion or refusal."""
    config = config_from(
        ctx, {"monitoring": {"data_format": format}}, names={"data_format": "--format"}
    )
    # Imported here: retraining pulls in TensorFlow, and `--help` must stay fast.
    from monitoring.loop import LockHeldError
    from pipelines.monitor import EXIT_CODES as RUN_EXIT_CODES
    from pipelines.monitor import RetrainRequest, run_monitor
    from training.outage import ServiceOutage

    quiet_libraries(ctx)
    config_path = (ctx.find_root().obj or {}).get("config_path")
    mon = config.monitoring
    now = datetime.now(UTC)
    data = data or mon.data_path
    request = None
    if data is not None:
        request = RetrainRequest(
            data=Path(data),
            format=mon.data_format or config.data.format,
            trials=trials or mon.retrain_trials,
            epochs=epochs or mon.retrain_epochs,
            timeout_s=retrain_timeout,
            progress=progress,
        )
    try:
        start, end = _run_window(since, until, window, now)
        if request is not None and not request.data.is_file():
            raise FileNotFoundError(f"event log {request.data} does not exist")
        outcome = run_monitor(config, start, end, now, request)
    except LockHeldError as err:
        echo_err(str(err))
        raise typer.Exit(RUN_EXIT_CODES["lock_held"]) from err
    except (OSError, ValueError, LookupError, ServiceOutage) as err:
        raise fail(f"{err} (champion untouched; the window will be retried)") from err
    _print_outcome(outcome, config, rebuild, config_path)
    raise typer.Exit(RUN_EXIT_CODES[outcome.status])


@app.command()
def performance(
    ctx: typer.Context,
    data: Annotated[Path, typer.Option(help="Event log holding the ground truth.", exists=True)],
    format: FormatOption = None,
    since: Annotated[
        str | None, typer.Option(help="First logged_at to score (ISO).", callback=check_time)
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Last logged_at to score (ISO).", callback=check_time)
    ] = None,
    bundle: Annotated[
        Path | None,
        typer.Option(help="Bundle folder whose vocabulary labels (default: the champion's)."),
    ] = None,
    k: Annotated[int, typer.Option(help="K of recall@K and NDCG@K (the gate uses 10).")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
) -> None:
    """Score past predictions as the promotion gate scores a model; log to MLflow."""
    config = config_from(ctx, {"data": {"format": format}})
    import pandas as pd

    from core.predlog import read_prediction_log
    from eventlogs.loaders import load_events
    from monitoring.online import compare_shadows, save_evidence
    from monitoring.performance import BundleLabelling, evaluate_log, log_performance
    from monitoring.policy import realised_scores, record_performance
    from monitoring.reference import champion_bundle

    paths = config.paths.resolved()
    try:
        folder = bundle or champion_bundle(config)[0]
        labelling = BundleLabelling.load(folder)
        log = read_prediction_log(paths.prediction_log, since, until)
        events = load_events(data, config.data).events
        result = evaluate_log(log, events, labelling, k)
    except (OSError, ValueError, LookupError) as err:
        raise fail(str(err)) from err
    if result.n_labelled == 0:
        horizon = labelling.feature_config.horizon
        echo_err(
            f"none of {result.n_records} logged predictions can be scored: a record needs its "
            f"whole horizon ({horizon}) and its user's history in {data} (events until "
            f"{result.labels_until}); {result.n_incomplete} labelled records rank fewer than "
            f"{k} known categories or lack outputs"
        )
        raise typer.Exit(4)
    params = {"data": str(data), "since": str(since), "until": str(until), "bundle": str(folder)}
    run_id = log_performance(result, paths.tracking_uri, paths.artifact_root, params)
    metric = f"recall_at_{k}"
    at = pd.Timestamp(until) if until else pd.Timestamp.now(tz="UTC")
    at = at.tz_localize("UTC") if at.tzinfo is None else at
    context = {"since": str(since), "until": str(until), "trigger": "monitor performance"}
    scores = realised_scores(config, result, metric)
    record_performance(config, scores, metric, context, at.to_pydatetime())
    online = compare_shadows(result.samples, config.registry, f"recall_at_{k}", result.shadowing)
    evidence = [save_evidence(config, c) for c in online]
    if as_json:
        table = result.table.reset_index().to_dict(orient="records")
        payload = {
            "k": k,
            "n_records": result.n_records,
            "n_labelled": result.n_labelled,
            "n_incomplete": result.n_incomplete,
            "mlflow_run": run_id,
            "rows": table,
            "shadow": [
                {
                    "shadow_version": c.shadow_version,
                    "served_version": c.served_version,
                    "metric": c.metric,
                    "interval": c.interval.to_dict(),
                    "evidence": str(path),
                }
                for c, path in zip(online, evidence, strict=True)
            ],
        }
        typer.echo(json.dumps(payload, indent=1, default=str))
        return
    from rich.console import Console

    from interest.perf_table import performance_table

    title = f"realised performance of {result.n_labelled} logged predictions"
    Console(width=80).print(performance_table(result.table, k, title))
    for comparison in online:
        typer.echo(comparison.line())
    if online:
        echo_err("promote on this evidence: interest promote VERSION --online")
    echo_err(
        f"{result.n_labelled}/{result.n_records} predictions scored "
        f"({result.n_incomplete} incomplete); MLflow run {run_id}"
    )
