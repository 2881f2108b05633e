"""``interest predict``: score every user of an event log with a registered version.

Writes one Parquet row per user with an event in the model's history window before the
cutoff: what ``/predict`` would answer for that user (see :mod:`pipelines.batch_score`).
Exit codes: 0 done, 1 error (one line naming the problem), 2 bad usage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from interest.common import USAGE, FormatOption, check_time, config_from, echo_err, fail


def predict(
    ctx: typer.Context,
    data: Annotated[Path, typer.Option(help="Event log (CSV or Parquet).")],
    cutoff: Annotated[
        str, typer.Option(help="Predict as of this time (UTC ISO time).", callback=check_time)
    ],
    out: Annotated[Path, typer.Option(help="Parquet file to write.")] = Path("predictions.parquet"),
    version: Annotated[
        str | None, typer.Option("--version", help="Registered version number.")
    ] = None,
    alias: Annotated[str | None, typer.Option(help="Registry alias (default: champion).")] = None,
    format: FormatOption = None,
    top_k: Annotated[
        int | None, typer.Option(min=1, help="Ranked categories per user (default serving.top_k).")
    ] = None,
    rows_per_chunk: Annotated[
        int,
        typer.Option(min=1, help="Canonical logs: event rows scored at once (bounds memory)."),
    ] = 3_000_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Score every user of a log with the champion (or --version/--alias) to Parquet."""
    if version is not None and alias is not None:
        raise fail("give --version or --alias, not both", USAGE)
    if version is not None and not version.strip().isdigit():
        raise fail(f"--version: {version!r} is not a version number (use --alias)", USAGE)
    if not data.is_file():
        raise fail(f"--data: {data} does not exist or is not a file", USAGE)
    if out.suffix.lower() not in (".parquet", ".pq"):
        raise fail(f"--out: {out} must end in .parquet", USAGE)
    config = config_from(ctx, {"data": {"format": format}})
    # Imported here: TensorFlow and MLflow are slow to import, `--help` must stay fast.
    from eventlogs.validation import DataValidationError
    from modelkit.registry import tracking_store_exists
    from pipelines.batch_score import score_log

    if not tracking_store_exists(config):
        raise fail(f"no tracking store at {config.paths.resolved().tracking_uri}: train first")
    try:
        result = score_log(
            config,
            data,
            cutoff,
            out,
            version=version or alias or "champion",
            top_k=top_k,
            rows_per_chunk=rows_per_chunk,
        )
    except (LookupError, DataValidationError, ValueError, KeyError, OSError) as err:
        raise fail(str(err).strip("'\"")) from err
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=1))
        return
    echo_err(
        f"{config.registry.model_name} v{result.model_version}: scored {result.users_scored:,} "
        f"of {result.users:,} users as of {result.cutoff.isoformat()} "
        f"({result.users - result.users_scored:,} without events in the history window), "
        f"{result.rows_read:,} rows in {result.chunks} chunk(s), {result.seconds:.1f} s, "
        f"peak RSS {result.peak_rss_mb:,.0f} MB"
    )
    typer.echo(str(result.out))
