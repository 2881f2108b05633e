"""``interest data``: check event logs before anything trains on them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from interest.common import FormatOption, check_time, config_from, fail

app = typer.Typer(help="Validate event logs and report what would be kept or dropped.")


@app.command()
def validate(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Event file (CSV or Parquet by suffix).")],
    format: FormatOption = None,
    category_key: Annotated[
        Literal["category_id", "brand", "item_id"] | None,
        typer.Option(help="Source key that becomes the canonical category_id."),
    ] = None,
    year: Annotated[int | None, typer.Option(help="Year for Tmall 'M-D' dates.")] = None,
    item_meta: Annotated[
        Path | None, typer.Option(help="Amazon item -> category file (item_id, i_category).")
    ] = None,
    max_drop_share: Annotated[
        float | None, typer.Option(help="Fail when a larger share of rows is invalid.")
    ] = None,
    window_start: Annotated[
        str | None,
        typer.Option(help="Keep events at or after this UTC ISO time.", callback=check_time),
    ] = None,
    window_end: Annotated[
        str | None, typer.Option(help="Keep events before this UTC ISO time.", callback=check_time)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Also write the kept rows as canonical events (.parquet or .csv), e.g. for "
            "`interest data features --streaming --format canonical`."
        ),
    ] = None,
) -> None:
    """Load PATH, print rows read/kept/dropped per reason; exit 1 if the file is unusable."""
    overrides = {
        "data": {
            "format": format,
            "category_key": category_key,
            "year": year,
            "item_meta": item_meta,
            "max_drop_share": max_drop_share,
            "window_start": window_start,
            "window_end": window_end,
        }
    }
    config = config_from(ctx, overrides)
    # Deferred: pandas takes seconds to import, and `interest --help` should not wait.
    from eventlogs.loaders import load_events, write_events
    from eventlogs.validation import DataValidationError

    try:
        result = load_events(path, config.data)
    except DataValidationError as exc:
        raise fail(str(exc)) from exc
    report = result.report
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.to_text())
    if out is not None:
        write_events(result.events, out)
        if not as_json:
            typer.echo(f"wrote {len(result.events):,} canonical events to {out}")
