"""``interest demo``: the main job, the whole loop on the embedded defaults."""

from __future__ import annotations

from typing import Annotated

import typer

from interest.common import config_from, quiet_libraries


def _show(index: int, total: int, title: str, detail: str | None, seconds: float | None) -> None:
    if seconds is None:
        typer.secho(f"[{index}/{total}] {title}", bold=True)
    else:
        typer.echo(f"      done in {seconds:.1f}s" + (f": {detail}" if detail else ""))


def demo(
    ctx: typer.Context,
    users: Annotated[int, typer.Option(min=50, help="Synthetic users.")] = 1500,
    days: Annotated[int, typer.Option(min=14, help="Days of synthetic history.")] = 35,
    trials: Annotated[int, typer.Option(min=1, help="Optuna trials of the first study.")] = 3,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs per trial.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed for data, sampler and models.")] = 7,
) -> None:
    """Run the whole loop on the embedded defaults and print where to look."""
    config = config_from(ctx)
    # Imported here: the pipeline pulls in TensorFlow, and `interest --help` must stay fast.
    from pipelines.demo import DemoOptions, run_demo

    quiet_libraries(ctx)  # after the pipeline imported Optuna/TensorFlow

    options = DemoOptions(users=users, days=days, trials=trials, epochs=epochs, seed=seed)
    result = run_demo(config, options, _show)
    paths = config.paths.resolved()
    typer.secho("\nSummary", bold=True)
    for note in result.notes:
        typer.echo(note)
    typer.echo(f"champion:       v{result.champion}")
    typer.echo(f"state folder:   {paths.state_dir}")
    typer.echo(f"event log:      {result.data_path}")
    typer.echo(f"MLflow UI:      mlflow ui --backend-store-uri {paths.tracking_uri}")
    typer.echo(f"Evidently UI:   evidently ui --workspace {paths.evidently_workspace}")
    typer.echo(f"drift reports:  {paths.state_dir / 'reports'}")
    typer.echo(f"bento:          {result.bento_tag or '(not built)'}")
    typer.echo("registry:       interest status")
