"""``interest fit``: train one plan on feature shards, on one or N workers (``TF_CONFIG``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from interest.common import config_from, echo_err, fail

if TYPE_CHECKING:  # annotations only: TensorFlow loads when a fit starts
    from core.config import ProjectConfig
    from training.distributed import DistributedFit
    from training.search import TrialPlan


def fit(
    ctx: typer.Context,
    shards: Annotated[
        Path, typer.Argument(help="Output folder of `interest data features --streaming`.")
    ],
    out: Annotated[Path, typer.Option(help="Folder for model.keras, fit.json (chief only).")],
    params: Annotated[
        Path | None,
        typer.Option(help="JSON file of plan parameters (a trial's params); default plan."),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs (default train.epochs).")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Global minibatch size over all workers.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the model and the shuffle.")] = None,
    register: Annotated[
        bool,
        typer.Option(
            help="Chief only: score the test shards and the baselines, log an MLflow run "
            "(bundle, events-in pyfunc, model card), register a version and run the gate.",
        ),
    ] = False,
    data: Annotated[
        Path | None,
        typer.Option(
            help="--register: the canonical log the shards came from (baselines, gate); "
            "default: the source in SHARDS/report.json."
        ),
    ] = None,
) -> None:
    """Fit a plan on train + validation shards streamed through tf.data.

    Run the same command on every worker with its own TF_CONFIG (cluster.worker and
    task.index) for MultiWorkerMirroredStrategy; without TF_CONFIG it trains alone.
    With --register the chief registers the model like `interest tune` does (a version
    aliased challenger; the promotion gate decides whether it becomes champion).
    """
    config = config_from(ctx, {"train": {"batch_size": batch_size, "seed": seed}})
    for name in ("feature_spec.json", "train", "val", "test"):
        if not (shards / name).exists():
            raise fail(
                f"{shards}: no {name} (build shards with interest data features --streaming)"
            )
    try:
        plan_params = json.loads(params.read_text()) if params else {}
    except (OSError, ValueError) as exc:
        raise fail(f"{params}: cannot read plan parameters: {exc}") from exc
    source = _source(shards, data) if register else None
    from training.distributed import fit_shards
    from training.search import TrialPlan

    try:
        result = fit_shards(config, shards, TrialPlan.from_params(plan_params), out, epochs=epochs)
    except (ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from exc
    echo_err(f"worker {result.index + 1}/{result.workers}: {result.epochs} epochs")
    typer.echo(
        f"fit         {result.epochs} epochs on {result.workers} worker(s) in "
        f"{result.seconds:.1f} s"
    )
    if result.is_chief:
        typer.echo(f"written     {out / 'model.keras'}")
    if result.is_chief and source is not None:
        _register(config, result, TrialPlan.from_params(plan_params), shards, source)


def _source(shards: Path, data: Path | None) -> Path:
    """The event log to register against: ``--data`` or the shards' recorded source."""
    if data is None:
        try:
            data = Path(json.loads((shards / "report.json").read_text())["source"])
        except (OSError, ValueError, KeyError) as exc:
            raise fail(f"{shards}/report.json: no source recorded; pass --data LOG") from exc
    if not data.exists():
        raise fail(f"{data}: event log not found (pass --data LOG)")
    return data


def _register(
    config: ProjectConfig,
    result: DistributedFit,
    plan: TrialPlan,
    shards: Path,
    source: Path,
) -> None:
    """Register the chief's model (``training.fit_register``) and print the gate's verdict."""
    from eventlogs.validation import DataValidationError
    from training.fit_register import register_fit
    from training.outage import limit_http_retries

    limit_http_retries()
    try:
        done = register_fit(
            config,
            result.model,
            plan,
            shards,
            source,
            epochs=result.epochs,
            history=result.history,
            name=config.train.study_name,
        )
    except (DataValidationError, ValueError) as exc:
        raise fail(str(exc)) from exc
    metric = config.registry.primary_metric
    typer.echo(f"test {metric}: {done.test_metrics.get(metric, float('nan')):.4f}")
    for name, values in done.baselines.items():
        typer.echo(f"  baseline {name}: {values.get(metric, float('nan')):.4f}")
    typer.echo(f"MLflow run: {done.run_id}")
    verdict = "PROMOTED to champion" if done.decision.promote else "kept as challenger"
    typer.echo(f"version {done.version}: {verdict}")
    for reason in done.decision.reasons:
        typer.echo(f"  - {reason}")
