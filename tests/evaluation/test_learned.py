"""``gbdt_rerank``: training cutoffs never see past the evaluated cutoff."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.schema import conform
from evaluation import learned
from evaluation.learned import gbdt_predictions, training_cutoffs
from evaluation.protocol import protocol_arrays

CUTOFF = pd.Timestamp("2024-01-16", tz="UTC")
HORIZON = pd.Timedelta("3D")


@pytest.fixture()
def events() -> pd.DataFrame:
    """40 users with sticky habits over 20 days: each mostly revisits two favourites."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        favourites = rng.choice(12, size=2, replace=False)
        for _ in range(60):
            cat = favourites[rng.integers(2)] if rng.random() < 0.6 else rng.integers(12)
            when = pd.Timestamp("2024-01-01") + pd.Timedelta(hours=float(rng.uniform(0, 480)))
            rows.append((f"u{u}", f"c{cat}", "view", when))
    frame = pd.DataFrame(rows, columns=["user_id", "category_id", "behavior", "timestamp"])
    return conform(frame.assign(item_id="i"))


def _perturb_from(events: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
    """Every event at or after ``start`` moves to one new category."""
    out = events.copy()
    late = out["timestamp"] >= start
    out["category_id"] = out["category_id"].astype(str).where(~late, "zz")
    return out


def test_training_label_windows_end_at_the_cutoff():
    cuts = training_cutoffs(CUTOFF, HORIZON, n=3)
    assert cuts == [CUTOFF - HORIZON - i * pd.Timedelta("1D") for i in range(3)]
    assert all(t + HORIZON <= CUTOFF for t in cuts)
    with pytest.raises(ValueError, match="positive"):
        training_cutoffs(CUTOFF, HORIZON, step=pd.Timedelta(0))


def test_predictions_ignore_everything_from_the_cutoff_on(events):
    arrays, vocab = protocol_arrays(events, CUTOFF, HORIZON)
    clean = gbdt_predictions(events, arrays, vocab, HORIZON)
    leaked = gbdt_predictions(_perturb_from(events, CUTOFF), arrays, vocab, HORIZON)
    assert clean["next_cats"].max() > 1.0  # the model ranked candidates (not the fallback)
    np.testing.assert_array_equal(clean["next_cats"], leaked["next_cats"])


def test_the_leak_check_catches_an_overlapping_training_window(events, monkeypatch):
    """Sensitivity: a training window that crosses the cutoff does change the predictions."""
    monkeypatch.setattr(
        learned, "training_cutoffs", lambda cut, horizon, n: [cut - horizon / 2, cut - horizon]
    )
    arrays, vocab = protocol_arrays(events, CUTOFF, HORIZON)
    clean = gbdt_predictions(events, arrays, vocab, HORIZON)
    leaked = gbdt_predictions(_perturb_from(events, CUTOFF), arrays, vocab, HORIZON)
    assert not np.array_equal(clean["next_cats"], leaked["next_cats"])


def test_gbdt_scores_live_in_the_model_space(events):
    arrays, vocab = protocol_arrays(events, CUTOFF, HORIZON)
    pred = gbdt_predictions(events, arrays, vocab, HORIZON)
    assert pred["next_cats"].shape == (len(arrays), vocab.size)
    assert (pred["next_cats"][:, :2] == 0).all()  # padding and OOV are never ranked
    assert np.isfinite(pred["buy"]).all() and np.isfinite(pred["churn"]).all()
