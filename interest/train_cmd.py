"""``interest tune``: the data scientist's entry point to studies, refits and the gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from interest.common import (
    FormatOption,
    HorizonOption,
    PeriodOption,
    TestCutoffOption,
    check_time,
    config_from,
    echo_err,
    fail,
    quiet_libraries,
)

if TYPE_CHECKING:  # annotations only: the real imports are deferred (TensorFlow)
    from core.dataset import PreparedData
    from eventlogs.loaders import LoadResult
    from pipelines.train import TrainResult

#: Exit status of a job stopped by a lost tracking server or database (sysexits'
#: EX_TEMPFAIL: try again later, here with ``--resume``).
EXIT_OUTAGE = 75
SPLITS = ("train", "val", "test")


def tune(
    ctx: typer.Context,
    data: Annotated[Path, typer.Option(help="Event log (CSV or Parquet).", exists=True)],
    format: FormatOption = None,
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
    input: Annotated[
        str | None,
        typer.Option(
            "--input",
            help="memory (load the log) or stream (out of core: feature shards, bounded "
            "samples; canonical logs only). Default train.input.",
        ),
    ] = None,
    work_dir: Annotated[
        Path | None,
        typer.Option(help="--input stream: folder for the feature shards (default: temporary)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for the sampler and the models.")] = None,
    study_name: Annotated[
        str | None, typer.Option(help="Optuna study / MLflow parent run name.")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue an existing study.")] = False,
    storage: Annotated[
        str | None, typer.Option(help="Optuna storage URL (default: SQLite in the state folder).")
    ] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
    test_cutoff: TestCutoffOption = None,
    val_cutoff: Annotated[
        str | None, typer.Option(help="Validation cutoff (UTC ISO).", callback=check_time)
    ] = None,
    horizon: HorizonOption = None,
    period: PeriodOption = None,
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
    progress: Annotated[
        bool, typer.Option(help="Show trials done/pruned and the best value so far (stderr).")
    ] = True,
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
                "input": input,
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
        names={"timeout_s": "--timeout", "optuna_storage": "--storage"},
    )
    # Imported here: the pipeline pulls in TensorFlow, and `interest --help` must stay fast.
    from eventlogs.validation import DataValidationError
    from pipelines.train import TrainRequest, join_study, train
    from training.outage import ServiceOutage, limit_http_retries

    quiet_libraries(ctx)
    limit_http_retries()
    if worker_only and not resume:
        raise fail("--worker-only joins an existing study: pass --study-name S --resume")
    request = TrainRequest(
        data=data,
        warm_start=warm_start,
        resume=resume,
        register=register,
        workers=workers,
        show_progress=progress,
        work_dir=work_dir,
    )

    def report(loaded: LoadResult, prepared: PreparedData) -> None:
        echo_err(loaded.report.to_text())
        counts = [len(prepared.train), len(prepared.val), len(prepared.test)]
        if prepared.shards is not None:  # stream mode: the arrays in memory are samples
            from training.stream_input import count_rows, shard_paths

            counts = [count_rows(shard_paths(prepared.shards, (s,))) for s in SPLITS]
            echo_err(
                f"in memory: {len(prepared.val)} val and {len(prepared.test)} test samples "
                f"(user share), {len(loaded.events)} of their events"
            )
        echo_err(
            f"samples: train {counts[0]}, val {counts[1]}, test {counts[2]}; "
            f"vocabulary {prepared.vocab.size}"
        )

    try:
        if worker_only:
            ran = join_study(config, request)
            typer.echo(f"worker ran {ran} trial(s) of study {config.train.study_name}")
            return
        result = train(config, request, on_prepared=report)
    except (DataValidationError, ValueError) as err:
        raise fail(str(err)) from err
    except ServiceOutage as err:
        raise fail(str(err), EXIT_OUTAGE) from err
    if json_out:
        typer.echo(json.dumps(result.summary(), indent=2, default=str))
        return
    print_result(result, config.registry.primary_metric)


def print_result(result: TrainResult, metric: str) -> None:
    """The human summary of a training job: study, test metric vs baselines, the gate."""
    study, refit = result.study, result.refit
    typer.echo(f"study {study.study_name}: {study.n_complete} complete, {study.n_pruned} pruned")
    score = refit.test_metrics.get(metric, float("nan"))
    typer.echo(f"test {metric}: {score:.4f}")
    for name, values in refit.baselines.items():
        typer.echo(f"  baseline {name}: {values.get(metric, float('nan')):.4f}")
    scored = {n: v[metric] for n, v in refit.baselines.items() if metric in v}
    if scored:
        best = max(scored, key=scored.__getitem__)
        verdict = "above" if score > scored[best] else "NOT above"
        typer.echo(
            f"point value {verdict} the best baseline ({best} {scored[best]:.4f}); "
            "the gate also needs the interval of the gain to clear it"
        )
    typer.echo(f"refit MLflow run: {refit.run_id}")
    if result.decision is not None:
        verdict = "PROMOTED to champion" if result.decision.promote else "kept as challenger"
        typer.echo(f"version {result.version}: {verdict}")
        for reason in result.decision.reasons:
            typer.echo(f"  - {reason}")
