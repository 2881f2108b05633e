"""The shipped per-sample configurations give strictly temporal splits with real training data."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_config
from core.dataset import prepare_dataset
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
