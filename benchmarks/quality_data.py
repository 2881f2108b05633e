"""The two real-data quality tasks of ``benchmarks/quality.py``: loading, config, splits.

Each task's project configuration is its ``configs/<name>.toml`` (the file the README's
``interest --config configs/<name>.toml tune`` reads: features, split, ``train.fixed_params``),
with only the benchmark's state folder and budget on top, so the benchmark scores the model a
user of that command gets; the splits and arrays come from :func:`core.dataset.prepare_dataset`
as in ``interest tune``. The README protocol rows (:func:`protocol_figures`) keep the test
cutoff, horizon, history window, popularity window and half-life of ``shared/data/README.md``
so that they match its tables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core.config import ProjectConfig, load_config
from core.dataset import PreparedData, prepare_dataset
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
CONFIGS = REPO / "configs"


@dataclass(frozen=True)
class Task:
    """One dataset's protocol."""

    name: str
    path: Path
    config: Path  # the README's configs/<name>.toml: data, features, split, train settings
    pop_window: str  # README popularity window (protocol rows); the refit tunes its own
    half_life_days: float  # README half-life, likewise
    # The README protocol: its cutoff, horizon and first history day (None: all history).
    protocol: tuple[str, str, str | None] = ("", "", None)
    readme: dict[str, float] = field(default_factory=dict)
    # The README's heuristic rows: baseline -> (recall@10, NDCG@10), and the weights preset
    # (evaluation.tuned.WEIGHT_PRESETS) its personal rows use.
    readme_table: dict[str, tuple[float, float]] = field(default_factory=dict)
    readme_weights: str = "readme"


TASKS: dict[str, Task] = {
    "taobao": Task(
        name="taobao",
        path=SHARED / "taobao_userbehavior" / "user_behavior.csv",
        config=CONFIGS / "taobao.toml",
        pop_window="3D",
        half_life_days=1.0,
        protocol=("2017-11-30T16:00:00Z", "3D", "2017-11-24T16:00:00Z"),
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
        config=CONFIGS / "tmall.toml",
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
    """``task.config`` with the benchmark's state folder and ``train`` settings on top.

    ``train`` holds the budget, study name and experiment; every other setting (features,
    split, ``train.fixed_params``, baselines) is the file's, as in ``interest tune``.
    """
    overrides = {"paths": {"state_dir": str(state_dir)}, "train": train}
    return load_config(task.config, overrides=overrides, env={})


def _utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


def prepare_task(task: Task, config: ProjectConfig) -> tuple[pd.DataFrame, PreparedData]:
    """Load the events and build splits and arrays as ``interest tune`` does.

    The refit's data (vocabulary up to the test cutoff, same splits) is left to
    :func:`training.tune.run_study`, which rebuilds it with ``prepare_refit_data``.
    """
    events = load_events(task.path, config.data).events
    return events, prepare_dataset(events, config, task.name)


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
