"""Source layouts: how each supported event log maps onto the canonical schema.

Each converter takes the raw table (every column read as strings) and returns a frame with
canonical column names, ``timestamp`` parsed to UTC (NaT where unparseable) and ``behavior``
mapped (missing where the source value is unknown). Dropping and counting happen later, in
:func:`eventlogs.validation.clean_events`, so nothing is lost silently here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.config import DataConfig
from core.schema import BEHAVIORS, EVENT_COLUMNS, REQUIRED_COLUMNS
from eventlogs.reviews import COLUMNS as REVIEW_COLUMNS
from eventlogs.reviews import REQUIRED as REVIEW_REQUIRED
from eventlogs.reviews import review_events
from eventlogs.tables import read_table
from eventlogs.validation import DataValidationError, require_columns

Converter = Callable[[pd.DataFrame, DataConfig, str], tuple[pd.DataFrame, list[str]]]

TAOBAO_BEHAVIORS = {"pv": "view", "fav": "fav", "cart": "cart", "buy": "buy"}
TMALL_BEHAVIORS = {"0": "view", "1": "buy", "2": "fav", "3": "cart"}
# remove_from_cart (full REES46 data) has no canonical behaviour: it is counted as unknown.
REES46_BEHAVIORS = {"view": "view", "cart": "cart", "purchase": "buy"}


@dataclass(frozen=True)
class FormatSpec:
    """One source layout.

    Attributes:
        required: source columns that must be present.
        names: column names for files without a header (``None``: a header is mandatory).
        drop_duplicates: drop exact repeats (off where repeats are genuine actions).
        convert: raw table -> canonical-named frame plus notes for the report.
    """

    required: tuple[str, ...]
    names: tuple[str, ...] | None
    drop_duplicates: bool
    convert: Converter


def arrow_strings(values: pd.Series) -> pa.ChunkedArray:
    """Return ``values`` as an Arrow string array (zero-copy for ``string[pyarrow]``)."""
    if not isinstance(values.dtype, pd.StringDtype) or values.dtype.storage != "pyarrow":
        values = values.astype("string[pyarrow]")
    return pa.array(values.array)


def from_arrow(values: pa.ChunkedArray | pa.Array, index: pd.Index) -> pd.Series:
    """Wrap an Arrow string array as a ``string[pyarrow]`` Series."""
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array(values)), index=index)


def parse_unique(values: pd.Series, parse: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """Apply ``parse`` to the distinct values only (logs repeat dates and times heavily)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    parsed = parse(pd.Series(uniques, dtype=values.dtype)).to_numpy()
    out = np.full(len(values), np.datetime64("NaT"), dtype=parsed.dtype)
    hit = codes >= 0
    out[hit] = parsed[codes[hit]]
    return pd.Series(pd.DatetimeIndex(out).tz_localize("UTC"), index=values.index)


def unix_seconds(values: pd.Series) -> pd.Series:
    """Parse Unix seconds (digit strings or numbers); anything else becomes NaT."""
    if pd.api.types.is_numeric_dtype(values.dtype):
        secs = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        valid = np.isfinite(secs)
        whole = np.where(valid, secs, 0).astype("int64")
    else:
        text = arrow_strings(values)
        # Digit-only strings of at most 11 characters cast safely; the rest are unparseable.
        ok = pc.and_kleene(pc.utf8_is_digit(text), pc.less_equal(pc.utf8_length(text), 11))
        ints = pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), pa.int64())
        valid = ints.is_valid().to_numpy(zero_copy_only=False)
        whole = ints.fill_null(0).to_numpy()
    valid &= np.abs(whole) < 9_000_000_000  # beyond this datetime64[ns] overflows
    stamps = (np.where(valid, whole, 0) * 1_000_000_000).view("M8[ns]")
    stamps[~valid] = np.datetime64("NaT")
    return pd.Series(pd.DatetimeIndex(stamps).tz_localize("UTC"), index=values.index)


def _naive(values: pd.Series, **kwargs: object) -> pd.Series:
    return pd.to_datetime(values, errors="coerce", utc=True, **kwargs).dt.tz_localize(None)


def to_float(values: pd.Series) -> pd.Series:
    """Parse numbers, fast in Arrow; unparseable values become NaN (price is optional)."""
    try:
        parsed = pc.cast(arrow_strings(values), pa.float64()).to_numpy(zero_copy_only=False)
        return pd.Series(parsed, index=values.index)
    except pa.ArrowInvalid:
        return pd.to_numeric(values, errors="coerce").astype("float64")


