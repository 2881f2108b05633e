"""summarize_arrays: the interest columns on hand-written 3-row arrays (0 is padding)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.arrays import SequenceArrays
from core.profile import PROFILE_COLUMNS, summarize_arrays

# 3 buckets: categories index 2 and 3 are buckets 0 and 1; 4 (rare) and 1 (OOV) are "other".
CAT = np.array([[0, 0, 2, 2, 3, 4], [0, 0, 0, 0, 2, 1], [0, 0, 0, 0, 0, 0]], np.int32)
PERIOD_DIST = np.array(
    [
        [[0, 0, 0], [1.0, 0, 0], [0, 0.5, 0.5]],  # earlier all bucket 0, latest split 1/other
        [[0, 0, 0], [0, 0, 0], [0.5, 0, 0.5]],  # one non-empty period
        [[0, 0, 0], [0, 0, 0], [0, 0, 0]],  # no events
    ],
    np.float32,
)


def arrays() -> SequenceArrays:
    shape = CAT.shape
    real = (CAT > 0).astype(np.int32)
    return SequenceArrays(
        user_id=np.array(["a", "b", "c"]),
        cutoff=np.array(["2024-01-02"] * 3, dtype="datetime64[ns]"),
        cat=CAT,
        beh=real,
        hour=real * 5,
        gap=np.zeros(shape, np.float32),
        age=np.zeros(shape, np.float32),
        period_dist=PERIOD_DIST,
        period_counts=np.zeros((3, 3, 4), np.float32),
    )


def test_interest_columns() -> None:
    frame = summarize_arrays(arrays(), lambda idx: [f"c{i}" for i in idx])
    assert list(frame.columns) == list(PROFILE_COLUMNS)
    assert frame["bucket_shares"].tolist() == [[0.5, 0.25, 0.25], [0.5, 0.0, 0.5], [0, 0, 0]]
    # JS(latest=(0, .5, .5), earlier=(1, 0, 0)) in bits: disjoint supports -> 1.
    assert frame["interest_shift"].iloc[0] == pytest.approx(1.0)
    assert np.isnan(frame["interest_shift"].iloc[1:]).all()  # fewer than two periods


def test_interest_columns_are_json_lines() -> None:
    """Serving logs the profile as JSON: lists of plain floats, no numpy scalars."""
    frame = summarize_arrays(arrays(), lambda idx: [f"c{i}" for i in idx])
    line = json.dumps(frame["bucket_shares"].iloc[0])
    assert json.loads(line) == [0.5, 0.25, 0.25]
