"""The review-log format and the free-text checks (length limit, undecodable characters)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.config import DataConfig
from core.schema import EVENT_COLUMNS
from eventlogs.loaders import load_events, write_events
from eventlogs.validation import DataValidationError

HEAD = "user_id,item_id,timestamp,rating,summary,review_text\n"
ROWS = (
    'u1,0123456789,1345161600,4.0,Nice mic,"Works, sounds fine."\n'
    "u1,B002,1345161600,5.0,Good amp,\n"
    "u2,B002,1345248000,3.0,,Just ok\n"
)


def write(tmp_path: Path, text: str | bytes, name: str = "reviews.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def reviews() -> DataConfig:
    return DataConfig(format="amazon_reviews")


def test_reviews_become_buys_with_text(tmp_path):
    result = load_events(write(tmp_path, HEAD + ROWS), reviews())
    ev = result.events
    assert list(ev.columns) == list(EVENT_COLUMNS)
    assert ev["item_id"].tolist() == ["0123456789", "B002", "B002"]  # digits stay strings
    assert ev["category_id"].tolist() == ev["item_id"].tolist()
    assert set(ev["behavior"]) == {"buy"}
    assert ev["text"].tolist() == ["Nice mic\nWorks, sounds fine.", "Good amp", "Just ok"]
    assert ev["timestamp"].iloc[2] == pd.Timestamp("2012-08-18", tz="UTC")
    assert any("category_id = item_id" in note for note in result.report.notes)


def test_reviews_without_any_text_keep_the_row(tmp_path):
    ev = load_events(write(tmp_path, HEAD + "u1,B1,1345161600,4.0,,\n"), reviews()).events
    assert len(ev) == 1 and pd.isna(ev["text"].iloc[0])


def test_reviews_require_their_columns(tmp_path):
    with pytest.raises(DataValidationError, match="'timestamp'"):
        load_events(write(tmp_path, "user_id,item_id,rating\nu,i,4\n"), reviews())


def test_reviews_reject_a_brand_category(tmp_path):
    cfg = DataConfig(format="amazon_reviews", category_key="brand")
    with pytest.raises(DataValidationError, match="category_key"):
        load_events(write(tmp_path, HEAD + ROWS), cfg)


def test_long_text_is_cut_and_counted_not_dropped(tmp_path):
    long = "x" * 50
    text = HEAD + f"u1,B1,1345161600,4.0,s,{long}\nu1,B2,1345161600,4.0,s,short\n"
    cfg = DataConfig(format="amazon_reviews", max_text_chars=20)
    result = load_events(write(tmp_path, text), cfg)
    assert len(result.events) == 2
    assert result.events["text"].str.len().max() == 20
    note = next(n for n in result.report.notes if "max_text_chars" in n)
    assert "'text'" in note and "1 rows" in note and "reviews.csv" in note


def test_replacement_characters_are_reported(tmp_path):
    text = HEAD + "u1,B1,1345161600,4.0,s,caf\ufffd au lait\nu1,B2,1345161600,4.0,s,ok\n"
    result = load_events(write(tmp_path, text), reviews())
    assert len(result.events) == 2
    note = next(n for n in result.report.notes if "U+FFFD" in n)
    assert "'text'" in note and "1 rows" in note


def test_undecodable_bytes_name_the_column(tmp_path):
    raw = (HEAD + "u1,B1,1345161600,4.0,s,").encode() + b"caf\xe9\n"
    with pytest.raises(DataValidationError, match="review_text"):
        load_events(write(tmp_path, raw), reviews())


def test_text_round_trips_through_canonical_files(tmp_path):
    original = load_events(write(tmp_path, HEAD + ROWS), reviews()).events
    target = tmp_path / "out.parquet"
    write_events(original, target)
    back = load_events(target, DataConfig(format="canonical")).events
    pd.testing.assert_frame_equal(back, original)


@pytest.mark.shared_data
def test_real_review_log_loads_whole(shared_data):
    path = shared_data / "amazon_musical_instruments_5core" / "reviews.csv"
    result = load_events(path, reviews())
    assert result.report.rows_read == result.report.rows_kept == 7_216
    assert result.events["item_id"].nunique() == 899
    assert result.events["text"].notna().all()


@pytest.mark.shared_data
def test_real_rees46_item_attributes(shared_data):
    ev = load_events(
        shared_data / "rees46_2019oct_head" / "events.csv", DataConfig(format="rees46")
    )
    events = ev.events
    assert events["item_text"].str.contains(".", regex=False).any()
    assert events["brand"].notna().mean() > 0.5 and events["price"].notna().all()
