"""The one command-line entry point: ``interest <stage> <command>``.

Heavy libraries (TensorFlow, MLflow, BentoML, Evidently) are imported inside commands so
that ``--help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from interest import (
    bento_cmd,
    data_cmd,
    demand_cmd,
    demo_cmd,
    evaluate_cmd,
    features_cmd,
    monitor_cmd,
    registry_cmd,
    synth_cmd,
    train_cmd,
)

app = typer.Typer(
    name="interest",
    help="Forecast how e-commerce users' interests evolve: data, training, serving, monitoring.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="YAML/TOML file overriding the built-in defaults (env: INTEREST_CONFIG).",
            envvar="INTEREST_CONFIG",
        ),
    ] = None,
) -> None:
    """Global options shared by every command."""
    ctx.obj = {"config_path": config}


data_cmd.app.command("generate")(synth_cmd.generate)
data_cmd.app.command("features")(features_cmd.build)
app.add_typer(data_cmd.app, name="data")
app.command()(train_cmd.tune)
app.command()(evaluate_cmd.evaluate)
app.command()(demand_cmd.demand)
for _command in (
    registry_cmd.register,
    registry_cmd.promote,
    registry_cmd.rollback,
    registry_cmd.history,
):
    app.command()(_command)
app.command("status")(registry_cmd.status)
app.add_typer(monitor_cmd.app, name="monitor")
app.add_typer(bento_cmd.app, name="bento")
app.command()(bento_cmd.serve)
app.command()(bento_cmd.deploy)
app.command()(demo_cmd.demo)


if __name__ == "__main__":
    app()
