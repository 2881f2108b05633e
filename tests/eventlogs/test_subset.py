"""A hash-chosen share of users' events, read from a log in bounded batches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.config import DataConfig, ProjectConfig
from core.dataset import prepare_dataset, prepare_refit_data
from core.vocab import Vocabulary
from eventlogs.loaders import load_events
from eventlogs.stream import prepare_streaming
from eventlogs.subset import in_user_share, load_user_events
from eventlogs.validation import DataValidationError
from synthlogs.generator import SynthConfig, generate_events


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    events = generate_events(SynthConfig(n_users=120, n_days=14, seed=1)).events
    path = tmp_path_factory.mktemp("subset") / "events.parquet"
    events.to_parquet(path)
    return path


def test_share_is_a_fixed_property_of_the_id():
    ids = np.array([f"u{i:05d}" for i in range(4000)])
    half = in_user_share(ids, 0.5)
    assert 0.45 < half.mean() < 0.55
    # Same answer for str, object and numpy-unicode inputs, and nested shares.
    assert (in_user_share(ids.astype(object), 0.5) == half).all()
    assert not (in_user_share(ids, 0.25) & ~half).any()
    assert in_user_share(ids, 1.0).all()


def test_load_user_events_keeps_exactly_the_share(log):
    config = DataConfig(format="canonical")
    whole = load_events(log, config).events
    all_rows = load_user_events(log, config, 1.0, batch_rows=500)
    assert len(all_rows.events) == len(whole)
    # Arrow-backed strings: the same dtype name, values and missing values as the loader's
    assert all_rows.events["user_id"].dtype == "string[pyarrow]"
    assert all_rows.events["user_id"].dtype == "string" == whole["user_id"].dtype
    pd.testing.assert_frame_equal(all_rows.events, whole, check_dtype=False)
    assert (all_rows.events.dtypes.astype(str) == whole.dtypes.astype(str)).all()
    part = load_user_events(log, config, 0.3, batch_rows=500).events
    users = part["user_id"].astype(str).unique()
    assert in_user_share(users, 0.3).all()
    expected = whole[in_user_share(whole["user_id"].astype(str).to_numpy(), 0.3)]
    assert 0 < len(part) == len(expected) < len(whole)
    with pytest.raises(DataValidationError, match="user share"):
        load_user_events(log, config, 1e-6, batch_rows=500)


def test_refit_vocabulary_streams_like_in_memory(log, tmp_path):
    config = ProjectConfig.model_validate(
        {
            "data": {"format": "canonical"},
            "features": {"max_events": 20, "top_categories": 40, "n_periods": 5},
            "split": {"n_train_cutoffs": 2},
        }
    )
    events = load_events(log, config.data).events
    data = prepare_dataset(events, config, "e")
    refit = prepare_refit_data(events, config, data)
    report = prepare_streaming(log, config, "e", tmp_path / "refit", vocab_until="test")
    streamed = Vocabulary.load(tmp_path / "refit" / "vocab.json")
    assert streamed.categories == refit.vocab.categories != data.vocab.categories
    assert report.fingerprint == refit.fingerprint
    with pytest.raises(ValueError, match="vocab_until"):
        prepare_streaming(log, config, "e", tmp_path / "x", vocab_until="later")
