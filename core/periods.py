"""Vectorised building blocks for sequence features: durations, ranges and period histograms.

Everything works on events sorted by (user, time) with times as int64 nanoseconds since
the epoch (UTC), so no step loops over users or events in Python.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

HOUR_NS = 3_600_000_000_000
_PERIOD_NS = {"hour": HOUR_NS, "day": 24 * HOUR_NS, "week": 7 * 24 * HOUR_NS}


def period_ns(period: str) -> int:
    """Length of one period (``hour``/``day``/``week``) in nanoseconds."""
    try:
        return _PERIOD_NS[period]
    except KeyError:
        raise ValueError(
            f"unknown period {period!r}; expected one of {sorted(_PERIOD_NS)}"
        ) from None


def duration_ns(text: str, field: str = "duration") -> int:
    """Parse a fixed-length pandas offset string (``"3D"``, ``"12h"``) into nanoseconds.

    Raises:
        ValueError: naming ``field`` when the string is not a positive fixed duration.
    """
    try:
        value = pd.Timedelta(text)
    except (ValueError, TypeError):
        raise ValueError(f"{field}={text!r} is not a fixed duration like '3D' or '12h'") from None
    if value <= pd.Timedelta(0):
        raise ValueError(f"{field}={text!r} must be positive")
    return int(value.value)


def to_ns(timestamp: pd.Timestamp | str) -> int:
    """Return a timestamp (naive means UTC) as int64 nanoseconds since the epoch."""
    ts = pd.Timestamp(timestamp)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.as_unit("ns").value)


def search_ranges(
    time: np.ndarray, lo: np.ndarray, hi: np.ndarray, bound: int | np.ndarray
) -> np.ndarray:
    """Per range ``[lo[i], hi[i])`` of sorted times, the first offset with ``time >= bound``.

    A vectorised binary search over all ranges at once: O(n log E), no per-user loop.

    Args:
        time: (E,) int64 times, ascending within each range.
        lo: (n,) range starts.
        hi: (n,) range ends (exclusive).
        bound: time bound in nanoseconds, one for all ranges or (n,) one per range.

    Returns:
        (n,) offsets in ``lo..hi`` (``hi`` when every time in the range is below ``bound``).
    """
    if lo.shape[0] <= 8:  # a serving request: numpy's own search beats the vectorised loop
        bounds = np.broadcast_to(bound, lo.shape).tolist()
        return np.array(
            [
                a + np.searchsorted(time[a:b], x)
                for a, b, x in zip(lo.tolist(), hi.tolist(), bounds, strict=False)
            ],
            dtype=np.int64,
        )
    left, right = lo.astype(np.int64), hi.astype(np.int64)
    last = max(time.shape[0] - 1, 0)
    while True:
        active = left < right
        if not active.any():
            return left
        mid = (left + right) // 2
        below = active & (time[np.minimum(mid, last)] < bound)
        left = np.where(below, mid + 1, left)
        right = np.where(active & ~below, mid, right)


def flatten_ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expand half-open ranges ``[lo[i], hi[i])`` into (row, position) pairs.

    Returns:
        ``rows`` (T,) sample index of each position and ``pos`` (T,) event offsets.
    """
    lengths = np.maximum(hi - lo, 0)
    rows = np.repeat(np.arange(lo.shape[0]), lengths)
    first = np.cumsum(lengths) - lengths
    pos = np.arange(rows.shape[0], dtype=np.int64) - np.repeat(first - lo, lengths)
    return rows, pos


def histogram(
    rows: np.ndarray, slot: np.ndarray, value: np.ndarray, n_rows: int, n_slots: int, width: int
) -> np.ndarray:
    """Count (row, slot, value) triples into an ``(n_rows, n_slots, width)`` float32 array.

    Triples with ``slot`` outside ``0..n_slots-1`` or ``value`` outside ``0..width-1`` are
    ignored.
    """
    keep = (slot >= 0) & (slot < n_slots) & (value >= 0) & (value < width)
    flat = (rows[keep] * n_slots + slot[keep]) * width + value[keep]
    counts = np.bincount(flat, minlength=n_rows * n_slots * width)
    return counts.reshape(n_rows, n_slots, width).astype(np.float32)


def normalize_rows(counts: np.ndarray) -> np.ndarray:
    """Divide the last axis by its sum; all-zero rows stay zero."""
    total = counts.sum(axis=-1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
