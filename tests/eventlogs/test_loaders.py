"""Each source format on tiny hand-written files, plus the real samples."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.config import DataConfig
from core.schema import EVENT_COLUMNS
from eventlogs.loaders import load_events, write_events
from eventlogs.tables import read_table
from eventlogs.validation import DataValidationError

TAOBAO_ROWS = "1,100,7,pv,1511544070\n1,101,7,buy,1511544080\n2,102,8,fav,1511544090\n"
BIG_CAT = "2053013552326770905"


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.mark.parametrize("header", [True, False])
def test_taobao_with_and_without_header(tmp_path, header):
    head = "user_id,item_id,category_id,behavior_type,timestamp\n" if header else ""
    result = load_events(write(tmp_path, "t.csv", head + TAOBAO_ROWS), DataConfig(format="taobao"))
    ev = result.events
    assert list(ev.columns) == list(EVENT_COLUMNS)
    assert ev["behavior"].tolist() == ["view", "buy", "fav"]
    assert ev["category_id"].tolist() == ["7", "7", "8"]
    assert ev["timestamp"].iloc[0] == pd.Timestamp("2017-11-24 17:21:10", tz="UTC")
    assert result.report.rows_read == result.report.rows_kept == 3


def test_taobao_category_key_item(tmp_path):
    cfg = DataConfig(format="taobao", category_key="item_id")
    ev = load_events(write(tmp_path, "t.csv", TAOBAO_ROWS), cfg).events
    assert ev["category_id"].tolist() == ["100", "101", "102"]


def test_tmall_codes_dates_and_repeats_kept(tmp_path):
    text = "user_id,brand_id,type,visit_datetime\n5,900,0,4-15\n5,900,0,4-15\n5,901,1,8-1\n6,900,2,6-4\n6,901,3,6-4\n"
    result = load_events(write(tmp_path, "m.csv", text), DataConfig(format="tmall", year=2013))
    ev = result.events
    assert ev["behavior"].tolist() == ["view", "view", "buy", "fav", "cart"]
    assert ev["category_id"].tolist() == ev["brand"].tolist() == ["900", "900", "901", "900", "901"]
    assert ev["timestamp"].iloc[2] == pd.Timestamp("2013-08-01", tz="UTC")
    assert result.report.dropped["duplicate"] == 0 and result.report.rows_kept == 5


def test_amazon_with_and_without_meta(tmp_path):
    inter = write(tmp_path, "i.csv", "user_id,item_id,time\n1,10,1357430400\n2,11,1357516800\n")
    meta = write(tmp_path, "meta.csv", "item_id,i_category\n10,21\n11,0\n")
    plain = load_events(inter, DataConfig(format="amazon")).events
    assert plain["behavior"].tolist() == ["buy", "buy"]
    assert plain["category_id"].tolist() == ["10", "11"]
    with_meta = load_events(inter, DataConfig(format="amazon", item_meta=meta)).events
    assert with_meta["category_id"].tolist() == ["21", "0"]
    with pytest.raises(DataValidationError, match="category_key"):
        load_events(inter, DataConfig(format="amazon", category_key="brand"))


def test_rees46_keeps_19_digit_ids_and_extras(tmp_path):
    text = (
        "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"
        f"2019-10-01 00:00:00 UTC,view,44600062,{BIG_CAT},appliances.kitchen,aqua,33.20,541312140,s1\n"
        f"2019-10-01 00:00:05 UTC,purchase,3900821,2103807459595387724,,,5,554748717,s2\n"
    )
    ev = load_events(write(tmp_path, "r.csv", text), DataConfig(format="rees46")).events
    assert ev["category_id"].tolist() == [BIG_CAT, "2103807459595387724"]
    assert ev["behavior"].tolist() == ["view", "buy"]
    assert ev["item_text"].iloc[0] == "appliances.kitchen" and pd.isna(ev["item_text"].iloc[1])
    assert ev["brand"].tolist()[0] == "aqua" and ev["text"].isna().all()
    assert ev["session_id"].tolist() == ["s1", "s2"]
    assert ev["price"].tolist() == [33.2, 5.0]
    assert ev["timestamp"].iloc[1] == pd.Timestamp("2019-10-01 00:00:05", tz="UTC")


def test_generic_column_and_behavior_maps(tmp_path):
    text = "uid,sku,cat,act,when\na,x,c1,click,2024-01-02T03:04:05Z\nb,y,c2,order,2024-01-03\n"
    cfg = DataConfig(
        format="generic",
        column_map={
            "user_id": "uid",
            "item_id": "sku",
            "category_id": "cat",
            "behavior": "act",
            "timestamp": "when",
        },
        behavior_map={"click": "view", "order": "buy"},
    )
    ev = load_events(write(tmp_path, "g.csv", text), cfg).events
    assert ev["behavior"].tolist() == ["view", "buy"]
    assert ev["timestamp"].tolist() == [
        pd.Timestamp("2024-01-02 03:04:05", tz="UTC"),
        pd.Timestamp("2024-01-03", tz="UTC"),
    ]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_then_read_canonical_round_trip(tmp_path, suffix):
    text = (
        "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"
        f"2019-10-01 00:00:00 UTC,view,1,{BIG_CAT},a.b,aqua,1.5,9,s\n"
        f"2019-10-01 00:00:00 UTC,cart,1,{BIG_CAT},,,2,9,s\n"
    )
    original = load_events(write(tmp_path, "r.csv", text), DataConfig(format="rees46")).events
    target = tmp_path / f"out{suffix}"
    write_events(original, target)
    back = load_events(target, DataConfig(format="canonical")).events
    pd.testing.assert_frame_equal(back, original)


def test_parquet_integer_ids_become_strings(tmp_path):
    frame = pd.DataFrame(
        {
            "user_id": [1],
            "item_id": [2],
            "category_id": [2053013552326770905],
            "behavior_type": ["pv"],
            "timestamp": [1511544070],
        }
    )
    frame.to_parquet(tmp_path / "t.parquet")
    ev = load_events(tmp_path / "t.parquet", DataConfig(format="taobao")).events
    assert ev["category_id"].tolist() == [BIG_CAT]


def test_read_table_reports_missing_file(tmp_path):
    with pytest.raises(DataValidationError, match="does not exist"):
        read_table(tmp_path / "nope.csv")


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("folder", "name", "fmt", "rows"),
    [
        ("taobao_userbehavior", "user_behavior.csv", "taobao", 65_132),
        ("tmall_2014_brand_log", "t_alibaba_data.csv", "tmall", 125_500),
        ("amazon_grocery_5core", "interactions.csv", "amazon", 86_111),
        ("rees46_2019oct_head", "events.csv", "rees46", 12_328),
    ],
)
def test_real_samples_validate(shared_data, folder, name, fmt, rows):
    meta = shared_data / folder / "item_meta.csv" if fmt == "amazon" else None
    result = load_events(shared_data / folder / name, DataConfig(format=fmt, item_meta=meta))
    report = result.report
    assert report.rows_read == rows
    assert report.rows_read == report.rows_kept + report.rows_dropped
    assert report.rows_kept == len(result.events) >= 0.99 * rows
    assert result.events["category_id"].notna().all()
