"""The review-log layout (``--format amazon_reviews``): one review per row, with its text.

Source columns (``shared/data/amazon_musical_instruments_5core/SOURCE.md``): ``user_id``,
``item_id``, ``timestamp`` (Unix seconds, day resolution), ``rating``, ``summary``,
``review_text``. A review is counted as a ``buy`` of its item; the event's ``text`` is the
summary and the body joined by a newline (either may be empty). The log has no category or
title, so ``category_id`` is the item id itself: 899 items are few enough to rank directly,
and "next category" then means "next item".
"""

from __future__ import annotations

import pandas as pd

from core.config import DataConfig
from eventlogs.validation import DataValidationError

REQUIRED: tuple[str, ...] = ("user_id", "item_id", "timestamp")
COLUMNS: tuple[str, ...] = ("user_id", "item_id", "timestamp", "rating", "summary", "review_text")


def review_text(raw: pd.DataFrame) -> pd.Series:
    """``summary`` and ``review_text`` joined by a newline; missing only when both are."""
    parts = [raw[c].astype("string[pyarrow]") for c in ("summary", "review_text") if c in raw]
    if not parts:
        return pd.Series(pd.NA, index=raw.index, dtype="string[pyarrow]")
    joined = parts[0].fillna("")
    for part in parts[1:]:
        joined = joined.str.cat(part.fillna(""), sep="\n")
    joined = joined.str.strip()
    return joined.mask(joined.eq(""))


def review_events(
    raw: pd.DataFrame, config: DataConfig, source: str
) -> tuple[pd.DataFrame, list[str]]:
    """Amazon review log with text: item = category = ASIN, every review a ``buy``.

    ``timestamp`` is left to the caller (``eventlogs.formats`` parses Unix seconds).
    """
    if config.category_key not in ("category_id", "item_id"):
        raise DataValidationError(
            f"{source}: data.category_key={config.category_key!r} is not available in "
            "format amazon_reviews (no brand); use item_id"
        )
    out = pd.DataFrame({"user_id": raw["user_id"], "item_id": raw["item_id"]})
    out["category_id"] = raw["item_id"]
    out["behavior"] = pd.Series("buy", index=raw.index, dtype="string[pyarrow]")
    out["text"] = review_text(raw)
    notes = [
        "every review is counted as a buy; category_id = item_id (the log has no category)",
        "text = summary + newline + review_text (a review's own text: only later "
        "predictions may read it)",
    ]
    if "rating" in raw.columns:
        rating = pd.to_numeric(raw["rating"], errors="coerce")
        bad = int((raw["rating"].notna() & ~rating.between(1, 5)).sum())
        if bad:
            notes.append(f"{source}: column 'rating': {bad:,} values outside 1..5 (ignored)")
        notes.append("rating is read and checked but not part of the canonical schema")
    return out, notes
