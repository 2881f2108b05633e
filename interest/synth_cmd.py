"""``interest data generate``: write a synthetic event log and its ground truth.

A ``.parquet`` output whose config has more users than ``--users-per-shard`` is streamed
shard by shard (:func:`synthlogs.stream.write_synthetic_parquet`): bounded memory, rows
sorted by time within each shard only, and a per-user truth table. Everything else is
generated in memory, sorted by time, with the per-(user, day) truth. :func:`generate` is
wired into ``interest data`` by ``interest.cli``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # pandas and the generators load in the command: --help stays fast
    import pandas as pd

    from synthlogs.generator import SynthResult
    from synthlogs.stream import SynthStreamSummary


def truth_path(out: Path) -> Path:
    """The ground-truth file written beside the event log ``out``."""
    from synthlogs.stream import truth_file  # deferred: pandas

    return truth_file(out)


def write_frame(events: pd.DataFrame, path: Path) -> None:
    """Write canonical events to ``.csv`` (ISO UTC timestamps) or ``.parquet`` by suffix."""
    from core.schema import EVENT_COLUMNS

    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = events[list(EVENT_COLUMNS)]
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif suffix == ".csv":
        frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
    else:
        raise ValueError(f"{path}: unsupported suffix {path.suffix!r}; use .csv or .parquet")


def _lines(
    n_events: int,
    active: int,
    n_users: int,
    categories: int,
    span: str,
    shares: dict[str, float],
    shifted: int,
    seconds: float,
) -> str:
    share_text = ", ".join(f"{b} {s:.1%}" for b, s in shares.items())
    return "\n".join(
        [
            f"events      {n_events:,}",
            f"users       {active:,} active of {n_users:,}",
            f"categories  {categories:,}",
            f"span        {span}",
            f"behaviours  {share_text}",
            f"shifted     {shifted:,} users",
            f"seconds     {seconds:.1f}",
        ]
    )


def summarize(result: SynthResult, seconds: float) -> str:
    """Return a short human-readable summary of a generated log."""
    events = result.events
    span = "empty"
    if len(events):
        span = f"{events['timestamp'].iloc[0]:%Y-%m-%d} .. {events['timestamp'].iloc[-1]:%Y-%m-%d}"
    return _lines(
        len(events),
        events["user_id"].nunique(),
        result.config.n_users,
        events["category_id"].nunique(),
        span,
        result.behavior_shares(),
        int(result.truth.users["shifted"].sum()),
        seconds,
    )


def summarize_stream(summary: SynthStreamSummary) -> str:
    """Return the :func:`summarize` lines for a streamed log, plus its shard count."""
    span = "empty"
    if summary.first is not None and summary.last is not None:
        span = f"{summary.first:%Y-%m-%d} .. {summary.last:%Y-%m-%d}"
    lines = _lines(
        summary.events,
        summary.active_users,
        summary.users,
        summary.categories,
        span,
        summary.behavior_shares,
        summary.shifted,
        summary.seconds,
    )
    return f"{lines}\nshards      {summary.shards:,} (rows sorted by time within each shard)"


def generate(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Output file, .csv or .parquet.")],
    users: Annotated[int, typer.Option(help="Number of users (ignored with --events).")] = 1000,
    days: Annotated[int, typer.Option(help="Number of days.")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed; same options give the same file.")] = 0,
    start: Annotated[str, typer.Option(help="First day, ISO date (UTC).")] = "2024-01-01",
    shift_at: Annotated[
        str | None, typer.Option(help="ISO date from which a distribution shift applies.")
    ] = None,
    shift_fraction: Annotated[
        float, typer.Option(help="Share of users whose interests move at --shift-at.")
    ] = 0.2,
    events: Annotated[
        int | None, typer.Option(help="Size the run for about this many events.")
    ] = None,
    shift_strength: Annotated[
        float, typer.Option(help="Share of a shifted user's interest mass that moves.")
    ] = 0.8,
    behavior_shift: Annotated[
        float, typer.Option(help="Shifted users convert (1 + this) times less after the shift.")
    ] = 0.0,
    churn_rate: Annotated[
        float, typer.Option(help="Mean daily hazard of leaving for good.")
    ] = 0.01,
    items: Annotated[int, typer.Option(help="Number of items.")] = 20_000,
    users_per_shard: Annotated[
        int,
        typer.Option(
            min=1,
            help="Parquet output with more users than this is streamed in shards of this "
            "many users (bounded memory, time-sorted per shard, per-user truth). "
            "CSV output is always generated in memory.",
        ),
    ] = 100_000,
    progress: Annotated[
        bool, typer.Option(help="Show users generated so far of a streamed run (stderr).")
    ] = True,
) -> None:
    """Generate a synthetic event log and <stem>.truth.parquet beside it.

    Large .parquet runs stream shard by shard (see --users-per-shard); .csv output is built
    in memory, so keep it to what fits in RAM.
    """
    from synthlogs.generator import SynthConfig, config_for_events, generate_events
    from synthlogs.stream import write_synthetic_parquet

    if out.suffix.lower() not in (".csv", ".parquet"):
        raise typer.BadParameter(f"{out}: use a .csv or .parquet suffix", param_hint="--out")
    fields = dict(
        n_days=days,
        start=start,
        shift_at=shift_at,
        shift_fraction=shift_fraction,
        shift_strength=shift_strength,
        behavior_shift=behavior_shift,
        churn_rate=churn_rate,
        n_items=items,
    )
    started = time.perf_counter()
    try:
        if events is not None:
            config = config_for_events(events, seed=seed, **fields)
        else:
            config = SynthConfig(n_users=users, seed=seed, **fields)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    if out.suffix.lower() == ".parquet" and config.n_users > users_per_shard:
        from core.progress import counter, progress_enabled

        with counter("generating", "users", progress_enabled(progress)) as advance:
            summary = write_synthetic_parquet(
                config, out, users_per_shard=users_per_shard, advance=advance
            )
        typer.echo(summarize_stream(summary))
        typer.echo(f"wrote       {out} and {summary.truth_path} (one row per user)")
        return
    result = generate_events(config)
    write_frame(result.events, out)
    result.truth.save(truth_path(out))
    typer.echo(summarize(result, time.perf_counter() - started))
    typer.echo(f"wrote       {out} and {truth_path(out)}")
