"""Text channels in a training job: fitted on the window, searchable, fit end to end."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import optuna
import pandas as pd
import pytest

from core.config import load_config
from core.dataset import prepare_dataset, prepare_refit_data
from training.fit import fit_model, predict_arrays
from training.search import TrialPlan, suggest
from training.text_data import add_text, text_channels

WORDS = ["bright strings", "warm tube amp", "cheap cable", "solid stand", "great tuner"]


def _events(n_users: int = 60, days: int = 24) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for u in range(n_users):
        for d in sorted(rng.choice(days, 8, replace=False)):
            c = int(rng.integers(0, 6))
            rows.append(
                {
                    "user_id": f"u{u}",
                    "item_id": f"i{c}",
                    "category_id": f"c{c}",
                    "behavior": "buy",
                    "timestamp": pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=int(d)),
                    "text": f"{WORDS[c % 5]} day{d}",
                }
            )
    from core.schema import conform

    return conform(pd.DataFrame(rows))


@pytest.fixture(scope="module")
def job():
    config = load_config(
        overrides={
            "features": {"max_events": 8, "n_periods": 3, "top_categories": 3, "horizon": "3D",
                         "future_periods": 1, "history": None},
            "split": {"n_train_cutoffs": 2},
            "train": {"text_features": True},
        },
        env={},
    )  # fmt: skip
    events = _events()
    return config, events, prepare_dataset(events, config, "toy")


def test_add_text_fits_on_the_validation_window(job):
    config, events, data = job
    with_text = add_text(events, data, config)
    assert text_channels(with_text.spec) == ("text_tokens", "content")
    assert text_channels(data.spec) == ()
    vocab = with_text.text.text.vocabulary
    val_day = (data.splits.val - pd.Timestamp("2024-01-01", tz="UTC")).days
    assert f"day{val_day - 1}" in vocab and f"day{val_day}" not in vocab
    for arrays in (with_text.train, with_text.val, with_text.test):
        assert arrays.text_tokens.shape == (len(arrays), with_text.text.settings.text_len)
    refit = add_text(events, prepare_refit_data(events, config, data), config, until="test")
    assert f"day{val_day}" in refit.text.text.vocabulary
    assert refit.spec.text_hash != with_text.spec.text_hash


def test_search_offers_text_only_when_the_data_has_it(job):
    config, events, data = job
    with_text = add_text(events, data, config)
    study = optuna.create_study(direction="maximize")
    plain = suggest(study.ask())
    assert "use_text" not in study.trials[-1].params and not plain.model.use_text
    trial = optuna.trial.FixedTrial(
        {**{k: v for k, v in plain.params().items() if k in study.trials[-1].params},
         "use_text": True, "use_content": False}
    )  # fmt: skip
    plan = suggest(trial, text_channels=text_channels(with_text.spec))
    assert plan.model.use_text
    small = {"units": 8, "cat_embed_dim": 8, "head_units": 8, "period_units": 4}
    model_config = plan.model.__class__(**{**plan.model.to_dict(), **small})
    result = fit_model(
        TrialPlan(model=model_config),
        with_text.spec,
        with_text.train,
        epochs=1,
        batch_size=32,
        seed=0,
        pretrain_epochs=0,
    )
    out = predict_arrays(result.model, with_text.test)
    assert np.isfinite(out["next_cats"]).all()
    assert any(layer.name.startswith("text_tokens_bag_") for layer in result.model.layers)


def test_model_card_shows_the_text_comparison(tmp_path):
    from training.card import write_card

    comparison = {
        "channels": ["use_text"],
        "with_text": {"recall_at_10": 0.0305, "ndcg_at_10": 0.015},
        "without_text": {"recall_at_10": 0.0295, "ndcg_at_10": 0.014},
        "text_over_no_text_recall_ratio": 0.0305 / 0.0295,
    }
    args = {"title": "m", "model_metrics": {}, "baselines": {}, "params": {}, "fingerprint": {},
            "plots": []}  # fmt: skip
    text = write_card(tmp_path / "card.md", **args, text_comparison=comparison).read_text()
    assert "## With and without text" in text and "| recall_at_10 | 0.0305 | 0.0295 |" in text
    assert "With and without" not in write_card(tmp_path / "plain.md", **args).read_text()
