"""The model card records the baselines' chosen parameters and the calibration."""

from __future__ import annotations

from pathlib import Path

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
