"""The two real-data quality tasks of ``benchmarks/quality.py``: loading, config, splits.

The test cutoff, horizon, history window, popularity window and half-life follow
``shared/data/README.md`` so that the baseline rows match its tables.

Taobao spans only six days before its test cutoff: strictly leak-free splits with a 3-day
horizon leave no history for any train cutoff. Its train cutoffs therefore sit 12 hours
apart *inside* the validation label window (train labels overlap validation labels, which
makes validation optimistic for model selection); no label window reaches the test cutoff,
so the test figures are clean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core.config import DataConfig, ProjectConfig, load_config
from core.dataset import DataFingerprint, PreparedData, hash_events
from core.features import build_features, encode_events, feature_spec
from core.splits import Splits, make_splits
from core.vocab import fit_vocabulary
from eventlogs.loaders import load_events

SHARED = Path("/work/shared/data")


@dataclass(frozen=True)
class Task:
    """One dataset's protocol."""

    name: str
    path: Path
    data: dict[str, Any]
    features: dict[str, Any]
    split: dict[str, Any]
    pop_window: str
    half_life_days: float
    # Explicit (train cutoffs, val cutoff) in UTC when make_splits cannot apply.
    cutoffs: tuple[tuple[str, ...], str] | None = None
    readme: dict[str, float] = field(default_factory=dict)


TASKS: dict[str, Task] = {
    "taobao": Task(
        name="taobao",
        path=SHARED / "taobao_userbehavior" / "user_behavior.csv",
        data={"format": "taobao", "window_start": "2017-11-24T16:00:00Z"},
        features={
            "period": "day",
            "n_periods": 6,
            "horizon": "3D",
            "future_periods": 3,
            "history": "7D",
            "max_events": 100,
        },
        split={"test_cutoff": "2017-11-30T16:00:00Z"},
        pop_window="3D",
        half_life_days=1.0,
        cutoffs=(
            (
                "2017-11-25T16:00:00Z",
                "2017-11-26T04:00:00Z",
                "2017-11-26T16:00:00Z",
                "2017-11-27T04:00:00Z",
            ),
            "2017-11-27T16:00:00Z",
        ),
        readme={"recall_at_10": 0.3844, "ndcg_at_10": 0.4074, "buy_auc": 0.551},
    ),
    "tmall": Task(
        name="tmall",
        path=SHARED / "tmall_2014_brand_log" / "t_alibaba_data.csv",
        data={"format": "tmall", "year": 2014},
        features={
            "period": "week",
            "n_periods": 13,
            "horizon": "30D",
            "future_periods": 4,
            "history": None,  # the README ranks every user with any event before the cutoff
            "max_events": 200,
        },
        split={"test_cutoff": "2014-07-16T00:00:00Z", "n_train_cutoffs": 4},
        pop_window="30D",
        half_life_days=14.0,
        readme={"recall_at_10": 0.1655, "ndcg_at_10": 0.1858, "buy_auc": 0.714, "churn_auc": 0.827},
    ),
}


def task_config(task: Task, state_dir: Path, train: dict[str, Any]) -> ProjectConfig:
    """The project configuration of ``task`` with its own state folder."""
    overrides = {
        "paths": {"state_dir": str(state_dir)},
        "data": task.data,
        "features": task.features,
        "split": task.split,
        "train": {
            **train,
            "baseline_pop_window": task.pop_window,
            "baseline_half_life_days": task.half_life_days,
        },
    }
    return load_config(overrides=overrides, env={})


def _utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


def task_splits(task: Task, events: pd.DataFrame, config: ProjectConfig) -> Splits:
    """Explicit cutoffs where the task gives them, else :func:`core.splits.make_splits`."""
    if task.cutoffs is None:
        return make_splits(events, config.split, config.features)
    train, val = task.cutoffs
    horizon = pd.Timedelta(config.features.horizon)
    return Splits([_utc(t) for t in train], _utc(val), _utc(config.split.test_cutoff), horizon)


def prepare_task(task: Task, config: ProjectConfig) -> tuple[pd.DataFrame, PreparedData]:
    """Load the events and build the arrays as :func:`core.dataset.prepare_dataset` does."""
    events = load_events(task.path, DataConfig(**task.data)).events
    splits = task_splits(task, events, config)
    features = config.features
    vocab = fit_vocabulary(events.loc[events["timestamp"] < splits.val, ["category_id"]], features)
    encoded = encode_events(events, vocab)
    parts = {
        "train": build_features(encoded, splits.train, vocab, features),
        "val": build_features(encoded, [splits.val], vocab, features),
        "test": build_features(encoded, [splits.test], vocab, features),
    }
    fingerprint = DataFingerprint(
        dataset=task.name,
        rows=len(events),
        content_hash=hash_events(events),
        vocab_hash=vocab.hash,
        cutoffs=splits.to_dict(),
    )
    data = PreparedData(
        vocab=vocab,
        spec=feature_spec(vocab, features),
        splits=splits,
        fingerprint=fingerprint,
        **parts,
    )
    return events, data
