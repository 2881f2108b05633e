"""The reference profile side of a drift check."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from monitoring.reference import load_reference


def test_load_reference_from_bundle_folder(tmp_path: Path) -> None:
    (tmp_path / "bundle").mkdir()
    pd.DataFrame({"seq_len": [1.0]}).to_parquet(tmp_path / "bundle" / "reference.parquet")
    with pytest.raises(ValueError, match="lacks profile columns"):
        load_reference(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no reference.parquet"):
        load_reference(tmp_path / "empty")


def test_a_reference_from_before_the_newer_columns_still_loads(tmp_path: Path) -> None:
    from core.profile import LEGACY_COLUMNS, PROFILE_COLUMNS

    old = pd.DataFrame({c: ["a"] if c == "top_category" else [1.0] for c in LEGACY_COLUMNS})
    old.to_parquet(tmp_path / "reference.parquet")
    assert set(PROFILE_COLUMNS) - set(load_reference(tmp_path).columns) == {
        "interest_shift",
        "bucket_shares",
    }
