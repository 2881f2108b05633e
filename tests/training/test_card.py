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
