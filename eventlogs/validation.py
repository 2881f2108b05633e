"""Row-level validation of event logs: what was read, what was kept, and why rows were dropped.

Every loader funnels its canonical frame through :func:`clean_events`. Each dropped row is
counted under exactly one reason (the first that applies, in :data:`DROP_REASONS` order), so
``rows_read == rows_kept + sum(dropped.values())`` always holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.config import DataConfig

#: Why a row can be dropped, in the order the checks run.
DROP_REASONS: tuple[str, ...] = (
    "missing_id",
    "unparseable_time",
    "unknown_behavior",
    "duplicate",
    "outside_window",
)
#: Requested filtering, not bad data: these do not count against ``max_drop_share``.
_REQUESTED_REASONS: frozenset[str] = frozenset({"outside_window"})
_ID_COLUMNS: tuple[str, ...] = ("user_id", "item_id", "category_id")


class DataValidationError(ValueError):
    """An event file cannot be turned into canonical events (the message says where and why)."""


@dataclass
class ValidationReport:
    """Counts for one loaded file.

    Attributes:
        source: the file that was read.
        format: the :data:`core.config.DataFormat` used.
        rows_read: data rows parsed from the file.
        rows_kept: rows in the canonical output.
        dropped: rows dropped per reason (every reason of :data:`DROP_REASONS` is present).
        notes: decisions the reader should know about (e.g. repeats kept).
    """

    source: str
    format: str
    rows_read: int = 0
    rows_kept: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    notes: list[str] = field(default_factory=list)

    @property
    def rows_dropped(self) -> int:
        """Total rows dropped over all reasons."""
        return sum(self.dropped.values())

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready mapping of the report."""
        return {
            "source": self.source,
            "format": self.format,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_dropped": self.rows_dropped,
            "dropped": dict(self.dropped),
            "notes": list(self.notes),
        }

    def to_text(self) -> str:
        """Return a readable table of the counts."""
        width = max(len(r) for r in DROP_REASONS) + 4

        def line(label: str, count: int) -> str:
            share = f"{count / self.rows_read:8.2%}" if self.rows_read else "       -"
            return f"{label:<{width}}{count:>12,}  {share}"

        lines = [f"source: {self.source}", f"format: {self.format}", ""]
        lines.append(line("rows read", self.rows_read))
        lines.append(line("rows kept", self.rows_kept))
        lines.append(line("rows dropped", self.rows_dropped))
        lines.extend(line(f"  {reason}", self.dropped.get(reason, 0)) for reason in DROP_REASONS)
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)


def require_columns(found: Iterable[str], required: Iterable[str], source: str) -> None:
    """Raise :class:`DataValidationError` naming the missing columns and the ones found."""
    found = list(found)
    missing = [c for c in required if c not in found]
    if not missing:
        return
    hint = ""
    if len(found) == 1 and any(sep in found[0] for sep in ("\t", ";", "|")):
        hint = " (one column holding separators: is the delimiter wrong? expected ',')"
    raise DataValidationError(
        f"{source}: missing required column(s) {', '.join(map(repr, missing))}; "
        f"found {', '.join(map(repr, found))}{hint}"
    )


def window_bound(value: str | None, name: str) -> pd.Timestamp | None:
    """Parse ``data.<name>`` (ISO, naive means UTC) into a UTC timestamp; ``None`` stays None."""
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except ValueError as exc:
        raise DataValidationError(f"data.{name} {value!r} is not an ISO date/time") from exc
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _drop(
    frame: pd.DataFrame, bad: pd.Series | np.ndarray, reason: str, report: ValidationReport
) -> pd.DataFrame:
    mask = np.asarray(bad, dtype=bool)
    report.dropped[reason] += int(mask.sum())
    return frame[~mask] if mask.any() else frame


def clean_events(
    frame: pd.DataFrame,
    report: ValidationReport,
    config: DataConfig,
    *,
    drop_duplicates: bool = True,
) -> pd.DataFrame:
    """Drop invalid rows from a canonical-named frame, counting each under one reason.

    Args:
        frame: canonical columns; ``timestamp`` already parsed (NaT where unparseable) and
            ``behavior`` already mapped (missing where the source value was unknown).
        report: filled in place (``rows_read``, ``rows_kept``, ``dropped``).
        config: window bounds and ``max_drop_share``.
        drop_duplicates: drop exact duplicate rows (off for day-resolution logs, where
            repeats are genuine repeated actions).

    Returns:
        The kept rows.

    Raises:
        DataValidationError: if more than ``config.max_drop_share`` of the rows were dropped
            for data-quality reasons (``outside_window`` is requested filtering and excluded).
    """
    report.rows_read = len(frame)
    missing = np.zeros(len(frame), dtype=bool)
    per_column = {}
    for col in _ID_COLUMNS:
        values = frame[col]
        empty = values.isna().to_numpy() | values.eq("").fillna(True).to_numpy(dtype=bool)
        per_column[col] = int(empty.sum())
        missing |= empty
    if missing.any():
        counts = ", ".join(f"{col} {n:,}" for col, n in per_column.items())
        report.notes.append(f"missing_id per column (a row may miss several): {counts}")
    frame = _drop(frame, missing, "missing_id", report)
    frame = _drop(frame, frame["timestamp"].isna(), "unparseable_time", report)
    frame = _drop(frame, frame["behavior"].isna(), "unknown_behavior", report)
    if drop_duplicates:
        frame = _drop(frame, find_duplicates(frame), "duplicate", report)
    start = window_bound(config.window_start, "window_start")
    end = window_bound(config.window_end, "window_end")
    if start is not None or end is not None:
        outside = pd.Series(False, index=frame.index)
        if start is not None:
            outside |= frame["timestamp"] < start
        if end is not None:
            outside |= frame["timestamp"] >= end
        frame = _drop(frame, outside, "outside_window", report)
    report.rows_kept = len(frame)
    check_drop_share(report, config.max_drop_share)
    return frame


def _codes(values: pd.Series) -> np.ndarray:
    # Numeric ids (the usual case) cast in Arrow far faster than hashing strings.
    try:
        return pc.cast(pa.array(values.astype("string[pyarrow]").array), pa.int64()).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
        return pd.factorize(values)[0].astype("int64")


def find_duplicates(frame: pd.DataFrame) -> np.ndarray:
    """Flag rows that exactly repeat an earlier row (all columns equal).

    A cheap key (time, user, item) finds candidate rows first; only those are compared in
    full, which keeps this fast on tens of millions of rows.
    """
    key = frame["timestamp"].to_numpy(dtype="int64", na_value=0).copy()
    for col in ("user_id", "item_id"):
        key = key * 1_000_003 + _codes(frame[col])  # wrapping overflow is fine for a hash
    candidates = pd.Series(key).duplicated(keep=False).to_numpy()
    flags = np.zeros(len(frame), dtype=bool)
    if candidates.any():
        flags[candidates] = frame[candidates].duplicated(keep="first").to_numpy()
    return flags


def check_drop_share(report: ValidationReport, max_share: float) -> None:
    """Raise if more than ``max_share`` of the rows were dropped for data-quality reasons."""
    bad = {r: n for r, n in report.dropped.items() if n and r not in _REQUESTED_REASONS}
    total = sum(bad.values())
    if report.rows_read and total / report.rows_read > max_share:
        why = ", ".join(f"{reason} {count:,}" for reason, count in bad.items())
        raise DataValidationError(
            f"{report.source}: {total:,} of {report.rows_read:,} rows "
            f"({total / report.rows_read:.1%}) would be dropped ({why}), more than "
            f"data.max_drop_share={max_share:.1%}"
        )