def lookup(values: pd.Series, mapping: dict[str, str]) -> pd.Series:
    """Map source strings through ``mapping``; values not in it become missing."""
    keys = pa.array(list(mapping), pa.string())
    targets = pa.array([str(v) for v in mapping.values()], pa.string())
    position = pc.index_in(arrow_strings(values), value_set=keys)
    return from_arrow(pc.take(targets, position), values.index)


def _category(frame: pd.DataFrame, key: str, available: dict[str, str], source: str) -> pd.Series:
    if key not in available:
        raise DataValidationError(
            f"{source}: data.category_key={key!r} is not available in this format; "
            f"choose one of {', '.join(available)}"
        )
    return frame[available[key]]


def convert_taobao(
    raw: pd.DataFrame, config: DataConfig, source: str
) -> tuple[pd.DataFrame, list[str]]:
    """Taobao UserBehavior: ``pv`` is a view; timestamps are Unix seconds."""
    out = pd.DataFrame({"user_id": raw["user_id"], "item_id": raw["item_id"]})
    keys = {"category_id": "category_id", "item_id": "item_id"}
    out["category_id"] = _category(raw, config.category_key, keys, source)
    out["behavior"] = lookup(raw["behavior_type"], TAOBAO_BEHAVIORS)
    out["timestamp"] = unix_seconds(raw["timestamp"])
    return out, []


def convert_tmall(
    raw: pd.DataFrame, config: DataConfig, source: str
) -> tuple[pd.DataFrame, list[str]]:
    """Tmall 2014: brand is the only item attribute, so it is item, brand and category at once."""
    brand = raw["brand_id"]
    out = pd.DataFrame({"user_id": raw["user_id"], "item_id": brand, "category_id": brand})
    out["behavior"] = lookup(raw["type"], TMALL_BEHAVIORS)
    out["timestamp"] = parse_unique(
        raw["visit_datetime"], lambda v: _naive(f"{config.year}-" + v, format="%Y-%m-%d")
    )
    out["brand"] = brand
    notes = [
        f"category_id = brand_id (the log has no category or item ids); dates are M-D read "
        f"as {config.year}-M-D 00:00 UTC",
        "exact repeats kept: the log has day resolution, so repeats are repeated actions",
    ]
    return out, notes


def convert_amazon(
    raw: pd.DataFrame, config: DataConfig, source: str
) -> tuple[pd.DataFrame, list[str]]:
    """Amazon reviews: every review is counted as a ``buy`` (a review is a purchase proxy)."""
    out = pd.DataFrame({"user_id": raw["user_id"], "item_id": raw["item_id"]})
    notes = ["every review is counted as a buy"]
    if config.category_key == "brand":
        _category(raw, "brand", {"category_id": "", "item_id": ""}, source)
    if config.category_key == "category_id" and config.item_meta is not None:
        meta = read_item_meta(config.item_meta)
        out["category_id"] = lookup(raw["item_id"], meta)
        unmapped = int(out["category_id"].isna().sum())
        notes.append(
            f"categories from {config.item_meta}; {unmapped:,} rows' items not in it (dropped as missing_id)"
        )
    else:
        out["category_id"] = raw["item_id"]
        notes.append("category_id = item_id (no data.item_meta given)")
    out["behavior"] = pd.Series("buy", index=raw.index, dtype="string[pyarrow]")
    out["timestamp"] = unix_seconds(raw["time"])
    return out, notes


def read_item_meta(path: Path) -> dict[str, str]:
    """Read an item -> category table (``item_id`` plus ``i_category`` or ``category_id``)."""
    meta = read_table(path)
    column = next((c for c in ("i_category", "category_id", "category") if c in meta.columns), None)
    require_columns(meta.columns, ("item_id", column or "i_category"), str(path))
    meta = meta.dropna(subset=["item_id", column]).drop_duplicates("item_id")
    return dict(zip(meta["item_id"], meta[column], strict=True))


def convert_rees46(
    raw: pd.DataFrame, config: DataConfig, source: str
) -> tuple[pd.DataFrame, list[str]]:
    """REES46: ``purchase`` is a buy; ids stay strings (19-digit category ids)."""
    keys = {"category_id": "category_id", "item_id": "product_id", "brand": "brand"}
    out = pd.DataFrame({"user_id": raw["user_id"], "item_id": raw["product_id"]})
    out["category_id"] = _category(raw, config.category_key, keys, source)
    out["behavior"] = lookup(raw["event_type"], REES46_BEHAVIORS)
    out["timestamp"] = parse_unique(
        raw["event_time"], lambda v: _naive(v, format="%Y-%m-%d %H:%M:%S UTC")
    )
    for canonical, column in (
        ("brand", "brand"),
        ("session_id", "user_session"),
        ("item_text", "category_code"),
    ):
        if column in raw.columns:
            out[canonical] = raw[column]
    if "price" in raw.columns:
        out["price"] = to_float(raw["price"])
    return out, [
        "category_code is kept as item_text (an item attribute); user_session as session_id"
    ]


