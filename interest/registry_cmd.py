"""Registry commands: ``interest register|promote|rollback|history|status`` (``interest.cli``).

Exit codes (:mod:`interest.exit_codes`): 0 done, 1 error, 5 the gate refused a promotion,
9 nothing to roll back to. ``training.registry`` and ``pipelines.status`` import MLflow (and
Optuna, BentoML) at their top, so the commands import them when they run: ``interest
--help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from eventlogs.loaders import load_events
from interest.common import config_from, echo_err, fail
from interest.exit_codes import exit_code

REFUSED_EXIT = exit_code("refused")


def register(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="MLflow run holding the logged model + bundle/.")],
    study: Annotated[str | None, typer.Option(help="Optuna study name to tag.")] = None,
    model_name: Annotated[str | None, typer.Option(help="Registered model name.")] = None,
) -> None:
    """Register a run's model as a new version, aliased 'challenger'."""
    from training.registry import register_run  # MLflow: lazy, see the module docstring

    config = config_from(ctx, {"registry": {"model_name": model_name}})
    try:
        version = register_run(config, run_id, study_name=study)
    except LookupError as err:
        raise fail(str(err)) from err
    typer.echo(f"registered {config.registry.model_name} v{version.version} as challenger")


def promote(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="Version number or alias.")] = "challenger",
    force: Annotated[bool, typer.Option(help="Promote even if the gate refuses.")] = False,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Event log: re-score challenger, champion and baselines on its current test "
            "split (needed when they were scored on different splits).",
            exists=True,
        ),
    ] = None,
    format: Annotated[
        str | None, typer.Option("--format", help="Format of --data (default: data.format).")
    ] = None,
    online: Annotated[
        bool,
        typer.Option(
            help="Use the version's shadow evidence (interest monitor performance) against "
            "the served champion instead of an offline split."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
) -> None:
    """Gate a version against champion and baselines; move the alias if it passes.

    The gate promotes only if the lower end of the confidence interval of the relative gain
    (paired bootstrap over users) clears the margin against champion and best baseline.
    """
    from training.registry import promote_version  # MLflow: lazy, see the module docstring

    config = config_from(ctx, {"data": {"format": format}})
    flags = (" --force" if force else "") + (f" --data {data}" if data else "")
    command = f"interest promote {version}{flags}"
    try:
        if online:
            from pipelines.online import promote_online  # MLflow: lazy

            decision = promote_online(
                config, version, command=f"interest promote {version} --online"
            )
        else:
            events = None if data is None else load_events(data, config.data).events
            decision = promote_version(config, version, force=force, events=events, command=command)
    except (LookupError, ValueError, FileNotFoundError) as err:
        raise fail(str(err)) from err
    if as_json:
        typer.echo(json.dumps(decision.to_dict(), indent=2))
    else:
        verdict = "PROMOTED" if decision.promote else "REFUSED"
        typer.echo(f"{verdict} {config.registry.model_name} {version}")
        for reason in decision.reasons:
            typer.echo(f"  - {reason}")
    if not decision.promote:
        raise typer.Exit(REFUSED_EXIT)


def rollback(
    ctx: typer.Context,
    reason: Annotated[
        str, typer.Option(help="Why, recorded in the alias history.")
    ] = "requested by user",
) -> None:
    """Undo the last champion move; run it again to undo the rollback itself."""
    from training.aliases import NothingToRollBack  # MLflow: lazy (docstring)
    from training.registry import rollback as rollback_champion  # MLflow: lazy (docstring)

    config = config_from(ctx)
    try:
        result = rollback_champion(config, reason=reason, command="interest rollback")
    except NothingToRollBack as err:
        raise fail(str(err), exit_code("nothing_to_roll_back")) from err
    except LookupError as err:
        raise fail(str(err)) from err
    typer.echo(
        f"rolled back {result.model_name}: champion v{result.from_version} -> v{result.to_version}"
    )


def history(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List every recorded alias move of the model, oldest first."""
    from training.registry import model_history  # MLflow: lazy (docstring)

    config = config_from(ctx)
    try:
        moves = model_history(config)
    except LookupError as err:
        raise fail(str(err)) from err
    if as_json:
        typer.echo(json.dumps([m.to_dict() for m in moves], indent=2))
        return
    table = Table(title=f"alias history of {config.registry.model_name}")
    for col in ("time (UTC)", "alias", "from", "to", "who", "command", "reason"):
        table.add_column(col)
    for m in moves:
        table.add_row(
            m.at, m.alias, m.from_version or "-", m.to_version or "-", m.who, m.command, m.reason
        )
    Console(width=200).print(table)
    if not moves:
        echo_err("no alias moves recorded")


def _print_tables(state: dict[str, Any]) -> None:
    console = Console()
    console.print(f"state folder: {state['state_dir']}\ntracking URI: {state['tracking_uri']}")
    for model in state["registered_models"]:
        table = Table(title=f"registered model {model['name']}")
        for col in ("version", "aliases", "created", "metrics", "decision", "run id"):
            table.add_column(col)
        for v in model["versions"]:
            metrics = ", ".join(
                f"{k}={val:.4f}" if val is not None else f"{k}=nan"
                for k, val in v["metrics"].items()
            )
            flags = " (rolled back)" if v["rolled_back"] else ""
            table.add_row(
                v["version"], ", ".join(v["aliases"]), v["created"] or "", metrics,
                (v["decision"] or "") + flags, v["run_id"] or "",
            )  # fmt: skip
        console.print(table)
    if not state["registered_models"]:
        console.print("no registered models")
    studies = Table(title=f"Optuna studies ({state['optuna_storage']})")
    for col in ("study", "started", "best value", "trials by state"):
        studies.add_column(col)
    for s in state["studies"]:
        counts = ", ".join(f"{k}={n}" for k, n in s["trials_by_state"].items())
        studies.add_row(s["name"], s["started"] or "", str(s["best_value"]), counts)
    console.print(studies if state["studies"] else "no Optuna studies")
    bentos = Table(title=f"BentoML models ({state['bentoml_home']})")
    for col in ("tag", "created"):
        bentos.add_column(col)
    for m in state["bento_models"]:
        bentos.add_row(m["tag"], m["created"])
    console.print(bentos if state["bento_models"] else "no BentoML models")


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Show registered models and versions, Optuna studies and BentoML models."""
    from pipelines.status import status as collect_status  # MLflow, Optuna, BentoML: lazy

    state = collect_status(config_from(ctx))
    if as_json:
        typer.echo(json.dumps(state, indent=2, default=str))
    else:
        _print_tables(state)
