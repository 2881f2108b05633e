"""Text summaries in the prediction log and the drift check (models with a text channel)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from core.arrays import SequenceArrays
from core.config import MonitoringConfig
from core.predlog import RECORD_COLUMNS, PredictionRecord
from core.profile import PROFILE_COLUMNS
from core.textstats import TEXT_FEATURES, char_stats, text_profile
from monitoring.drift import check_drift, monitored_columns
from tests.monitoring.test_drift import make_profile

CONFIG = MonitoringConfig(min_rows=300)


def _with_text(frame: pd.DataFrame, seed: int, non_ascii: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(frame)
    return frame.assign(
        text_chars=rng.gamma(4.0, 80.0, n),
        text_non_ascii_share=np.clip(rng.normal(non_ascii, 0.01, n), 0, 1),
        text_tokens=rng.integers(5, 190, n).astype(float),
        text_oov_share=rng.beta(2, 20, n),
    )


def test_text_columns_drift_like_the_behaviour_columns():
    reference = _with_text(make_profile(3000, 0), 0, 0.0)
    same = check_drift(reference, _with_text(make_profile(3000, 1), 1, 0.0), CONFIG)
    assert not {c for c in same.drifted_columns if c.column in TEXT_FEATURES}
    shifted = check_drift(reference, _with_text(make_profile(3000, 1), 1, 0.3), CONFIG)
    assert "text_non_ascii_share" in [c.column for c in shifted.drifted_columns]


def test_text_columns_are_checked_only_where_both_frames_have_values():
    plain = make_profile(400, 0)
    text = _with_text(make_profile(400, 1), 1, 0.0)
    assert not set(TEXT_FEATURES) & set(monitored_columns(plain, text)[0])
    empty = text.assign(**{c: np.nan for c in TEXT_FEATURES})
    assert not set(TEXT_FEATURES) & set(monitored_columns(text, empty)[0])
    assert set(TEXT_FEATURES) <= set(monitored_columns(text, text)[0])


def test_text_profile_of_arrays():
    n = 3
    arrays = SequenceArrays(
        user_id=np.array(["a", "b", "c"], dtype=object),
        cutoff=np.zeros(n, "datetime64[ns]"),
        **{k: np.zeros((n, 2), np.int32) for k in ("cat", "beh", "hour")},
        **{k: np.zeros((n, 2), np.float32) for k in ("gap", "age")},
        period_dist=np.zeros((n, 1, 2), np.float32),
        period_counts=np.zeros((n, 1, 4), np.float32),
        text_tokens=np.array([[2, 1, 3, 1], [0, 0, 0, 0], [5, 0, 0, 0]], np.int32),
    )
    assert text_profile(SequenceArrays(**{**arrays.__dict__, "text_tokens": None})) is None
    profile = text_profile(arrays)
    assert profile["text_tokens"].tolist() == [4.0, 0.0, 1.0]
    assert profile["text_oov_share"].iloc[0] == 0.5 and np.isnan(profile["text_oov_share"][1])
    stats, present = char_stats(["abcd", None, "caf\u00e9"])
    assert present.tolist() == [True, False, True]
    assert stats[2].tolist() == [4.0, 0.25]


def test_records_carry_text_summaries_and_old_lines_still_parse():
    base = {
        "logged_at": datetime(2024, 1, 1, tzinfo=UTC),
        "request_id": "r",
        "user_hash": None,
        "model_name": "m",
        "model_version": "1",
        "cutoff": datetime(2024, 1, 1, tzinfo=UTC),
        "profile": {c: 0.0 for c in PROFILE_COLUMNS},
        "p_buy": 0.1,
        "p_churn": 0.2,
        "top_pred": "c",
        "top_score": 0.3,
        "top_categories": ("c",),
        "trajectory": ({"c": 1.0},),
    }
    plain = PredictionRecord(**base)
    assert list(json.loads(plain.to_json())) == list(RECORD_COLUMNS)
    assert PredictionRecord.from_json(plain.to_json()).text_profile is None
    texts = {"text_chars": 120.0, "text_non_ascii_share": 0.0, "text_tokens": 30.0,
             "text_oov_share": None}  # fmt: skip
    line = PredictionRecord(**base, text_profile=texts).to_json()
    assert list(json.loads(line)) == [*RECORD_COLUMNS, *TEXT_FEATURES]
    assert PredictionRecord.from_json(line).text_profile == texts
