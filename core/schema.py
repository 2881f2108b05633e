"""Canonical event schema shared by loaders, features, serving and monitoring.

Every loader returns a ``pandas.DataFrame`` with exactly :data:`EVENT_COLUMNS` (required
first, optional after) and the dtypes below. Ids are strings so that 19-digit REES46
category ids survive; timestamps are timezone-aware UTC.
"""

from __future__ import annotations

import pandas as pd

#: Behaviours the product understands, in index order. Index 0 is reserved for padding,
#: so behaviour ``b`` is encoded as ``BEHAVIORS.index(b) + 1``.
BEHAVIORS: tuple[str, ...] = ("view", "fav", "cart", "buy", "search", "review")
#: The funnel behaviours every dataset maps onto; period features count these four.
CORE_BEHAVIORS: tuple[str, ...] = ("view", "fav", "cart", "buy")
PAD = 0

REQUIRED_COLUMNS: tuple[str, ...] = ("user_id", "item_id", "category_id", "behavior", "timestamp")
# ``text`` is the event's own text (a review, a search query); ``item_text`` is an item
# attribute (title, category path text), like ``brand`` and ``price``.
OPTIONAL_COLUMNS: tuple[str, ...] = ("price", "brand", "session_id", "text", "item_text")
#: Free-text columns: validated for length and undecodable characters by the loaders.
TEXT_COLUMNS: tuple[str, ...] = ("text", "item_text")
EVENT_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

STRING_COLUMNS: tuple[str, ...] = (
    "user_id",
    "item_id",
    "category_id",
    "behavior",
    "brand",
    "session_id",
    "text",
    "item_text",
)


def behavior_index(behavior: str) -> int:
    """Return the 1-based index of a behaviour (0 is padding).

    Raises:
        ValueError: if ``behavior`` is not one of :data:`BEHAVIORS`.
    """
    try:
        return BEHAVIORS.index(behavior) + 1
    except ValueError:
        raise ValueError(
            f"unknown behavior {behavior!r}; expected one of {', '.join(BEHAVIORS)}"
        ) from None


def empty_events() -> pd.DataFrame:
    """Return an empty frame with the canonical columns and dtypes."""
    return conform(pd.DataFrame({c: [] for c in EVENT_COLUMNS}))


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with exactly the canonical columns, in order, with canonical dtypes.

    Missing optional columns are added as nulls; extra columns are dropped. Required
    columns must be present (loaders validate before calling this).
    """
    out = pd.DataFrame(index=frame.index)
    for col in EVENT_COLUMNS:
        if col in frame.columns:
            out[col] = frame[col]
        elif col in OPTIONAL_COLUMNS:
            out[col] = pd.Series(pd.NA, index=frame.index)
        else:
            raise KeyError(f"missing required column {col!r}")
    for col in STRING_COLUMNS:
        out[col] = out[col].astype("string")
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True)
    out["price"] = pd.to_numeric(out["price"], errors="coerce").astype("float64")
    return out.reset_index(drop=True)
