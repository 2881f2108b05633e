"""The one command-line entry point: ``interest <stage> <command>``.

Heavy libraries (TensorFlow, MLflow, BentoML, Evidently) are imported inside commands so
that ``--help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from interest import data_cmd

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


app.add_typer(data_cmd.app, name="data")


if __name__ == "__main__":
    app()
