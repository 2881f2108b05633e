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

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core.config import DataConfig, ProjectConfig, load_config
from core.dataset import DataFingerprint, PreparedData, hash_events
from core.features import build_features, encode_events, feature_spec
from core.splits import Splits, make_splits
from core.vocab import fit_vocabulary
from evaluation.baselines import evaluate_baselines
from evaluation.learned import NAME as GBDT
from evaluation.learned import gbdt_predictions
from evaluation.protocol import protocol_arrays
from evaluation.samples import score_predictions
from evaluation.tuned import WEIGHT_PRESETS, heuristic_predictions, tune_heuristics
from eventlogs.loaders import load_events

REPO = Path(__file__).resolve().parents[1]
#: ``../shared/data`` next to the repository (``INTEREST_SHARED_DATA`` overrides, as in tests).
SHARED = Path(os.environ.get("INTEREST_SHARED_DATA", REPO.parent / "shared" / "data"))


@dataclass(frozen=True)
class Task:
    """One dataset's protocol."""

    name: str
    path: Path
    data: dict[str, Any]
    features: dict[str, Any]
    split: dict[str, Any]
    pop_window: str  # README popularity window; the refit tunes its own on validation
    half_life_days: float  # README half-life, likewise
    # The README protocol: its cutoff, horizon and first history day (None: all history).
    protocol: tuple[str, str, str | None] = ("", "", None)
    # Explicit (train cutoffs, val cutoff) in UTC when make_splits cannot apply.
    cutoffs: tuple[tuple[str, ...], str] | None = None
    readme: dict[str, float] = field(default_factory=dict)
    # The README's heuristic rows: baseline -> (recall@10, NDCG@10), and the weights preset
    # (evaluation.tuned.WEIGHT_PRESETS) its personal rows use.
    readme_table: dict[str, tuple[float, float]] = field(default_factory=dict)
    readme_weights: str = "readme"


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
        protocol=("2017-11-30T16:00:00Z", "3D", "2017-11-24T16:00:00Z"),
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
        readme_table={
            "popularity": (0.2345, 0.2389),
            "personal_freq": (0.3809, 0.3999),
            "personal_decay": (0.3844, 0.4074),
        },
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
        protocol=("2014-07-16T00:00:00Z", "30D", None),
        readme={"recall_at_10": 0.1655, "ndcg_at_10": 0.1858, "buy_auc": 0.714, "churn_auc": 0.827},
        readme_table={
            "popularity": (0.0772, 0.0862),
            "personal_freq": (0.1533, 0.1692),
            "personal_decay": (0.1655, 0.1858),
        },
        readme_weights="uniform",  # its rows say "personal frequency", not weighted
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


def prepare_task(
    task: Task, config: ProjectConfig, vocab_until: str = "val"
) -> tuple[pd.DataFrame, PreparedData]:
    """Load the events and build the arrays as :func:`core.dataset.prepare_dataset` does.

    ``vocab_until="test"`` fits the vocabulary on every event before the test cutoff, as
    :func:`core.dataset.prepare_refit_data` does for the refit, on the task's own cutoffs.
    """
    events = load_events(task.path, DataConfig(**task.data)).events
    splits = task_splits(task, events, config)
    features = config.features
    until = splits.val if vocab_until == "val" else splits.test
    vocab = fit_vocabulary(events.loc[events["timestamp"] < until, ["category_id"]], features)
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


def protocol_figures(task: Task, events: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Every baseline on the README's exact users: its rows, tuned rows and ``gbdt_rerank``.

    ``readme.<b>`` uses the README's parameters (with its figures alongside); ``tuned.<b>``
    takes parameters chosen at the cutoff one horizon earlier (no test labels are read);
    ``gbdt_rerank`` learns on earlier cutoffs.
    """
    cutoff, horizon, start = task.protocol
    weights = WEIGHT_PRESETS[task.readme_weights]
    table = evaluate_baselines(
        events,
        cutoff,
        horizon,
        task.pop_window,
        task.half_life_days,
        history_start=start,
        weights=weights,
    )
    out: dict[str, dict[str, float]] = {}
    for name, values in table.items():
        recall, ndcg = task.readme_table.get(name, (float("nan"), float("nan")))
        out[f"readme.{name}"] = {
            "recall_at_10": values["recall_at_10"],
            "ndcg_at_10": values["ndcg_at_10"],
            "readme_recall_at_10": recall,
            "readme_ndcg_at_10": ndcg,
        }
    val_cut = _utc(cutoff) - pd.Timedelta(horizon)
    val, val_vocab = protocol_arrays(events, val_cut, horizon, history_start=start)
    params, _ = tune_heuristics(events, val, val_vocab)
    test, vocab = protocol_arrays(events, cutoff, horizon, history_start=start)
    preds = {
        f"tuned.{n}": p
        for n, p in heuristic_predictions(events, test, vocab, params, horizon).items()
    }
    window = params["popularity"].pop_window
    preds[GBDT] = gbdt_predictions(events, test, vocab, horizon, pop_window=window)
    keys = ("recall_at_10", "ndcg_at_10", "repeat_recall_at_10", "explore_recall_at_10")
    for name, pred in preds.items():
        metrics = score_predictions(pred, test).metrics
        out[name] = {k: metrics[k] for k in keys}
        base = name.removeprefix("tuned.")
        if base in params:
            out[name].update(
                {f"param.{k}": v for k, v in params[base].to_dict().items() if v is not None}
            )
    return out
