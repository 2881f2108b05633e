"""The model card records the baselines' chosen parameters and the calibration."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from training.card import write_card


def test_card_lists_baseline_params_and_calibration(tmp_path: Path) -> None:
    path = write_card(
        tmp_path / "card.md",
        title="m",
        model_metrics={
            "recall_at_10": 0.4,
            "buy_ece_raw": 0.12,
            "buy_ece": 0.03,
            "buy_threshold": 0.4,
            "buy_f1": 0.6,
        },
        baselines={"personal_decay": {"recall_at_10": 0.38}},
        params={"units": 64},
        fingerprint={"dataset": "x"},
        plots=[],
        baseline_params={"personal_decay": {"half_life_days": 2.0, "tuned": True}},
        calibration={"buy": {"method": "platt", "a": 0.5, "b": -0.1, "threshold": 0.4}},
    )
    text = path.read_text()
    assert "half_life_days=2.0, tuned=True" in text
    row = "| buy | platt (a=0.5, b=-0.1, threshold=0.4) | 0.1200 | 0.0300 | 0.4000 | 0.6000 |"
    assert row in text


def test_card_without_a_calibration_map_reports_raw_ece_and_the_demand_forecast(
    tmp_path: Path,
) -> None:
    demand = pd.DataFrame(
        {
            "category": ["a", "b", "other"],
            "forecast": [6.0, 3.0, 1.0],
            "persistence": [5.0, 5.0, 0.0],
            "actual": [6.0, 2.0, 2.0],
        }
    )
    text = write_card(
        tmp_path / "card.md",
        title="m",
        model_metrics={"recall_at_10": 0.4, "buy_ece": 0.1, "churn_ece": 0.05},
        baselines={"personal_decay": {"recall_at_10": 0.38}},
        params={"units": 64},
        fingerprint={"dataset": "x"},
        plots=[],
        demand={"table": demand, "cutoff": "2024-01-04", "period": "day"},
    ).read_text()
    assert "| buy | none (train.calibrate off) | 0.1000 |" in text
    assert "| churn | none (train.calibrate off) | 0.0500 |" in text
    # |6-6|+|3-2|+|1-2| = 2 and |5-6|+|5-2|+|0-2| = 6 over 10 events; without `other`: 1 and 4
    # over 8.
    assert "model 0.2000 vs persistence 0.6000 over every bucket" in text
    assert "0.1250 vs 0.5000 without `other`" in text
    assert "| a | 6.0 | 5.0 | 6.0 |" in text


def test_trajectory_heatmap_has_a_colour_bar_integer_periods_and_readable_labels(
    tmp_path: Path,
) -> None:
    import numpy as np

    from training.card import _save, trajectory_figure

    names = [f"cat_{i}" for i in range(12)] + ["other"]
    rng = np.random.default_rng(0)
    predicted, actual = rng.dirichlet(np.ones(13), 3), rng.dirichlet(np.ones(13), 3)
    fig = trajectory_figure(predicted, actual, names, "u1")
    heatmaps = [ax for ax in fig.axes if ax.images]
    bars = [ax for ax in fig.axes if not ax.images]
    assert len(heatmaps) == 2 and len(bars) == 1  # the colour bar is an axes of its own
    assert "share" in bars[0].get_ylabel()
    for ax in heatmaps:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3"]
        assert ax.images[0].get_clim() == (0.0, max(predicted.max(), actual.max()))
    labels = heatmaps[0].get_yticklabels()
    assert [t.get_text() for t in labels] == names and min(t.get_fontsize() for t in labels) >= 8
    assert _save(fig, tmp_path / "trajectory.png").stat().st_size > 0
