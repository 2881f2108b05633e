"""``interest data validate`` exit codes and output."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from interest.cli import app

HEAD = "user_id,item_id,category_id,behavior_type,timestamp\n"


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


def test_validate_ok_prints_report(runner, tmp_path, state_dir):
    path = tmp_path / "t.csv"
    path.write_text(HEAD + "1,2,3,pv,1511544070\n1,2,3,cart,1511544071\n")
    result = runner.invoke(app, ["data", "validate", str(path), "--format", "taobao"])
    assert result.exit_code == 0, result.output
    assert "rows kept" in result.stdout and "2" in result.stdout


def test_validate_json(runner, tmp_path, state_dir):
    path = tmp_path / "t.csv"
    path.write_text(HEAD + "1,2,3,pv,1511544070\n1,2,3,wink,1511544071\n")
    args = [
        "data",
        "validate",
        str(path),
        "--format",
        "taobao",
        "--max-drop-share",
        "0.5",
        "--json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["rows_read"], data["rows_kept"], data["dropped"]["unknown_behavior"]) == (2, 1, 1)


def test_validate_failure_exit_1_on_stderr(runner, tmp_path, state_dir):
    path = tmp_path / "t.csv"
    path.write_text("user_id,item_id\n1,2\n")
    result = runner.invoke(app, ["data", "validate", str(path), "--format", "taobao"])
    assert result.exit_code == 1
    assert "behavior_type" in result.stderr and "t.csv" in result.stderr
    assert result.stdout == ""


@pytest.mark.shared_data
def test_validate_real_tmall(runner, shared_data, state_dir):
    path = shared_data / "tmall_2014_brand_log" / "t_alibaba_data.csv"
    result = runner.invoke(app, ["data", "validate", str(path), "--format", "tmall", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows_read"] == 125_500


def test_validate_out_writes_canonical_events(runner, tmp_path, state_dir):
    from core.config import DataConfig
    from eventlogs.loaders import load_events

    path, out = tmp_path / "t.csv", tmp_path / "canon.parquet"
    path.write_text(HEAD + "1,2,3,pv,1511544070\n1,2,3,wink,1511544071\n7,8,9,buy,1511544072\n")
    args = ["data", "validate", str(path), "--format", "taobao", "--max-drop-share", "0.5"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 2 canonical events" in result.stdout
    events = load_events(out, DataConfig(format="canonical")).events
    assert events["behavior"].tolist() == ["view", "buy"]
    assert events["user_id"].tolist() == ["1", "7"]
