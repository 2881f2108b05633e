"""Text and item attributes: the same model with and without them, against the baselines.

Run through ``benchmarks/quality.py --tasks amazon_reviews,rees46`` (or this file directly,
same options). Per task: the vocabulary and the text vectorisers are fitted on the events
before the test cutoff; the model (one fixed :class:`ModelConfig`, no study) trains on the
train and validation cutoffs, whose label windows all end by the test cutoff, once with the
text channels off and once on (same seeds, same samples); the baselines of
:mod:`evaluation.suite` (popularity, personal frequency/decay, repeat, ``gbdt_rerank``) are
tuned on the validation samples and scored on the same test samples.

Variants (:data:`VARIANTS`): ``text`` (the input-side channels of the task), ``content``
(content-aware category embeddings, :mod:`modelkit.content`), ``text_content`` (both). Each
variant is also trained on the train cutoffs alone and scored on the validation samples; the
text variant with the best validation recall@10 is the one reported as "with text" (test
figures never choose). Content profiles read text before the earliest training cutoff while
training and before the scored cutoff (validation or test) when scoring. Per task the JSON
holds ``text_over_no_text_recall_ratio`` (test recall@10 of the chosen variant over the
text-free model, mean over seeds) and the chosen variant over the best baseline.

Cutoffs of the review log sit at midnight UTC and its events are dated to the day: a user's
same-day reviews fall wholly before or wholly after any cutoff (a day is one step), and
text at or after a cutoff never reaches that cutoff's samples (:mod:`core.textbag`).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.quality_data import SHARED  # noqa: E402

#: Epochs, batch size and seeds per ``--budget`` (the model is fixed: no study to pay for).
TEXT_BUDGETS: dict[str, dict[str, int]] = {
    "small": {"epochs": 6, "batch_size": 64, "seeds": 2},
    "full": {"epochs": 12, "batch_size": 64, "seeds": 3},
}
# The shape the review-log study picked (mixture head: 5-core users never re-buy an item).
SMALL_MODEL: dict[str, Any] = {
    "cell": "gru",
    "units": 32,
    "cat_embed_dim": 32,
    "head_units": 64,
    "pooling": "mean",
    "next_cats_head": "mixture",
    "dropout": 0.1,
    "text_embed_dim": 32,
}


@dataclass(frozen=True)
class TextTask:
    """One text task: where the log is, how it is read and cut, which channels it has."""

    name: str
    path: Any
    data: dict[str, Any]
    features: dict[str, Any]
    split: dict[str, Any]
    pop_window: str
    half_life_days: float
    channels: dict[str, bool] = field(default_factory=dict)  # ModelConfig text flags
    # Explicit (train cutoffs, val cutoff) where make_splits cannot apply (REES46: 3 hours).
    cutoffs: tuple[tuple[str, ...], str] | None = None


TEXT_TASKS: dict[str, TextTask] = {
    "amazon_reviews": TextTask(
        name="amazon_reviews",
        path=SHARED / "amazon_musical_instruments_5core" / "reviews.csv",
        data={"format": "amazon_reviews"},
        # Next item (category = item): 899 items, reviews dated to the day, years apart.
        features={
            "period": "week",
            "n_periods": 8,
            "horizon": "180D",
            "future_periods": 4,
            "history": None,
            "max_events": 50,
            "top_categories": 30,
        },
        split={"test_cutoff": "2014-01-23T00:00:00Z", "n_train_cutoffs": 4, "train_step": "60D"},
        pop_window="180D",
        half_life_days=90.0,
        channels={"use_text": True},
    ),
    "rees46": TextTask(
        name="rees46",
        path=SHARED / "rees46_2019oct_head" / "events.csv",
        data={"format": "rees46"},
        # Three hours of one store: next category within 30 minutes.
        features={
            "period": "hour",
            "n_periods": 3,
            "horizon": "30min",
            "future_periods": 1,
            "history": None,
            "max_events": 50,
            "top_categories": 30,
        },
        split={"test_cutoff": "2019-10-01T02:20:00Z"},
        pop_window="1h",
        half_life_days=0.02,
        channels={"use_item_attrs": True},
        # The one-hour trajectory span leaves no history for derived train cutoffs: train
        # label windows overlap validation (as Taobao's); none reaches the test cutoff.
        cutoffs=(
            ("2019-10-01T00:40:00Z", "2019-10-01T01:00:00Z", "2019-10-01T01:20:00Z"),
            "2019-10-01T01:50:00Z",
        ),
    ),
    # The same store where it has events: 11,422 of the 12,328 events fall in 02:00-02:50
    # (00:20-02:00 holds 128), so "rees46"'s training and validation samples are 99.5% and
    # 98.5% label-free (4 and 5 labelled samples): nothing, text or not, can be learned there.
    # Here: next category within 10 minutes, cutoffs every 3 minutes from 02:05.
    "rees46_dense": TextTask(
        name="rees46_dense",
        path=SHARED / "rees46_2019oct_head" / "events.csv",
        data={"format": "rees46"},
        features={
            "period": "hour",
            "n_periods": 3,
            "horizon": "10min",
            "future_periods": 1,
            "history": None,
            "max_events": 50,
            "top_categories": 30,
        },
        split={"test_cutoff": "2019-10-01T02:40:00Z"},
        pop_window="20min",
        half_life_days=0.01,
        channels={"use_item_attrs": True},
        cutoffs=(
            tuple(f"2019-10-01T02:{m:02d}:00Z" for m in (5, 8, 11, 14, 17, 20)),
            "2019-10-01T02:30:00Z",
        ),
    ),
}


def prepare_text_task(task: TextTask) -> dict[str, Any]:
    """Events, vocabulary, splits, text features and the three sample sets of ``task``."""
    from core.arrays import SequenceArrays
    from core.config import DataConfig, load_config
    from core.features import build_features, encode_events, feature_spec
    from core.splits import Splits, make_splits
    from core.vocab import fit_vocabulary
    from eventlogs.loaders import load_events
    from modelkit.text_features import attach_text, event_tokens, fit_text_features, text_spec

    config = load_config(overrides={"features": task.features, "split": task.split}, env={})
    events = load_events(task.path, DataConfig(**task.data)).events
    if task.cutoffs is None:
        splits = make_splits(events, config.split, config.features)
    else:
        utc = [pd.Timestamp(t).tz_convert("UTC") for t in (*task.cutoffs[0], task.cutoffs[1])]
        test = pd.Timestamp(config.split.test_cutoff).tz_convert("UTC")
        splits = Splits(utc[:-1], utc[-1], test, pd.Timedelta(config.features.horizon))
    before = events["timestamp"] < splits.test
    vocab = fit_vocabulary(events.loc[before, ["category_id"]], config.features)
    text = fit_text_features(events, splits.test)
    tokens = event_tokens(text, events)
    from modelkit.content import content_spec

    encoded = encode_events(events, vocab)
    sets = {}
    for name, cutoffs in (("train", splits.train), ("val", [splits.val]), ("test", [splits.test])):
        arrays = build_features(encoded, cutoffs, vocab, config.features)
        sets[name] = attach_text(arrays, events, text, config.features, tokens)
    sets["fit"] = SequenceArrays.concat([sets["train"], sets["val"]])
    base = text_spec(feature_spec(vocab, config.features), text)
    first = min(splits.train)
    specs = {
        name: content_spec(base, events, vocab, text, tokens, fit_until=first, score_until=until)
        for name, until in (("val", splits.val), ("test", splits.test))
    }
    return {"config": config, "events": events, "splits": splits, "vocab": vocab, "text": text,
            "spec": specs["test"], "spec_val": specs["val"], **sets}  # fmt: skip


def _fit_and_score(prepared: dict[str, Any], flags: dict[str, bool], budget: dict[str, Any],
                   seed: int, split: str = "test") -> dict[str, float]:  # fmt: skip
    """Train on train + validation and score the test samples (``split="test"``), or train
    on the train cutoffs and score the validation samples (``split="val"``)."""
    import dataclasses

    from evaluation.samples import score_predictions
    from modelkit.model_config import ModelConfig
    from training.fit import fit_model, predict_arrays
    from training.search import TrialPlan

    plan = TrialPlan(model=ModelConfig(**SMALL_MODEL, **flags))
    # Only the channels this variant reads: the text-free model gets exactly its old inputs.
    drop = {"text_tokens": None, "attr_tokens": None}
    if flags.get("use_text"):
        drop.pop("text_tokens")
    if flags.get("use_item_attrs"):
        drop.pop("attr_tokens")
    fit, scored, spec = ("fit", "test", "spec") if split == "test" else ("train", "val", "spec_val")
    train = dataclasses.replace(prepared[fit], **drop)
    test = dataclasses.replace(prepared[scored], **drop)
    result = fit_model(
        plan,
        prepared[spec],
        train,
        epochs=budget["epochs"],
        batch_size=budget["batch_size"],
        seed=seed,
        pretrain_epochs=0,
    )
    metrics = score_predictions(predict_arrays(result.model, test), test).metrics
    metrics["fit_seconds"] = result.seconds
    return metrics


def variant_flags(task: TextTask) -> dict[str, dict[str, bool]]:
    """ModelConfig switches of each variant: none, the task's channels, content, both."""
    content = {"use_content": True}
    return {"without": {}, "text": dict(task.channels), "content": content,
            "text_content": {**task.channels, **content}}  # fmt: skip


