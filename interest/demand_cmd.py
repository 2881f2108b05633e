"""``interest demand``: forecast each category's demand in the period after a cutoff.

Loads a registered version's bundle, forecasts expected events per top category (see
:mod:`pipelines.demand`) and prints the largest next to a persistence forecast and, when
the log covers the period, what happened and both WAPEs. Exit codes: 0 done, 1 error.
"""

from __future__ import annotations

import tempfile
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from interest.common import FormatOption, check_time, config_from, fail

if TYPE_CHECKING:  # annotations only: keep `--help` fast
    import pandas as pd


class Level(str, Enum):
    """Where the forecast's total comes from (pipelines.demand.LEVELS)."""

    persistence = "persistence"
    model = "model"


def print_demand(table: pd.DataFrame, top: int, title: str) -> None:
    """Print the ``top`` rows of a :func:`pipelines.demand.forecast_demand` table and WAPEs."""
    from evaluation.demand import demand_wapes

    has_actual = not table["actual"].isna().any()
    out = Table(title=title)
    columns = ["category", "forecast", "persistence"] + (["actual"] if has_actual else [])
    for col in columns:
        out.add_column(col, justify="left" if col == "category" else "right")
    for row in table.head(top).itertuples(index=False):
        values = [f"{getattr(row, c):.1f}" for c in columns[1:]]
        out.add_row(str(row.category), *values)
    Console(width=120).print(out)
    if has_actual:
        w = demand_wapes(table)
        typer.echo(
            f"WAPE over all {len(table)} categories: model {w['model']:.4f}, "
            f"persistence {w['persistence']:.4f}; without 'other': model "
            f"{w['model_named']:.4f}, persistence {w['persistence_named']:.4f}"
        )
    else:
        typer.echo("the log does not cover the forecast period: no actuals, no WAPE")


def demand(
    ctx: typer.Context,
    data: Annotated[Path, typer.Option(help="Event log (CSV or Parquet).", exists=True)],
    cutoff: Annotated[
        str, typer.Option(help="Start of the forecast period (UTC ISO time).", callback=check_time)
    ],
    version: Annotated[
        str, typer.Option("--version", help="Registered version number or alias.")
    ] = "champion",
    format: FormatOption = None,
    out: Annotated[Path | None, typer.Option(help="Write every category's row as CSV.")] = None,
    top: Annotated[int, typer.Option(min=1, help="Categories to print.")] = 15,
    level: Annotated[
        Level,
        typer.Option(
            help="Total from last period's events (persistence) or from the model's "
            "expected activity (model); the model always gives the mix."
        ),
    ] = Level.persistence,
) -> None:
    """Forecast next-period demand per category from a registered model (and score it)."""
    config = config_from(ctx, {"data": {"format": format}})
    # Imported here: TensorFlow and MLflow are slow to import, `--help` must stay fast.
    import pandas as pd

    from eventlogs.loaders import load_events
    from modelkit.bundle import load_bundle
    from modelkit.registry import download_bundle
    from pipelines.demand import forecast_demand

    try:
        when = pd.Timestamp(cutoff)
        events = load_events(data, config.data).events
        with tempfile.TemporaryDirectory() as tmp:
            bundle = load_bundle(download_bundle(config, version, Path(tmp)))
        table = forecast_demand(bundle, events, when, level=level.value)
    except (LookupError, ValueError, FileNotFoundError) as err:
        raise fail(str(err)) from err
    if out is not None:
        table.to_csv(out, index=False)
    period = bundle.feature_config.period
    title = f"{config.registry.model_name} {version}: demand per category, the {period} from {when}"
    print_demand(table, top, title)
