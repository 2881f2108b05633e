"""prepare_dataset: split arrays, history-only vocabulary, stable fingerprint."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.config import ProjectConfig
from core.dataset import hash_events, prepare_dataset, prepare_refit_data
from core.schema import conform

START = pd.Timestamp("2024-01-01", tz="UTC")


def _events(seed: int = 0, n: int = 4000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(0, 60, n).astype(str),
            "item_id": rng.integers(0, 500, n).astype(str),
            "category_id": [f"c{k}" for k in rng.integers(0, 25, n)],
            "behavior": rng.choice(["view", "fav", "cart", "buy"], n, p=[0.7, 0.1, 0.1, 0.1]),
            "timestamp": START + pd.to_timedelta(rng.integers(0, 30 * 86400, n), unit="s"),
        }
    )
    return conform(frame.sort_values("timestamp"))


def _config() -> ProjectConfig:
    return ProjectConfig.model_validate({"features": {"top_categories": 5, "max_events": 10}})


def test_splits_have_samples_and_consistent_shapes():
    data = prepare_dataset(_events(), _config(), "synthetic")
    assert len(data.train) > len(data.val) > 0 and len(data.test) > 0
    assert len(np.unique(data.train.cutoff)) == 3
    for part in (data.train, data.val, data.test):
        assert part.next_cats.shape[1] == data.spec.n_categories == data.vocab.size
    assert data.spec.vocab_hash == data.vocab.hash == data.fingerprint.vocab_hash


def test_vocabulary_sees_only_events_before_validation_cutoff():
    events = _events()
    late = events.iloc[[-1]].copy()
    late["category_id"] = pd.Series(["brand-new"], index=late.index, dtype="string")
    events = pd.concat([events.iloc[:-1], late], ignore_index=True)
    data = prepare_dataset(events, _config(), "synthetic")
    assert "brand-new" not in data.vocab.categories
    assert pd.Timestamp(events["timestamp"].max()) >= data.splits.val


def test_refit_vocabulary_covers_validation_events_but_never_the_test_horizon():
    events = _events()
    splits = prepare_dataset(events, _config(), "synthetic").splits
    extra = events.iloc[[0, 1]].copy()
    extra["timestamp"] = [splits.val + (splits.test - splits.val) / 2, splits.test]
    extra["category_id"] = pd.Series(["val-only", "test-only"], index=extra.index, dtype="string")
    events = pd.concat([events, extra], ignore_index=True)
    data = prepare_dataset(events, _config(), "synthetic")
    refit = prepare_refit_data(events, _config(), data)
    assert "val-only" not in data.vocab.categories  # selection: train-only vocabulary
    assert "val-only" in refit.vocab.categories
    assert "test-only" not in refit.vocab.categories
    assert refit.splits == data.splits and len(refit.val) == len(data.val)
    assert refit.fingerprint.content_hash == data.fingerprint.content_hash
    assert refit.train.next_cats.shape[1] == refit.spec.n_categories == refit.vocab.size
    with pytest.raises(ValueError, match="vocab_until"):
        prepare_dataset(events, _config(), "synthetic", vocab_until="horizon")


def test_oov_truth_counts_each_distinct_unknown_category_of_the_horizon():
    events = _events()
    splits = prepare_dataset(events, _config(), "synthetic").splits
    extra = events.iloc[[0, 0, 0]].copy()  # one user, three horizon events
    extra["timestamp"] = [splits.test, splits.test, splits.test + pd.Timedelta("1h")]
    names = ["new-1", "new-1", "new-2"]
    extra["category_id"] = pd.Series(names, index=extra.index, dtype="string")
    data = prepare_dataset(pd.concat([events, extra], ignore_index=True), _config(), "synthetic")
    row = int(np.flatnonzero(data.test.user_id == extra["user_id"].iloc[0])[0])
    assert data.test.next_cats[row, 1] == 1.0  # folded into the one OOV index...
    assert data.test.extra["oov_truth"][row] == 2  # ...counted per distinct category here
    assert data.test.extra["oov_truth"].sum() == 2 and data.val.extra["oov_truth"].sum() == 0


def test_fingerprint_is_stable_and_content_sensitive():
    first = prepare_dataset(_events(), _config(), "synthetic").fingerprint
    again = prepare_dataset(_events(), _config(), "synthetic").fingerprint
    assert first.to_dict() == again.to_dict()
    assert first.rows == 4000 and first.cutoffs["test"].startswith("2024-01-")
    shuffled = _events().sample(frac=1.0, random_state=1)
    assert hash_events(shuffled) == first.content_hash
    changed = _events()
    changed.loc[5, "behavior"] = "buy" if changed.loc[5, "behavior"] != "buy" else "view"
    assert hash_events(changed) != first.content_hash


def test_empty_split_raises():
    events = _events()
    config = _config()
    config.split.test_cutoff = "2024-01-01T00:00:30Z"
    with pytest.raises(ValueError):
        prepare_dataset(events, config, "synthetic")


def test_features_command_writes_artifacts(tmp_path, state_dir):
    from typer.testing import CliRunner

    from core.arrays import FeatureSpec, SequenceArrays
    from core.vocab import Vocabulary
    from eventlogs.loaders import write_events
    from interest.cli import app

    write_events(_events(), tmp_path / "events.csv")
    out = tmp_path / "out"
    args = ["data", "features", str(tmp_path / "events.csv"), "--format", "canonical"]
    args += ["--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "train" in result.output and "vocabulary" in result.output
    train = SequenceArrays.load(out / "train.npz")
    vocab = Vocabulary.load(out / "vocab.json")
    spec = FeatureSpec.from_json((out / "feature_spec.json").read_text())
    assert train.next_cats.shape[1] == vocab.size == spec.n_categories
    assert (out / "fingerprint.json").is_file() and (out / "test.npz").is_file()


def test_features_command_reports_bad_input(tmp_path, state_dir):
    from typer.testing import CliRunner

    from interest.cli import app

    (tmp_path / "bad.csv").write_text("user_id,timestamp\n1,2024-01-01\n")
    args = ["data", "features", str(tmp_path / "bad.csv"), "--format", "canonical"]
    args += ["--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "bad.csv" in result.output


@pytest.mark.slow
def test_taobao_sample_matches_readme_purchase_rate(shared_data):
    from core.config import DataConfig
    from eventlogs.loaders import load_events

    events = load_events(shared_data / "taobao_userbehavior" / "user_behavior.csv", DataConfig())
    config = ProjectConfig.model_validate({"split": {"test_cutoff": "2017-11-30T16:00:00Z"}})
    data = prepare_dataset(events.events, config, "taobao")
    assert len(data.test) == 649  # every user of the sample has history
    assert abs(float(data.test.buy.mean()) - 0.40) < 0.01  # README: 40% positive
    assert float(data.test.churn.mean()) == 0.0  # README: every user active in the horizon
