"""A window holding traffic of two versions: each part is checked against its own reference.

Real MLflow (SQLite) registry with two versions whose runs hold different reference
profiles, real Evidently, real report files.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from core.config import ProjectConfig, load_config
from monitoring.check import check_window, split_by_version

sys.path.insert(0, str(Path(__file__).parent))
from test_drift import make_profile  # noqa: E402

START = datetime(2024, 3, 1, tzinfo=UTC)
END = START + timedelta(days=1)


def _register(config: ProjectConfig, reference: pd.DataFrame, alias: str | None) -> str:
    uri = config.paths.resolved().tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = config.registry.model_name
    exp = client.get_experiment_by_name("fake") or client.get_experiment(
        client.create_experiment("fake", artifact_location=config.paths.resolved().artifact_root)
    )
    run = client.create_run(exp.experiment_id)
    folder = Path(config.paths.resolved().state_dir) / "upload" / run.info.run_id / "bundle"
    folder.mkdir(parents=True)
    reference.to_parquet(folder / "reference.parquet")
    client.log_artifacts(run.info.run_id, str(folder), "bundle")
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id)
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return str(version.version)


def _log(config: ProjectConfig, frame: pd.DataFrame, version: str, shadow: bool = False) -> None:
    folder = config.paths.resolved().prediction_log
    folder.mkdir(parents=True, exist_ok=True)
    frame = frame.assign(
        logged_at=(START + timedelta(hours=2)).isoformat(), model_version=version, shadow=shadow
    )
    path = folder / f"predictions-{START:%Y%m%dT%H%M%S}-{version}{int(shadow)}.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in frame.to_dict(orient="records")) + "\n")


@pytest.fixture()
def config(tmp_path: Path) -> ProjectConfig:
    return load_config(
        overrides={
            "paths": {"state_dir": str(tmp_path)},
            "monitoring": {"stattest": "psi", "stattest_threshold": 0.1, "min_rows": 300},
        },
        env={},
    )


def test_each_version_is_compared_with_its_own_reference(config: ProjectConfig) -> None:
    old_ref, new_ref = make_profile(2000, 0), make_profile(2000, 1, shift=1.0)
    v1 = _register(config, old_ref, alias=None)
    v2 = _register(config, new_ref, alias="champion")
    _log(config, make_profile(800, 10), v1)  # v1's traffic looks like v1's training data
    _log(config, make_profile(900, 11, shift=1.0), v2)  # v2's like v2's
    _log(config, make_profile(900, 12), v2, shadow=True)  # shadow rows are not served traffic

    check = check_window(config, None, START, END, stamp="t", trigger="test")

    assert {v.version: v.drift.status for v in check.versions} == {v1: "ok", v2: "ok"}
    assert check.decided_by.version == v2 and check.drift.n_current == 900
    assert check.context["rows_per_version"] == {v1: 800, v2: 900}
    assert f"v{v1}: 800" in check.drift.reason
    assert all(v.report.json.is_file() for v in check.versions)
    # The same window against one model's reference mixes two populations: drift.
    mixed = check_window(
        config, check.versions[-1].reference, START, END, stamp="m", trigger="test"
    )
    assert mixed.drift.status == "drift"


def test_split_drops_shadow_rows_and_names_unversioned_ones() -> None:
    frame = pd.DataFrame(
        {"model_version": ["1", "2", None, "2"], "shadow": [False, False, False, True], "x": 1}
    )
    parts = split_by_version(frame)
    assert {v: len(p) for v, p in parts.items()} == {"1": 1, "2": 1, "unknown": 1}
