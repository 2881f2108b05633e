"""Dask feature building on a 2-worker local cluster equals the in-memory and streaming paths."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from core.arrays import SequenceArrays
from core.config import DataConfig, ProjectConfig
from core.dataset import prepare_dataset
from eventlogs.dask_features import dask_client, prepare_dask
from eventlogs.loaders import load_events
from eventlogs.stream import load_split, prepare_streaming
from eventlogs.stream_io import iter_parts
from eventlogs.validation import DataValidationError
from interest.cli import app
from synthlogs.generator import config_for_events, generate_events
from tests.eventlogs.test_stream import assert_arrays_equal, by_cutoff_user


def _config() -> ProjectConfig:
    return ProjectConfig.model_validate({"data": {"format": "canonical"}})


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 20k synthetic events with repeated and bad rows, in 2,000-row row groups."""
    events = generate_events(config_for_events(20_000, seed=5)).events
    frame = pd.concat([events, events.sample(30, random_state=1)]).sample(frac=1, random_state=2)
    frame = frame.reset_index(drop=True).astype({"behavior": object, "user_id": object})
    frame.loc[[3, 50, 700], "user_id"] = ""
    frame.loc[[9, 90], "behavior"] = "click"
    path = tmp_path_factory.mktemp("dask") / "events.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=2_000)
    return path


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 in-process workers (threads: starts in about a second)."""
    with dask_client(workers=2, processes=False) as c:
        yield c


def test_dask_equals_in_memory_and_streaming(log, client, tmp_path):
    config = _config()
    loaded = load_events(log, DataConfig(format="canonical"))
    expected = prepare_dataset(loaded.events, config, "synth")
    kwargs = {"rows_per_bucket": 5_000, "batch_rows": 4_000}
    report = prepare_dask(log, config, "synth", tmp_path / "dask", client, **kwargs)
    streamed = prepare_streaming(log, config, "synth", tmp_path / "stream", **kwargs)
    assert report.buckets == 5 and len(list(iter_parts(tmp_path / "dask", "train"))) > 1
    assert report.fingerprint.to_dict() == expected.fingerprint.to_dict()
    assert report.fingerprint.cutoffs == expected.splits.to_dict()
    expected.vocab.save(tmp_path / "memory-vocab.json")
    vocab_text = (tmp_path / "dask" / "vocab.json").read_text()
    assert vocab_text == (tmp_path / "memory-vocab.json").read_text()
    assert vocab_text == (tmp_path / "stream" / "vocab.json").read_text()
    assert (report.rows_read, report.rows_kept) == (
        loaded.report.rows_read,
        loaded.report.rows_kept,
    )
    assert report.dropped == loaded.report.dropped == streamed.dropped
    assert report.dropped["missing_id"] == 3 and report.dropped["unknown_behavior"] == 2
    for split in ("train", "val", "test"):
        assert_arrays_equal(
            by_cutoff_user(load_split(tmp_path / "dask", split)),
            by_cutoff_user(getattr(expected, split)),
        )
        # Shard for shard the same files as the single-machine pass.
        dask_parts = sorted(p.name for p in (tmp_path / "dask" / split).glob("part-*.npz"))
        stream_parts = sorted(p.name for p in (tmp_path / "stream" / split).glob("part-*.npz"))
        assert dask_parts == stream_parts
        for part in dask_parts:
            assert_arrays_equal(
                SequenceArrays.load(tmp_path / "dask" / split / part),
                SequenceArrays.load(tmp_path / "stream" / split / part),
            )


def test_dask_rejects_csv_naming_the_file(client, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,category_id,behavior,timestamp\n1,2,3,view,1700000000\n")
    with pytest.raises(DataValidationError, match=r"events\.csv.*Parquet only"):
        prepare_dask(path, _config(), "x", tmp_path / "out", client)


def test_cli_engine_dask(log, tmp_path):
    out = tmp_path / "out"
    args = ["data", "features", str(log), "--out", str(out), "--format", "canonical"]
    result = CliRunner().invoke(app, [*args, "--engine", "dask", "--workers", "2", "--threads"])
    assert result.exit_code == 0, result.output
    assert re.search(r"engine +dask", result.stdout)
    assert len(load_split(out, "test")) > 0 and (out / "report.json").is_file()
    result = CliRunner().invoke(app, [*args, "--engine", "spark"])
    assert result.exit_code != 0
    assert "spark" in result.output
