"""``status`` lists each bento with the registry version its model carries."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import bentoml._internal.bento as bento_store
import pytest

from core.config import load_config
from pipelines.status import list_bentos


class FakeStore:
    def __init__(self, folder: str) -> None:
        self.folder = folder

    def list(self) -> list[SimpleNamespace]:
        info = SimpleNamespace(
            models=[SimpleNamespace(tag="interest-evolution:abc")],
            creation_time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        )
        return [SimpleNamespace(tag="interest:xyz", info=info)]


def test_bento_rows_carry_registry_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    config = load_config(overrides={"paths": {"state_dir": str(tmp_path)}}, env={})
    assert list_bentos(config, []) == []  # no bento store yet: nothing, nothing created
    (tmp_path / "bentoml" / "bentos").mkdir(parents=True)
    monkeypatch.setattr(bento_store, "BentoStore", FakeStore)
    models = [
        {"tag": "interest-evolution:abc", "labels": {"model_name": "m", "version": "7"}},
    ]
    (row,) = list_bentos(config, models)
    assert row["tag"] == "interest:xyz" and row["models"] == ["interest-evolution:abc"]
    assert (row["model_name"], row["registry_version"]) == ("m", "7")
