"""``interest fit``: train one plan on feature shards, on one or N workers (``TF_CONFIG``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from interest.common import config_from, echo_err, fail


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
) -> None:
    """Fit a plan on train + validation shards streamed through tf.data.

    Run the same command on every worker with its own TF_CONFIG (cluster.worker and
    task.index) for MultiWorkerMirroredStrategy; without TF_CONFIG it trains alone.
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
