"""Drop reasons, failure messages and the drop-share limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import DataConfig
from eventlogs.loaders import load_events
from eventlogs.validation import DROP_REASONS, DataValidationError, ValidationReport

HEAD = "user_id,item_id,category_id,behavior_type,timestamp\n"
GOOD = "1,100,7,pv,1511544070\n"


def write(tmp_path: Path, text: str | bytes, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_every_drop_reason_is_counted_and_rows_sum(tmp_path):
    rows = [
        GOOD,
        "2,101,7,pv,1511544071\n",
        "2,101,7,pv,1511544071\n",  # duplicate
        ",102,7,pv,1511544072\n",  # missing_id
        "3,103,7,pv,not-a-time\n",  # unparseable_time
        "4,104,7,wink,1511544073\n",  # unknown_behavior
        "5,105,7,buy,1400000000\n",  # outside_window (2014)
    ]
    cfg = DataConfig(format="taobao", max_drop_share=1.0, window_start="2017-11-01")
    report = load_events(write(tmp_path, HEAD + "".join(rows)), cfg).report
    assert report.dropped == {
        "missing_id": 1,
        "unparseable_time": 1,
        "unknown_behavior": 1,
        "duplicate": 1,
        "outside_window": 1,
    }
    assert report.rows_read == 7 and report.rows_kept == 2
    assert report.rows_read == report.rows_kept + sum(report.dropped.values())


def test_window_end_is_exclusive(tmp_path):
    text = HEAD + "1,1,7,pv,1511544000\n1,2,7,pv,1511544060\n"
    cfg = DataConfig(format="taobao", window_end="2017-11-24T17:21:00Z", max_drop_share=0.0)
    report = load_events(write(tmp_path, text), cfg).report
    assert (report.rows_kept, report.dropped["outside_window"]) == (1, 1)


def test_drop_share_limit(tmp_path):
    text = HEAD + GOOD * 1 + "".join(f"{i},9,7,wink,1511544070\n" for i in range(2, 5))
    path = write(tmp_path, text)
    with pytest.raises(
        DataValidationError, match=r"3 of 4 rows.*unknown_behavior 3.*max_drop_share"
    ):
        load_events(path, DataConfig(format="taobao", max_drop_share=0.5))
    assert load_events(path, DataConfig(format="taobao", max_drop_share=0.75)).report.rows_kept == 1


def test_missing_column_lists_found(tmp_path):
    path = write(tmp_path, "user_id,item_id,category_id,timestamp\n1,2,3,1511544070\n")
    with pytest.raises(DataValidationError, match=r"t\.csv.*'behavior_type'.*found 'user_id'"):
        load_events(path, DataConfig(format="taobao"))


@pytest.mark.parametrize("text", ["", HEAD, "\n"])
def test_empty_file(tmp_path, text):
    with pytest.raises(DataValidationError, match=r"t\.csv.*(empty|no data rows)"):
        load_events(write(tmp_path, text), DataConfig(format="taobao"))


def test_truncated_last_line(tmp_path):
    path = write(tmp_path, HEAD + GOOD + "2,101,75")
    with pytest.raises(DataValidationError, match=r"t\.csv: malformed CSV.*Expected 5 columns"):
        load_events(path, DataConfig(format="taobao"))


def test_non_utf8_bytes_name_the_column(tmp_path):
    path = write(tmp_path, (HEAD + GOOD).encode() + b"2,101,7,p\xff\xfev,1511544071\n")
    with pytest.raises(
        DataValidationError, match=r"t\.csv: bytes that are not UTF-8.*'behavior_type'"
    ):
        load_events(path, DataConfig(format="taobao"))


def test_wrong_delimiter(tmp_path):
    path = write(tmp_path, HEAD.replace(",", "\t") + GOOD.replace(",", "\t"))
    with pytest.raises(DataValidationError, match=r"t\.csv.*missing required column.*delimiter"):
        load_events(path, DataConfig(format="taobao"))


def test_unparseable_parquet(tmp_path):
    path = write(tmp_path, b"PAR1 not really", "t.parquet")
    with pytest.raises(DataValidationError, match=r"t\.parquet: unreadable Parquet"):
        load_events(path, DataConfig(format="taobao"))


def test_report_text_and_dict():
    report = ValidationReport(source="x.csv", format="taobao", rows_read=10, rows_kept=8)
    report.dropped["duplicate"] = 2
    text = report.to_text()
    assert "x.csv" in text and "duplicate" in text and "20.00%" in text
    data = report.to_dict()
    assert data["rows_dropped"] == 2 and set(data["dropped"]) == set(DROP_REASONS)
