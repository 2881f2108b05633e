"""Stream mode below the whole log: the model, the baselines and the gate see one user share."""

from __future__ import annotations

import numpy as np

from core.config import ProjectConfig
from core.dataset import prepare_dataset, prepare_refit_data
from eventlogs.loaders import load_events
from eventlogs.subset import in_user_share
from synthlogs.generator import SynthConfig, generate_events
from training.stream_data import prepare_stream_data, sample_share


def _keys(users: np.ndarray, cutoffs: np.ndarray) -> list[tuple[str, str]]:
    return sorted(zip(users.astype(str), np.asarray(cutoffs).astype(str), strict=True))


def test_user_share_holds_the_in_memory_samples_of_its_users(tmp_path):
    events = generate_events(SynthConfig(n_users=120, n_days=14, seed=1)).events
    log = tmp_path / "events.parquet"
    events.to_parquet(log)
    config = ProjectConfig.model_validate(
        {
            "data": {"format": "canonical"},
            "features": {"max_events": 20, "top_categories": 40, "n_periods": 5},
            "split": {"n_train_cutoffs": 2},
        }
    )
    streamed = prepare_stream_data(config, log, tmp_path / "work", name="e", max_rows=40)
    share = sample_share(tmp_path / "work" / "select", 40)
    assert 0.1 < share < 0.9  # a real share, not every user
    whole = load_events(log, config.data).events
    memory = prepare_refit_data(whole, config, prepare_dataset(whole, config, "e"))
    # The baselines and the gate's champion re-scoring count exactly the share's events ...
    loaded = streamed.loaded.events["user_id"].astype(str).unique()
    everyone = whole["user_id"].astype(str).unique()
    assert sorted(loaded) == sorted(everyone[in_user_share(everyone, share)])
    # ... and the model is scored (test) and the baselines tuned (val) on those users'
    # samples: the in-memory samples of the same users, no more, no fewer.
    refit = streamed.refit
    assert refit is not None
    for split in ("val", "test"):
        mine, theirs = getattr(refit, split), getattr(memory, split)
        keep = np.isin(theirs.user_id.astype(str), loaded)
        assert 0 < keep.sum() < len(theirs)
        assert _keys(mine.user_id, mine.cutoff) == _keys(theirs.user_id[keep], theirs.cutoff[keep])