def _mean(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = [k for k in runs[0] if isinstance(runs[0][k], int | float)]
    return {k: float(np.nanmean([r[k] for r in runs])) for k in keys}


def run_text_task(name: str, budget_name: str = "small") -> dict[str, Any]:
    """With / without text for one task, plus every baseline on the same test samples."""
    from evaluation.suite import run_baseline_suite

    task = TEXT_TASKS[name]
    start = time.perf_counter()
    prepared = prepare_text_task(task)
    budget = TEXT_BUDGETS[budget_name]
    seeds = list(range(budget["seeds"]))
    recall = "recall_at_10"
    variants: dict[str, dict[str, Any]] = {}
    runs: dict[str, list[dict[str, float]]] = {}
    for variant, flags in variant_flags(task).items():
        val = [_fit_and_score(prepared, flags, budget, s, "val") for s in seeds]
        runs[variant] = [_fit_and_score(prepared, flags, budget, s) for s in seeds]
        variants[variant] = {
            "flags": sorted(flags),
            "val_recall_at_10": float(np.mean([r[recall] for r in val])),
            "val_per_seed": [r[recall] for r in val],
            "test": _mean(runs[variant]),
            "test_per_seed": [r[recall] for r in runs[variant]],
        }
    chosen = max((v for v in variants if v != "without"),
                 key=lambda v: variants[v]["val_recall_at_10"])  # fmt: skip
    without, with_text = runs["without"], runs[chosen]
    suite = run_baseline_suite(
        prepared["events"],
        prepared["test"],
        prepared["vocab"],
        prepared["config"].features.horizon,
        val=prepared["val"],
        pop_window=task.pop_window,
        half_life_days=task.half_life_days,
    )
    baselines = suite.metrics
    model, plain = _mean(with_text), _mean(without)
    best = max(baselines, key=lambda b: baselines[b]["recall_at_10"])
    text = prepared["text"]
    return {
        "seconds": time.perf_counter() - start,
        "samples": {k: len(prepared[k]) for k in ("train", "val", "test")},
        "cutoffs": prepared["splits"].to_dict(),
        "channels": sorted(task.channels),
        "text_vocabulary": {
            "text": len(text.text.vocabulary) if text.text else 0,
            "attrs": len(text.attrs.vocabulary) if text.attrs else 0,
        },
        "budget": {"name": budget_name, **budget},
        "seeds": seeds,
        "variants": variants,
        "chosen_variant": chosen,
        "val_text_over_no_text_recall_ratio": (
            variants[chosen]["val_recall_at_10"] / variants["without"]["val_recall_at_10"]
            if variants["without"]["val_recall_at_10"]
            else None
        ),
        "with_text": model,
        "without_text": plain,
        "with_text_per_seed": [r[recall] for r in with_text],
        "without_text_per_seed": [r[recall] for r in without],
        "baselines": baselines,
        "best_baseline": best,
        "text_over_no_text_recall_ratio": model[recall] / plain[recall] if plain[recall] else None,
        "text_over_best_baseline_recall_ratio": (
            model[recall] / baselines[best][recall] if baselines[best][recall] else None
        ),
        "no_text_over_best_baseline_recall_ratio": (
            plain[recall] / baselines[best][recall] if baselines[best][recall] else None
        ),
    }


def print_text_table(name: str, res: dict[str, Any]) -> None:
    """One block per text task: recall@10 of both variants and every baseline."""
    print(f"\n{name}: recall@10 (test samples {res['samples']['test']}, seeds {res['seeds']})")
    for variant, row in res.get("variants", {}).items():
        print(f"  {'model ' + variant:<28}{row['test']['recall_at_10']:.4f}  (validation "
              f"{row['val_recall_at_10']:.4f})")  # fmt: skip
    print(f"  {'chosen on validation':<28}{res.get('chosen_variant', 'text')}")
    for base, metrics in sorted(res["baselines"].items()):
        print(f"  {'baseline ' + base:<28}{metrics['recall_at_10']:.4f}")
    print(
        f"  text_over_no_text_recall_ratio={res['text_over_no_text_recall_ratio']:.3f}  "
        f"text_over_best_baseline ({res['best_baseline']})="
        f"{res['text_over_best_baseline_recall_ratio']:.3f}"
    )


if __name__ == "__main__":  # the text tasks alone; the same options as benchmarks/quality.py
    from benchmarks.quality import main

    main(["--tasks", "amazon_reviews,rees46", *sys.argv[1:]])
