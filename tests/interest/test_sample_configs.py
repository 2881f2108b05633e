"""The shipped per-sample configurations give strictly temporal splits with real training data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.config import load_config
from core.dataset import prepare_dataset
from core.splits import label_span, splits_from_range
from eventlogs.loaders import load_events

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SAMPLES = {
    "taobao": "taobao_userbehavior/user_behavior.csv",
    "tmall": "tmall_2014_brand_log/t_alibaba_data.csv",
    "amazon_reviews": "amazon_musical_instruments_5core/reviews.csv",
}


def test_every_shipped_config_has_a_sample() -> None:
    assert sorted(p.stem for p in CONFIGS.glob("*.toml")) == sorted(SAMPLES)


@pytest.mark.shared_data
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_config_yields_thousands_of_train_samples(name: str, shared_data: Path) -> None:
    config = load_config(CONFIGS / f"{name}.toml", env={})
    events = load_events(shared_data / SAMPLES[name], config.data).events
    data = prepare_dataset(events, config, name)
    assert len(data.train) >= 1_000, len(data.train)
    assert min(len(data.val), len(data.test)) >= 500
    assert max(data.splits.train) < data.splits.val < data.splits.test


#: The test split of shared/data/README.md's protocol: (cutoff, horizon) per sample.
PROTOCOL = {
    "taobao": ("2017-11-30T16:00:00Z", "3D"),
    "tmall": ("2014-07-16T00:00:00Z", "30D"),
}


@pytest.mark.parametrize("name", sorted(PROTOCOL))
def test_real_sample_configs_test_at_the_protocol_cutoff_and_horizon(name: str) -> None:
    # What tune prints on test then sits next to shared/data/README.md's baseline table.
    config = load_config(CONFIGS / f"{name}.toml", env={})
    assert (config.split.test_cutoff, config.features.horizon) == PROTOCOL[name]


def test_tmall_trains_on_recent_cutoffs_whose_labels_stop_before_test() -> None:
    # Tmall's log starts 2014-04-15: many train cutoffs up to a few days before validation,
    # their labels running into the validation window, never into the test one.
    config = load_config(CONFIGS / "tmall.toml", env={})
    first, last = pd.Timestamp("2014-04-15", tz="UTC"), pd.Timestamp("2014-08-15", tz="UTC")
    splits = splits_from_range(first, last, config.split, config.features)
    span = label_span(config.features)
    assert len(splits.train) >= 8
    assert splits.val - max(splits.train) <= pd.Timedelta(days=7)
    assert max(splits.train) + span <= splits.test
    assert splits.val + span <= splits.test


def test_tmall_fixes_only_unsearched_model_settings() -> None:
    import optuna

    from training.search import suggest

    config = load_config(CONFIGS / "tmall.toml", env={})
    assert config.train.fixed_params == {"popularity_from": "latest"}
    # suggest raises if a fixed name is searched or not a model setting.
    plan = suggest(optuna.create_study().ask(), fixed=config.train.fixed_params)
    assert plan.model.popularity_from == "latest"
