"""Streaming feature building equals the in-memory path, shard for shard."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from core.arrays import SequenceArrays
from core.config import DataConfig, ProjectConfig
from core.dataset import PreparedData, prepare_dataset
from eventlogs.loaders import load_events
from eventlogs.stream import iter_parts, load_split, prepare_streaming
from eventlogs.validation import DataValidationError
from interest.cli import app
from synthlogs.generator import config_for_events, generate_events

CANONICAL = DataConfig(format="canonical")


@pytest.fixture(scope="module")
def dirty() -> pd.DataFrame:
    """About 20k synthetic events plus duplicates, missing ids and unknown behaviours."""
    events = generate_events(config_for_events(20_000, seed=3)).events
    rng = np.random.default_rng(0)
    frame = pd.concat([events, events.sample(40, random_state=1)]).sample(frac=1, random_state=2)
    frame = frame.reset_index(drop=True).astype({"behavior": object, "user_id": object})
    rows = rng.choice(len(frame), 40, replace=False)
    frame.loc[rows[:10], "user_id"] = ""
    frame.loc[rows[10:15], "category_id"] = None
    frame.loc[rows[15:25], "behavior"] = "click"
    frame.loc[rows[25:30], "timestamp"] = pd.NaT
    return frame


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        text = frame.assign(timestamp=frame["timestamp"].astype(str).replace("NaT", "garbage"))
        text.to_csv(path, index=False)
    else:  # microsecond timestamps: the content hash must follow the file's unit
        table = pa.Table.from_pandas(frame, preserve_index=False)
        index = table.schema.get_field_index("timestamp")
        stamps = table.column(index).cast(pa.timestamp("us", tz="UTC"))
        pq.write_table(table.set_column(index, "timestamp", stamps), path)
    return path


def _config() -> ProjectConfig:
    return ProjectConfig.model_validate({"data": {"format": "canonical"}})


def by_cutoff_user(arrays: SequenceArrays) -> SequenceArrays:
    return arrays.select(np.lexsort((arrays.user_id.astype(str), arrays.cutoff)))


def _assert_same(streamed: SequenceArrays, expected: SequenceArrays) -> None:
    assert_arrays_equal(by_cutoff_user(streamed), by_cutoff_user(expected))


def assert_arrays_equal(got: SequenceArrays, want: SequenceArrays) -> None:
    """Every array field equal, in order (user ids compared as strings)."""
    assert len(got) == len(want) > 0
    for f in fields(SequenceArrays):
        if f.name == "extra":
            continue
        a, b = getattr(got, f.name), getattr(want, f.name)
        if f.name == "user_id":
            a, b = a.astype(str), b.astype(str)
        np.testing.assert_array_equal(a, b, err_msg=f.name)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_streaming_equals_in_memory(dirty, tmp_path, suffix):
    path = _write(dirty, tmp_path / f"events{suffix}")
    loaded = load_events(path, CANONICAL)
    expected: PreparedData = prepare_dataset(loaded.events, _config(), "synth")
    report = prepare_streaming(
        path, _config(), "synth", tmp_path / "out", rows_per_bucket=4_000, batch_rows=3_000
    )
    assert report.buckets == 5 and len(list(iter_parts(tmp_path / "out", "train"))) > 1
    assert report.fingerprint.to_dict() == expected.fingerprint.to_dict()
    assert (report.rows_read, report.rows_kept) == (
        loaded.report.rows_read,
        loaded.report.rows_kept,
    )
    assert report.dropped == loaded.report.dropped and report.notes == loaded.report.notes
    assert report.dropped["missing_id"] == 15 and report.dropped["unknown_behavior"] == 10
    saved = json.loads((tmp_path / "out" / "fingerprint.json").read_text())
    assert saved == expected.fingerprint.to_dict()
    assert (tmp_path / "out" / "feature_spec.json").read_text() == expected.spec.to_json()
    for split in ("train", "val", "test"):
        _assert_same(load_split(tmp_path / "out", split), getattr(expected, split))
        assert report.samples[split] == len(getattr(expected, split))


def test_window_and_duplicates_match_clean_events(dirty, tmp_path, monkeypatch):
    from eventlogs import formats
    from eventlogs.validation import ValidationReport, clean_events

    path = _write(dirty, tmp_path / "events.parquet")
    config = _config()
    config.data.window_start = "2024-01-03"
    spec = formats.FORMATS["canonical"]
    monkeypatch.setitem(
        formats.FORMATS, "canonical", formats.FormatSpec(spec.required, None, True, spec.convert)
    )
    raw = pd.read_parquet(path).astype({c: "string" for c in ("user_id", "item_id")})
    frame, _ = formats.convert_canonical(
        raw.astype({"category_id": "string", "behavior": "string"}), config.data, str(path)
    )
    report = ValidationReport(source=str(path), format="canonical")
    from core.schema import conform

    events = conform(clean_events(frame, report, config.data, drop_duplicates=True))
    expected = prepare_dataset(events, config, "synth")
    heard: list[str] = []  # what a progress line is told
    streamed = prepare_streaming(
        path, config, "synth", tmp_path / "out", rows_per_bucket=5_000, say=heard.append
    )
    buckets = [f"features: bucket {i}/{streamed.buckets}" for i in range(1, streamed.buckets + 1)]
    assert heard[0] == "scanning timestamps" and heard[-len(buckets) :] == buckets
    assert streamed.buckets > 1
    assert streamed.dropped == report.dropped and report.dropped["duplicate"] > 0
    assert report.dropped["outside_window"] > 0
    assert streamed.fingerprint.to_dict() == expected.fingerprint.to_dict()
    _assert_same(load_split(tmp_path / "out", "train"), expected.train)


def test_non_canonical_column_type_names_file_and_column(tmp_path):
    path = tmp_path / "floats.parquet"
    frame = pd.DataFrame(
        {
            "user_id": [1.5, 2.5],
            "item_id": ["a", "b"],
            "category_id": ["c", "c"],
            "behavior": ["view", "view"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True),
        }
    )
    frame.to_parquet(path)
    with pytest.raises(DataValidationError, match=r"floats\.parquet.*'user_id'.*double"):
        prepare_streaming(path, _config(), "x", tmp_path / "out")
    missing = tmp_path / "short.csv"
    missing.write_text("user_id,item_id\n1,2\n")
    with pytest.raises(DataValidationError, match=r"short\.csv.*'category_id'"):
        prepare_streaming(missing, _config(), "x", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="no part-"):
        load_split(tmp_path / "out", "train")


def test_cli_streaming_writes_shards_and_rejects_other_formats(dirty, tmp_path):
    path = _write(dirty, tmp_path / "events.parquet")
    runner = CliRunner()
    out = tmp_path / "out"
    args = ["data", "features", str(path), "--out", str(out), "--streaming"]
    args += ["--format", "canonical"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "buckets" in result.stdout
    assert len(load_split(out, "test")) > 0 and (out / "report.json").is_file()
    args[-1] = "taobao"
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "canonical" in result.stderr and "events.parquet" in result.stderr
