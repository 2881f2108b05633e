"""Every user error is one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from interest.cli import app

HEAD = "user_id,item_id,category_id,behavior_type,timestamp\n"


@pytest.fixture()
def log(tmp_path: Path) -> Path:
    path = tmp_path / "t.csv"
    path.write_text(HEAD + "1,2,3,pv,1511544070\n")
    return path


def _configs(tmp_path: Path) -> dict[str, Path]:
    files = {
        "missing": tmp_path / "absent.yaml",
        "yaml": tmp_path / "broken.yaml",
        "toml": tmp_path / "broken.toml",
        "unknown": tmp_path / "unknown.yaml",
        "value": tmp_path / "value.yaml",
    }
    files["yaml"].write_text("train:\n  trials: [\n")
    files["toml"].write_text("[train\n")
    files["unknown"].write_text("train:\n  epoch: 3\n")
    files["value"].write_text("features:\n  period: fortnight\n")
    return files


def _one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--format", "nonsense"], "'--format'"),
        (["--trials", "0"], "--trials: must be >= 1, got 0"),
        (["--period", "fortnight"], "'--period'"),
        (["--horizon", "garbage"], "'--horizon'"),
        (["--test-cutoff", "notadate"], "'--test-cutoff'"),
        (["--timeout", "-1", "--epochs", "0"], "--epochs: must be >= 1, got 0"),
    ],
)
def test_tune_bad_options(args, expected, log, state_dir):
    result = CliRunner().invoke(app, ["tune", "--data", str(log), *args])
    assert expected in _one_line_error(result)


@pytest.mark.parametrize(
    "args",
    [
        ["monitor", "performance", "--format", "nonsense"],
        ["monitor", "run", "--format", "nonsense"],
        ["monitor", "drift", "--window", "garbage"],
        ["monitor", "drift", "--since", "notadate"],
    ],
)
def test_monitor_bad_options(args, log, state_dir):
    if args[1] == "performance":
        args = [*args, "--data", str(log)]
    line = _one_line_error(CliRunner().invoke(app, args))
    assert f"'{args[2]}'" in line


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("missing", "config file does not exist"),
        ("yaml", "not valid YAML"),
        ("toml", "not valid TOML"),
        ("unknown", "train.epoch: unknown key; accepted keys: epochs,"),
        ("value", "features.period: must be one of 'hour', 'day', 'week', got 'fortnight'"),
    ],
)
def test_bad_config_file(kind, expected, tmp_path, log, state_dir):
    path = _configs(tmp_path)[kind]
    result = CliRunner().invoke(app, ["--config", str(path), "data", "validate", str(log)])
    line = _one_line_error(result)
    assert str(path) in line and expected in line


def test_debug_reraises(tmp_path, log, state_dir):
    path = _configs(tmp_path)["unknown"]
    args = ["--debug", "--config", str(path), "tune", "--data", str(log)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and "unknown key" in str(result.exception)


def test_debug_reraises_option_errors(log, state_dir):
    result = CliRunner().invoke(app, ["--debug", "tune", "--data", str(log), "--trials", "0"])
    assert "train.trials" in str(result.exception)
