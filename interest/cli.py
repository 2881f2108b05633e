"""The one command-line entry point: ``interest <stage> <command>``.

Heavy libraries (TensorFlow, MLflow, BentoML, Evidently) are imported inside commands so
that ``--help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from interest import (
    bento_cmd,
    data_cmd,
    demand_cmd,
    demo_cmd,
    evaluate_cmd,
    features_cmd,
    fit_cmd,
    monitor_cmd,
    predict_cmd,
    registry_cmd,
    synth_cmd,
    train_cmd,
)
from interest.common import USAGE, apply_global_options, fail


class _OneLineErrors(TyperGroup):
    """Reports a bad option value in one line (``error: Invalid value for '--x': ...``).

    Click would print a usage box; the other usage errors (unknown option, missing value)
    keep it, since the box's ``--help`` hint helps there.
    """

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except typer.BadParameter as err:
            # pydantic's prefix, from typer's Literal check, says nothing to a user
            message = err.format_message().replace("Value error, ", "")
            raise fail(message, USAGE) from err


app = typer.Typer(
    name="interest",
    cls=_OneLineErrors,
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
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show INFO logs (Optuna, TensorFlow, ...).")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="On an error, show the traceback, not one line.")
    ] = False,
) -> None:
    """Global options shared by every command."""
    apply_global_options(verbose, debug)  # before any command imports TensorFlow
    ctx.obj = {"config_path": config, "verbose": verbose, "debug": debug}


data_cmd.app.command("generate")(synth_cmd.generate)
data_cmd.app.command("features")(features_cmd.build)
app.add_typer(data_cmd.app, name="data")
app.command()(train_cmd.tune)
app.command()(fit_cmd.fit)
app.command()(evaluate_cmd.evaluate)
app.command()(demand_cmd.demand)
app.command()(predict_cmd.predict)
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
