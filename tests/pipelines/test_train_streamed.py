"""``train.input = "stream"``: the whole tune pipeline out of core, to a registered champion.

The stream-mode job never loads the log whole (shards built by ``prepare_streaming``,
bounded samples, the sampled users' events for the baselines); on a log that fits in the
samples it must register a champion with the in-memory run's vocabulary, splits and
fingerprint, the same baselines, and model metrics within noise.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from core.config import load_config
from synthlogs.generator import SynthConfig, generate_events

pytestmark = pytest.mark.slow


def _train(tmp_path, log, mode: str):
    from modelkit.registry import registered_champion
    from pipelines.train import TrainRequest, train

    config = load_config(
        overrides={
            "paths": {"state_dir": str(tmp_path / mode)},
            "data": {"format": "canonical"},
            "train": {
                "trials": 1,
                "epochs": 1,
                "batch_size": 128,
                "study_name": mode,
                "input": mode,
                "shuffle_buffer": 200,
                "seed": 0,
            },
            "features": {"max_events": 20, "top_categories": 8, "n_periods": 5},
            "split": {"n_train_cutoffs": 2},
            # Any gain (or a small loss) over the baselines promotes: this checks the path
            # to a champion, not the model's quality after one epoch on 150 users.
            "registry": {"min_improvement": -1.0, "bootstrap_resamples": 200},
        },
        env={},
    )
    work = tmp_path / f"{mode}-shards"
    result = train(config, TrainRequest(log, show_progress=False, work_dir=work))
    return result, registered_champion(config)


def test_stream_tune_registers_the_in_memory_champion(tmp_path):
    events = generate_events(SynthConfig(n_users=150, n_days=14, seed=3)).events
    log = tmp_path / "events.parquet"
    events.to_parquet(log)
    memory, memory_champion = _train(tmp_path, log, "memory")
    stream, stream_champion = _train(tmp_path, log, "stream")
    # The stream job worked on shards of the whole log and on samples of them.
    assert stream.data.shards is not None and (stream.data.shards / "train").is_dir()
    assert memory.data.shards is None
    assert stream.load_report.rows_kept == memory.load_report.rows_kept == len(events)
    # Same data identity: fingerprint (content, vocabulary, cutoffs), vocabulary, splits.
    assert stream.data.fingerprint == memory.data.fingerprint
    assert stream.data.vocab.categories == memory.data.vocab.categories
    assert stream.data.splits.to_dict() == memory.data.splits.to_dict()
    # Both registered a version and the gate made it the champion.
    for result, champion in ((memory, memory_champion), (stream, stream_champion)):
        assert result.version is not None and result.promoted
        assert champion is not None and champion[0] == result.version
    m, s = memory.refit.test_metrics, stream.refit.test_metrics
    assert s["n_samples"] == m["n_samples"]
    # One epoch from the same priors, batches in another order: ~300 samples agree to 0.05.
    assert abs(s["recall_at_10"] - m["recall_at_10"]) < 0.05
    # The baselines only read the sampled users' events, here every user: identical.
    assert set(stream.refit.baselines) == set(memory.refit.baselines)
    for name, values in memory.refit.baselines.items():
        for metric in ("recall_at_10", "ndcg_at_10", "buy_auc", "churn_auc"):
            assert stream.refit.baselines[name][metric] == pytest.approx(values[metric], abs=1e-9)
