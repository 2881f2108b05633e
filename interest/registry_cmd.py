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

from interest.common import FormatOption, config_from, echo_err, fail
from interest.exit_codes import exit_code

REFUSED_EXIT = exit_code("refused")


def register(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="MLflow run holding the logged model + bundle/.")],
    study: Annotated[str | None, typer.Option(help="Optuna study name to tag.")] = None,
    model_name: Annotated[str | None, typer.Option(help="Registered model name.")] = None,
) -> None:
    """Register a run's model as a new version, aliased 'challenger'."""
    config = config_from(ctx, {"registry": {"model_name": model_name}})
    from training.registry import register_run  # MLflow: lazy, see the module docstring

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
    format: FormatOption = None,
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
    config = config_from(ctx, {"data": {"format": format}})
    from training.registry import promote_version  # MLflow: lazy, see the module docstring

    flags = (" --force" if force else "") + (f" --data {data}" if data else "")
    command = f"interest promote {version}{flags}"
    try:
        if online:
            from pipelines.online import promote_online  # MLflow: lazy

            decision = promote_online(
                config, version, command=f"interest promote {version} --online"
            )
        else:
            from eventlogs.loaders import load_events  # pandas: lazy, like MLflow

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
    config = config_from(ctx)
    from training.aliases import NothingToRollBack  # MLflow: lazy (docstring)
    from training.registry import rollback as rollback_champion  # MLflow: lazy (docstring)

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
    config = config_from(ctx)
    from training.registry import model_history  # MLflow: lazy (docstring)

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


def _table(title: str, *columns: str) -> Table:
    # Long cells wrap inside their column rather than being cut with an ellipsis.
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _print_tables(state: dict[str, Any]) -> None:
    console = Console()
    for name, key in (
        ("state folder", "state_dir"),
        ("tracking URI", "tracking_uri"),
        ("Optuna storage", "optuna_storage"),
        ("BentoML home", "bentoml_home"),
    ):  # paths are not folded: a copied path must stay whole
        console.print(f"{name}: {state[key]}", soft_wrap=True, highlight=False)
    for model in state["registered_models"]:
        table = _table(f"registered model {model['name']}", "ver", "aliases", "metrics", "gate")
        for v in model["versions"]:
            metrics = "\n".join(
                f"{k} {val:.4f}" if val is not None else f"{k} nan"
                for k, val in v["metrics"].items()
            )
            created = (v["created"] or "")[:16].replace("T", " ")
            flags = " (rolled back)" if v["rolled_back"] else ""
            table.add_row(
                v["version"], "\n".join(v["aliases"]), metrics,
                f"{v['decision'] or ''}{flags}\n{created}\nrun {v['run_id'] or '-'}",
            )  # fmt: skip
        console.print(table)
    if not state["registered_models"]:
        console.print("no registered models")
    studies = _table("Optuna studies", "study", "best", "trials")
    for s in state["studies"]:
        counts = "\n".join(f"{k.lower()} {n}" for k, n in s["trials_by_state"].items())
        best = "-" if s["best_value"] is None else f"{s['best_value']:.4f}"
        started = (s["started"] or "")[:16].replace("T", " ")
        studies.add_row(f"{s['name']}\n{started}", best, counts)
    console.print(studies if state["studies"] else "no Optuna studies")
    bentos = _table("bentos", "bento", "registry version", "created")
    for b in state.get("bentos", []):
        version = f"{b['model_name']} v{b['registry_version']}" if b["registry_version"] else "?"
        bentos.add_row(b["tag"], version, b["created"][:16].replace("T", " "))
    console.print(bentos if state.get("bentos") else "no bentos built")
    models = _table("BentoML models", "tag", "registry version")
    for m in state["bento_models"]:
        labels = m["labels"]
        models.add_row(m["tag"], labels.get("version", "?") + f" {labels.get('alias', '')}")
    console.print(models if state["bento_models"] else "no BentoML models")


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Show registered models and versions, Optuna studies and BentoML models."""
    config = config_from(ctx)
    from pipelines.status import status as collect_status  # MLflow, Optuna, BentoML: lazy

    state = collect_status(config)
    if as_json:
        typer.echo(json.dumps(state, indent=2, default=str))
    else:
        _print_tables(state)
