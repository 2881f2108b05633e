"""Registry commands: ``interest register|promote|rollback|status`` (wired in ``interest.cli``).

Exit codes: 0 done, 1 error, 3 the gate refused a promotion. ``training.registry`` and
``pipelines.status`` import MLflow (and Optuna, BentoML) at their top, so the commands import
them when they run: ``interest --help`` stays fast.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from interest.common import config_from, fail

REFUSED_EXIT = 3


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
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
) -> None:
    """Gate a version against champion and baselines; move the alias if it passes."""
    from training.registry import promote_version  # MLflow: lazy, see the module docstring

    config = config_from(ctx)
    try:
        decision = promote_version(config, version, force=force)
    except (LookupError, ValueError) as err:
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


def rollback(ctx: typer.Context) -> None:
    """Make the 'previous' version champion again."""
    from training.registry import rollback as rollback_champion  # MLflow: lazy (docstring)

    config = config_from(ctx)
    try:
        result = rollback_champion(config)
    except LookupError as err:
        raise fail(str(err)) from err
    typer.echo(
        f"rolled back {result.model_name}: champion v{result.from_version} -> v{result.to_version}"
    )


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