def convert_amazon_reviews(
    raw: pd.DataFrame, config: DataConfig, source: str
) -> tuple[pd.DataFrame, list[str]]:
    """The review log with text (:mod:`eventlogs.reviews`); timestamps are Unix seconds."""
    out, notes = review_events(raw, config, source)
    out["timestamp"] = unix_seconds(raw["timestamp"])
    return out, notes


def convert_generic(
    raw: pd.DataFrame, config: DataConfig, source: str
) -> tuple[pd.DataFrame, list[str]]:
    """Any layout described by ``data.column_map`` (canonical -> source) and ``data.behavior_map``.

    Unmapped canonical columns are looked up under their own name. Without a behaviour map,
    source values must already be canonical behaviours.
    """
    src = {c: config.column_map.get(c, c) for c in EVENT_COLUMNS}
    key = config.category_key
    needed = {src[c] for c in ("user_id", "item_id", "behavior", "timestamp", key)}
    require_columns(raw.columns, sorted(needed), source)
    out = pd.DataFrame({c: raw[s] for c, s in src.items() if s in raw.columns})
    out["category_id"] = raw[src[key]]
    mapping = config.behavior_map or {b: b for b in BEHAVIORS}
    wrong = sorted({v for v in mapping.values() if v not in BEHAVIORS})
    if wrong:
        raise DataValidationError(
            f"data.behavior_map targets {wrong} are not behaviours ({', '.join(BEHAVIORS)})"
        )
    out["behavior"] = lookup(raw[src["behavior"]], mapping)
    out["timestamp"] = parse_time(raw[src["timestamp"]], iso_only=False)
    if "price" in out.columns:
        out["price"] = pd.to_numeric(out["price"], errors="coerce")
    return out, []


def parse_time(values: pd.Series, *, iso_only: bool = True) -> pd.Series:
    """Parse Unix seconds if every value is numeric, else date/time strings (to UTC).

    Args:
        values: the source column.
        iso_only: accept only ISO 8601 strings (fast); else any format pandas can guess.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.to_datetime(values, utc=True)
    if pd.api.types.is_numeric_dtype(values.dtype):
        return unix_seconds(values)
    if pc.all(pc.utf8_is_digit(arrow_strings(values))).as_py() is not False:
        return unix_seconds(values)
    return parse_dates(values, iso_only=iso_only)


def parse_dates(values: pd.Series, *, iso_only: bool = True) -> pd.Series:
    """Parse date/time strings (ISO 8601, or any format pandas can guess) to naive UTC."""
    fmt = "ISO8601" if iso_only else "mixed"
    return parse_unique(values, lambda v: _naive(v, format=fmt))


def convert_canonical(
    raw: pd.DataFrame, config: DataConfig, source: str
) -> tuple[pd.DataFrame, list[str]]:
    """Files written by :func:`eventlogs.loaders.write_events` (repeats kept: round trips are lossless)."""
    out = raw.copy()
    out["behavior"] = lookup(raw["behavior"], {b: b for b in BEHAVIORS})
    out["timestamp"] = parse_time(raw["timestamp"])
    return out, []


FORMATS: dict[str, FormatSpec] = {
    "taobao": FormatSpec(
        ("user_id", "item_id", "category_id", "behavior_type", "timestamp"),
        ("user_id", "item_id", "category_id", "behavior_type", "timestamp"),
        True,
        convert_taobao,
    ),
    "tmall": FormatSpec(
        ("user_id", "brand_id", "type", "visit_datetime"),
        ("user_id", "brand_id", "type", "visit_datetime"),
        False,
        convert_tmall,
    ),
    "amazon": FormatSpec(
        ("user_id", "item_id", "time"), ("user_id", "item_id", "time"), True, convert_amazon
    ),
    "rees46": FormatSpec(
        ("event_time", "event_type", "product_id", "category_id", "user_id"),
        (
            "event_time",
            "event_type",
            "product_id",
            "category_id",
            "category_code",
            "brand",
            "price",
            "user_id",
            "user_session",
        ),
        True,
        convert_rees46,
    ),
    "amazon_reviews": FormatSpec(REVIEW_REQUIRED, REVIEW_COLUMNS, True, convert_amazon_reviews),
    "generic": FormatSpec((), None, True, convert_generic),
    "canonical": FormatSpec(REQUIRED_COLUMNS, None, False, convert_canonical),
}
