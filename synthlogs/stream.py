"""Write a synthetic event log far larger than memory to one Parquet file, shard by shard.

Users are generated in shards of ``users_per_shard``: every shard shares one world (groups,
leaf preferences, items, their categories, prices and names, see
:func:`synthlogs.generator.draw_world`) and draws its users from its own seed stream, so a shard is a
faithful sample of the config's users. User and session ids continue across shards. The
draws differ from :func:`synthlogs.generator.generate_events` (which keeps its own seed layout so
existing seeded logs stay the same): the two agree in distribution, not row for row.

Row order: sorted by timestamp *within* each shard; the file as a whole is a concatenation
of shards (users ``u0000000..`` first), so it is not globally sorted by time. Readers that
need time order must sort (or process per user, since a user never spans two shards).

Ground truth: only the compact per-user table (``SynthTruth.users``: user_id, activity,
join_date, churn_day, churn_date, shifted, shift_group) goes to ``<stem>.truth.parquet``;
the per-day interest tensor that :meth:`SynthTruth.save` writes is never materialised.

Example::

    summary = write_synthetic_parquet(config_for_events(100_000_000), Path("big.parquet"))
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.progress import Advance
from core.schema import CORE_BEHAVIORS
from synthlogs.generator import SynthConfig, draw_world, generate_shard

_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class SynthStreamSummary:
    """What :func:`write_synthetic_parquet` wrote.

    Attributes:
        path: the event file; truth_path: the per-user truth file (None if not written).
        events: rows written; users: users in the config; active_users: users with events.
        shards: shards generated; seconds: wall time; bytes: size of the event file.
        behavior_shares: share of each core behaviour among the events.
        categories: distinct categories seen; shifted: users in the injected shift.
        first, last: earliest and latest timestamp (None when there are no events).
    """

    path: Path
    truth_path: Path | None
    events: int
    users: int
    active_users: int
    shards: int
    seconds: float
    bytes: int
    behavior_shares: dict[str, float]
    categories: int
    shifted: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None


def truth_file(path: Path) -> Path:
    """Return where the truth of event file ``path`` goes: ``<stem>.truth.parquet``."""
    return path.with_name(f"{path.stem}.truth.parquet")


@dataclass
class _Tally:
    """Running totals over shards, from Arrow compute (no Python objects per row)."""

    events: int = 0
    active_users: int = 0
    shifted: int = 0
    shards: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    categories: set[str] = field(default_factory=set)
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None

    def add(self, table: pa.Table, n_shifted: int) -> None:
        self.shards += 1
        self.events += table.num_rows
        self.shifted += n_shifted
        if table.num_rows == 0:
            return
        # A user never spans two shards, so per-shard distinct counts add up.
        self.active_users += pc.count_distinct(table["user_id"]).as_py()
        for item in pc.value_counts(table["behavior"]).to_pylist():
            self.counts[item["values"]] = self.counts.get(item["values"], 0) + item["counts"]
        self.categories.update(pc.unique(table["category_id"]).to_pylist())
        bounds = pc.min_max(table["timestamp"]).as_py()
        low, high = pd.Timestamp(bounds["min"]), pd.Timestamp(bounds["max"])
        self.first = low if self.first is None else min(self.first, low)
        self.last = high if self.last is None else max(self.last, high)


def _check(config: SynthConfig, path: Path, users_per_shard: int, row_group_rows: int) -> None:
    if path.suffix.lower() not in _SUFFIXES:
        raise ValueError(f"{path}: unsupported suffix {path.suffix!r}; use .parquet")
    if users_per_shard < 1:
        raise ValueError(f"users_per_shard must be >= 1, got {users_per_shard}")
    if row_group_rows < 1:
        raise ValueError(f"row_group_rows must be >= 1, got {row_group_rows}")


def write_synthetic_parquet(
    config: SynthConfig,
    path: Path,
    *,
    users_per_shard: int = 100_000,
    row_group_rows: int = 1_000_000,
    truth: bool = True,
    advance: Advance | None = None,
) -> SynthStreamSummary:
    """Generate ``config``'s events shard by shard and append them to one Parquet file.

    Memory holds one shard at a time (about ``users_per_shard`` users' events), never the
    whole log. The same config and ``users_per_shard`` always give the identical file.

    Args:
        config: generator settings; ``config.n_users`` is the total over all shards.
        path: the ``.parquet`` file to write (replaced only once complete).
        users_per_shard: users generated at once; bounds peak memory.
        row_group_rows: maximum rows per Parquet row group.
        truth: also write the per-user truth table to :func:`truth_file` of ``path``.
        advance: told ``(users written, users in all)`` after each shard (a progress bar).

    Returns:
        A :class:`SynthStreamSummary` of what was written.

    Raises:
        ValueError: bad suffix, ``users_per_shard`` or ``row_group_rows``.
    """
    _check(config, path, users_per_shard, row_group_rows)
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    truth_out = truth_file(path) if truth else None
    # Write beside the targets and rename at the end: a failed run leaves no half file.
    partial = path.with_name(f".{path.name}.partial")
    partial_truth = path.with_name(f".{path.name}.truth.partial")
    try:
        tally = _write_shards(
            config,
            partial,
            partial_truth if truth else None,
            users_per_shard,
            row_group_rows,
            advance or (lambda _done, _total: None),
        )
    except BaseException:
        partial.unlink(missing_ok=True)
        partial_truth.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    if truth_out is not None:
        os.replace(partial_truth, truth_out)
    total = max(tally.events, 1)
    return SynthStreamSummary(
        path=path,
        truth_path=truth_out,
        events=tally.events,
        users=config.n_users,
        active_users=tally.active_users,
        shards=tally.shards,
        seconds=time.perf_counter() - started,
        bytes=path.stat().st_size,
        behavior_shares={b: tally.counts.get(b, 0) / total for b in CORE_BEHAVIORS},
        categories=len(tally.categories),
        shifted=tally.shifted,
        first=tally.first,
        last=tally.last,
    )


def _write_shards(
    config: SynthConfig,
    path: Path,
    truth_path: Path | None,
    users_per_shard: int,
    row_group_rows: int,
    advance: Advance,
) -> _Tally:
    """Generate every shard and append its events (and user truth) to the open writers."""
    world = draw_world(config)
    tally = _Tally()
    writer: pq.ParquetWriter | None = None
    truth_writer: pq.ParquetWriter | None = None
    first_session = 0
    try:
        for shard, first_user in enumerate(range(0, config.n_users, users_per_shard)):
            n_users = min(users_per_shard, config.n_users - first_user)
            result = generate_shard(config, world, shard, first_user, n_users, first_session)
            first_session += result.n_sessions
            schema = writer.schema if writer else None
            table = pa.Table.from_pandas(result.events, schema=schema, preserve_index=False)
            del result.events  # the Arrow copy is all we need now
            writer = writer or pq.ParquetWriter(path, table.schema)
            if table.num_rows:
                writer.write_table(table, row_group_size=row_group_rows)
            users = result.truth.users
            if truth_path is not None:
                schema = truth_writer.schema if truth_writer else None
                people = pa.Table.from_pandas(users, schema=schema, preserve_index=False)
                truth_writer = truth_writer or pq.ParquetWriter(truth_path, people.schema)
                truth_writer.write_table(people, row_group_size=row_group_rows)
            tally.add(table, int(users["shifted"].sum()))
            del table, result
            advance(first_user + n_users, config.n_users)
    finally:
        for open_writer in (writer, truth_writer):
            if open_writer is not None:
                open_writer.close()
    return tally
