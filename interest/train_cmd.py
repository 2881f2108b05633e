"""``interest tune``: the data scientist's entry point to studies, refits and the gate."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from interest.common import config_from, echo_err, fail

#: Exit status of a job stopped by a lost tracking server or database (sysexits'
#: EX_TEMPFAIL: try again later, here with ``--resume``).
EXIT_OUTAGE = 75


def load_champion_model(config: Any) -> tuple[Any, Any] | None:
    """Return ``(keras model, vocabulary)`` of the current champion, or ``None``."""
    from modelkit.bundle import load_bundle
    from modelkit.registry import download_bundle, registered_champion

    if registered_champion(config) is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        bundle = load_bundle(download_bundle(config, "champion", Path(tmp)))
    return bundle.model, bundle.vocab


def run_only_worker(config: Any, prepared: Any, champion: tuple[Any, Any] | None) -> None:
    """Join ``train.study_name`` as one worker and report how many trials it ran."""
    from training.outage import ServiceOutage
    from training.workers import run_worker

    try:
        ran = run_worker(config, prepared, warm_start=champion[0] if champion else None)
    except ValueError as err:
        raise fail(str(err)) from err
    except ServiceOutage as err:
        raise fail(str(err), EXIT_OUTAGE) from err
    typer.echo(f"worker ran {ran} trial(s) of study {config.train.study_name}")


def tune(
    ctx: typer.Context,
    data: Annotated[Path, typer.Option(help="Event log (CSV or Parquet).", exists=True)],
    format: Annotated[
        str | None, typer.Option("--format", help="taobao|tmall|amazon|rees46|generic|canonical.")
    ] = None,
    category_key: Annotated[
        str | None, typer.Option(help="Source key used as category: category_id|brand|item_id.")
    ] = None,
    trials: Annotated[
        int | None, typer.Option(help="Finished trials the study should reach.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Stop starting trials after S seconds.")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Epochs per trial (and for the refit).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Minibatch size.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for the sampler and the models.")] = None,
    study_name: Annotated[
        str | None, typer.Option(help="Optuna study / MLflow parent run name.")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue an existing study.")] = False,
    storage: Annotated[
        str | None, typer.Option(help="Optuna storage URL (default: SQLite in the state folder).")
    ] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
    test_cutoff: Annotated[str | None, typer.Option(help="Test cutoff (UTC ISO).")] = None,
    val_cutoff: Annotated[str | None, typer.Option(help="Validation cutoff (UTC ISO).")] = None,
    horizon: Annotated[str | None, typer.Option(help="Label horizon, e.g. 3D.")] = None,
    period: Annotated[str | None, typer.Option(help="Trajectory period: hour|day|week.")] = None,
    n_train_cutoffs: Annotated[int | None, typer.Option(help="Rolling training cutoffs.")] = None,
    register: Annotated[
        bool, typer.Option(help="Register the refit winner and run the promotion gate.")
    ] = True,
    warm_start: Annotated[
        bool,
        typer.Option(
            help="Offer the champion's weights to trials and reuse its vocabulary "
            "(retraining on newer data of the same source)."
        ),
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show Optuna's progress bar.")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Processes optimising the one study in parallel; the command waits for them, "
            "then refits and registers once. Use PostgreSQL storage for more than one.",
        ),
    ] = 1,
    worker_only: Annotated[
        bool,
        typer.Option(
            help="Only join an existing study (--study-name S --resume) as one more worker, "
            "e.g. on another machine: no refit, no registration.",
        ),
    ] = False,
) -> None:
    """Run an Optuna study, refit the best plan, register it and apply the promotion gate.

    If the tracking server or the database stops answering, the command exits with status
    75 and one paragraph naming the service and the step; nothing is registered and no
    alias moves, and ``--resume --study-name S`` continues the study once it is back.
    """
    config = config_from(
        ctx,
        {
            "data": {"format": format, "category_key": category_key},
            "train": {
                "trials": trials,
                "timeout_s": timeout,
                "epochs": epochs,
                "batch_size": batch_size,
                "seed": seed,
                "study_name": study_name,
            },
            "paths": {"optuna_storage": storage, "tracking_uri": tracking_uri},
            "split": {
                "test_cutoff": test_cutoff,
                "val_cutoff": val_cutoff,
                "n_train_cutoffs": n_train_cutoffs,
            },
            "features": {"horizon": horizon, "period": period},
        },
    )
    from core.dataset import prepare_dataset
    from eventlogs.loaders import load_events
    from eventlogs.validation import DataValidationError
    from training.outage import OutageGuard, ServiceOutage, limit_http_retries
    from training.tune import run_study

    limit_http_retries()
    if worker_only and not resume:
        raise fail("--worker-only joins an existing study: pass --study-name S --resume")
    try:
        loaded = load_events(data, config.data)
    except DataValidationError as err:
        raise fail(str(err)) from err
    echo_err(loaded.report.to_text())
    try:
        with OutageGuard(config, config.train.study_name, stage="loading the champion"):
            champion = load_champion_model(config) if warm_start else None
    except ServiceOutage as err:
        raise fail(str(err), EXIT_OUTAGE) from err
    prepared = prepare_dataset(
        loaded.events, config, data.stem, vocab=champion[1] if champion else None
    )
    echo_err(
        f"samples: train {len(prepared.train)}, val {len(prepared.val)}, "
        f"test {len(prepared.test)}; vocabulary {prepared.vocab.size}"
    )
    if worker_only:
        run_only_worker(config, prepared, champion)
        return
    try:
        outcome = run_study(
            config,
            loaded.events,
            prepared,
            source=str(data.resolve()),
            resume=resume,
            register=register,
            warm_start=champion[0] if champion else None,
            show_progress=progress,
            workers=workers,
        )
    except ValueError as err:
        raise fail(str(err)) from err
    except ServiceOutage as err:
        raise fail(str(err), EXIT_OUTAGE) from err
    summary = {
        "study": outcome.study_name,
        "parent_run_id": outcome.parent_run_id,
        "best_value": outcome.best_value,
        "best_params": outcome.best_params,
        "complete": outcome.n_complete,
        "pruned": outcome.n_pruned,
        "refit_run_id": outcome.refit.run_id,
        "test_metrics": outcome.refit.test_metrics,
        "baselines": outcome.refit.baselines,
        "version": outcome.version,
        "decision": outcome.decision.to_dict() if outcome.decision else None,
    }
    if json_out:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    typer.echo(
        f"study {outcome.study_name}: {outcome.n_complete} complete, {outcome.n_pruned} pruned"
    )
    metric = config.registry.primary_metric
    typer.echo(f"test {metric}: {outcome.refit.test_metrics.get(metric, float('nan')):.4f}")
    for name, values in outcome.refit.baselines.items():
        typer.echo(f"  baseline {name}: {values.get(metric, float('nan')):.4f}")
    if outcome.decision is not None:
        verdict = "PROMOTED to champion" if outcome.decision.promote else "kept as challenger"
        typer.echo(f"version {outcome.version}: {verdict}")
        for reason in outcome.decision.reasons:
            typer.echo(f"  - {reason}")
