"""``interest data features``: turn an event log into train/val/test arrays.

:func:`build` is wired into ``interest data`` by ``interest.cli``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from interest.common import (
    FormatOption,
    HorizonOption,
    TestCutoffOption,
    config_from,
    echo_err,
    fail,
)

if TYPE_CHECKING:  # pandas-heavy modules load in the command: --help stays fast
    from core.arrays import SequenceArrays
    from core.config import ProjectConfig
    from core.dataset import PreparedData


def save_prepared(data: PreparedData, out: Path) -> list[Path]:
    """Write the splits (``.npz``), vocabulary, feature spec and fingerprint into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("train", "val", "test"):
        path = out / f"{name}.npz"
        getattr(data, name).save(path)
        written.append(path)
    data.vocab.save(out / "vocab.json")
    (out / "feature_spec.json").write_text(data.spec.to_json())
    fingerprint = json.dumps(data.fingerprint.to_dict(), indent=1, sort_keys=True)
    (out / "fingerprint.json").write_text(fingerprint)
    return [*written, out / "vocab.json", out / "feature_spec.json", out / "fingerprint.json"]


def _rates(arrays: SequenceArrays) -> str:
    if len(arrays) == 0:
        return "no samples"
    active = arrays.next_cats.sum(axis=1) > 0
    return (
        f"{len(arrays):>9,} samples  buy {arrays.buy.mean():6.1%}  churn {arrays.churn.mean():6.1%}"
        f"  active {active.mean():6.1%}  mean events {(arrays.cat > 0).sum(axis=1).mean():5.1f}"
    )


def summarize(data: PreparedData, seconds: float) -> str:
    """Return the human-readable summary printed by :func:`build`."""
    lines = [
        f"dataset     {data.fingerprint.dataset} ({data.fingerprint.rows:,} events, "
        f"hash {data.fingerprint.content_hash})",
        f"vocabulary  {data.vocab.size:,} indices (hash {data.vocab.hash}), "
        f"{data.spec.n_buckets} trajectory buckets",
    ]
    for name in ("train", "val", "test"):
        lines.append(f"{name:<11} {_rates(getattr(data, name))}")
    cutoffs = data.splits.to_dict()
    lines.append(f"cutoffs     train {', '.join(cutoffs['train'])}")
    lines.append(f"            val {cutoffs['val']}  test {cutoffs['test']}")
    lines.append(f"seconds     {seconds:.1f}")
    return "\n".join(lines)


def build(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Event log (.csv or .parquet).")],
    out: Annotated[Path, typer.Option(help="Folder for the arrays and artifacts.")],
    format: FormatOption = None,
    name: Annotated[
        str | None, typer.Option(help="Dataset name for the fingerprint (default: file stem).")
    ] = None,
    horizon: HorizonOption = None,
    max_events: Annotated[int | None, typer.Option(help="Events per sequence (N).")] = None,
    test_cutoff: TestCutoffOption = None,
    streaming: Annotated[
        bool,
        typer.Option(help="Out of core (canonical files only): shards in out/<split>/part-*.npz."),
    ] = False,
    engine: Annotated[
        str,
        typer.Option(
            help="memory (load the log), stream (--streaming) or dask (Parquet partitions on "
            "a dask.distributed cluster; the same shards as --streaming)."
        ),
    ] = "memory",
    workers: Annotated[int, typer.Option(min=1, help="--engine dask: local cluster workers.")] = 2,
    scheduler: Annotated[
        str | None,
        typer.Option(help="--engine dask: address of a running scheduler (tcp://host:8786)."),
    ] = None,
    threads: Annotated[
        bool, typer.Option(help="--engine dask: local workers as threads, not processes.")
    ] = False,
    progress: Annotated[
        bool, typer.Option(help="Show the pass and time bucket being built (stderr).")
    ] = True,
) -> None:
    """Load events, split them by time, and save train/val/test arrays with their artifacts."""
    config = config_from(
        ctx,
        {
            "data": {"format": format},
            "features": {"horizon": horizon, "max_events": max_events},
            "split": {"test_cutoff": test_cutoff},
        },
    )
    if engine not in ("memory", "stream", "dask"):
        raise fail(f"--engine {engine!r}: choose memory, stream or dask")
    if streaming or engine != "memory":
        dask = (scheduler, workers, not threads) if engine == "dask" else None
        _build_streaming(path, out, config, name or path.stem, dask, progress)
        return
    from core.dataset import prepare_dataset
    from core.progress import progress_enabled, stage_line
    from eventlogs.loaders import load_events

    start = time.perf_counter()
    try:
        with stage_line("features", progress_enabled(progress)) as say:
            say(f"loading {path}")
            loaded = load_events(path, config.data)
            echo_err(f"loaded {len(loaded.events):,} events from {path}")
            say(f"building sequences from {len(loaded.events):,} events")
            data = prepare_dataset(loaded.events, config, name or path.stem)
    except (ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from exc
    save_prepared(data, out)
    typer.echo(summarize(data, time.perf_counter() - start))
    typer.echo(f"written     {out}")


def _build_streaming(
    path: Path,
    out: Path,
    config: ProjectConfig,
    name: str,
    dask: tuple[str | None, int, bool] | None = None,
    progress: bool = True,
) -> None:
    """Out of core: the single-machine pass, or ``dask`` = (scheduler, workers, processes).

    ``progress``: draw the pass and bucket being built (a terminal only).
    """
    if config.data.format != "canonical":
        raise fail(
            f"{path}: --streaming reads only the canonical format, not {config.data.format!r}; "
            f"convert it first: interest data validate {path} --format {config.data.format} "
            "--out events.parquet, then pass events.parquet with --format canonical"
        )
    from core.progress import progress_enabled, stage_line
    from eventlogs.stream import prepare_streaming

    try:
        if dask is None:
            with stage_line("features", progress_enabled(progress)) as say:
                report = prepare_streaming(path, config, name, out, say=say)
        else:
            from eventlogs.dask_features import dask_client, prepare_dask

            scheduler, workers, processes = dask
            with dask_client(scheduler, workers, processes) as client:
                report = prepare_dask(path, config, name, out, client)
    except (ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"engine      {'stream' if dask is None else 'dask'}")
    fp = report.fingerprint
    typer.echo(f"dataset     {fp.dataset} ({fp.rows:,} events, hash {fp.content_hash})")
    typer.echo(
        f"rows        read {report.rows_read:,}  kept {report.rows_kept:,}  {report.dropped}"
    )
    for split, n in report.samples.items():
        typer.echo(f"{split:<11} {n:>9,} samples")
    typer.echo(
        f"buckets     {report.buckets}  seconds {report.seconds:.1f}  peak {report.peak_rss_mb:,.0f} MB"
    )
    typer.echo(f"written     {out}")
