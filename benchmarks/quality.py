"""Model quality against the README heuristics, plus tuning overhead and pruning savings.

One command::

    .venv/bin/python benchmarks/quality.py [--budget small|full] [--tasks taobao,tmall] [--no-extras]

For each task (:mod:`benchmarks.quality_data`: the README's ``configs/<name>.toml`` with this
budget) it runs a fixed-budget study through ``training.tune.run_study`` (temporary state
folder and MLflow store, ``register=False``) and prints the refit winner's test metrics next
to the baselines scored on the same test samples by the refit run (``baseline.*``), with the
ratio model / best baseline (for the trajectory JS divergence, lower is better: ratio < 1
beats persistence). The baselines are
all of :mod:`evaluation.suite` (heuristics tuned on validation, ``gbdt_rerank``); per task the
JSON holds ``<metric>_ratio`` against the best of them on the same users, ``buy_auc_delta``,
the calibrated ``buy_ece``, and ``protocol``: the README's rows reproduced on its exact users
next to the tuned heuristics and ``gbdt_rerank`` there. Unless ``--no-extras``, the first task
also measures

* overhead: a trial of the winning plan through the tuned pipeline (nested MLflow run,
  per-epoch validation, Optuna reporting) against plain ``fit_model`` of the same plan on
  the same arrays, per epoch (goal <= 1.10);
* pruning: epochs and best value of the study (MedianPruner) against the same sampler and
  trials without pruning (NopPruner).

Writes ``benchmarks/results/quality.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BUDGETS: dict[str, dict[str, Any]] = {
    "small": {"trials": 3, "epochs": 2, "batch_size": 64, "pretrain_epochs": 1},
    "full": {"trials": 10, "epochs": 6, "batch_size": 64, "pretrain_epochs": 1},
}
# metric -> higher is better
METRICS: dict[str, bool] = {
    "recall_at_10": True,
    "ndcg_at_10": True,
    "repeat_recall_at_10": True,
    "explore_recall_at_10": True,
    "buy_auc": True,
    "churn_auc": True,
    "trajectory_js": False,
}
RESULTS = Path(__file__).resolve().parent / "results" / "quality.json"


def compare(model: dict[str, float], baselines: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Per metric: model value, best baseline (name, value) and model / best baseline."""
    rows: dict[str, Any] = {}
    for metric, higher in METRICS.items():
        values = {
            n: b[metric] for n, b in baselines.items() if b.get(metric, math.nan) == b.get(metric)
        }
        if not values or metric not in model or model[metric] != model[metric]:
            continue
        best = (max if higher else min)(values, key=values.get)
        ratio = model[metric] / values[best] if values[best] else float("nan")
        beats = model[metric] > values[best] if higher else model[metric] < values[best]
        rows[metric] = {
            "model": model[metric],
            "best_baseline": best,
            "baseline": values[best],
            "ratio": ratio,
            "beats": bool(beats),
        }
    return rows


def task_ratios(model: dict[str, float], baselines: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The issue's keys: model / best baseline per metric, the buy AUC gap, calibrated ECE."""
    rows = compare(model, baselines)

    def ratio(metric: str) -> float | None:
        return rows[metric]["ratio"] if metric in rows else None

    out: dict[str, Any] = {
        f"{m}_ratio": ratio(m)
        for m in ("recall_at_10", "ndcg_at_10", "explore_recall_at_10", "repeat_recall_at_10")
    }
    buy = rows.get("buy_auc")
    out["buy_auc_delta"] = buy["model"] - buy["baseline"] if buy else None
    out["buy_ece"] = model.get("buy_ece")
    out["buy_ece_raw"] = model.get("buy_ece_raw")
    out["trajectory_js_ratio"] = ratio("trajectory_js")
    return out


def measure_demand(config: Any, run_id: str, events: Any, cutoff: Any) -> dict[str, Any]:
    """The refit model's category demand forecast at ``cutoff`` against persistence.

    ``pipelines.demand.forecast_demand`` on the refit run's bundle, at both levels: WAPE
    over every trajectory bucket (and over the named ones, without the pooled ``other``)
    for the model and for last period's demand. ``demand_wape_ratio`` = model /
    persistence at the default level, ``demand_model_level_wape_ratio`` at the model's own.
    """
    import mlflow

    from evaluation.demand import demand_wapes
    from modelkit.bundle import load_bundle
    from pipelines.demand import forecast_demand

    out: dict[str, Any] = {"demand": {"cutoff": str(cutoff)}}
    with tempfile.TemporaryDirectory(prefix="quality-demand-") as tmp:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path="bundle",
            dst_path=tmp,
            tracking_uri=config.paths.resolved().tracking_uri,
        )
        bundle = load_bundle(Path(local))
        for level, key in (("persistence", "demand"), ("model", "demand_model_level")):
            wapes = demand_wapes(forecast_demand(bundle, events, cutoff, level=level))
            out["demand"][level] = wapes
            base, named = wapes["persistence"], wapes["persistence_named"]
            out[f"{key}_wape_ratio"] = wapes["model"] / base if base else None
            out[f"{key}_named_wape_ratio"] = wapes["model_named"] / named if named else None
    return out


def measure_overhead(config: Any, data: Any, params: dict[str, Any]) -> dict[str, float]:
    """Seconds per epoch of one trial in the tuned pipeline vs plain ``fit_model``."""
    import mlflow
    import optuna

    from training.fit import fit_model
    from training.search import TrialPlan
    from training.trials import make_objective

    params = {**params, "init": "scratch"}  # pre-training time is not epoch time
    epochs, batch = config.train.epochs, config.train.batch_size
    plan = TrialPlan.from_params(params)
    plain = fit_model(plan, data.spec, data.train, epochs=epochs, batch_size=batch, seed=1)
    objective = make_objective(config, data, warm_start=None, study_name="overhead")
    trial = optuna.trial.FixedTrial(params, number=0)
    with mlflow.start_run(run_name="overhead"):
        start = time.perf_counter()
        objective(trial)
        wall = time.perf_counter() - start
    run = mlflow.get_run(trial.user_attrs["mlflow_run_id"])
    tuned = float(run.data.metrics["fit_seconds"])
    return {
        "epochs": float(epochs),
        "plain_s_per_epoch": plain.seconds / epochs,
        "tuned_fit_s_per_epoch": tuned / epochs,
        "tuned_trial_s_per_epoch": wall / epochs,
        "ratio_fit": tuned / plain.seconds,
        "ratio_trial": wall / plain.seconds,
    }


def _epochs_of(study: Any) -> tuple[int, float, int]:
    import optuna

    done = [t for t in study.trials if t.state.is_finished()]
    epochs = sum(len(t.intermediate_values) for t in done)
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in done)
    return epochs, float(study.best_value), pruned


def measure_pruning(config: Any, data: Any, study_name: str) -> dict[str, float]:
    """Epochs and best value: the finished study (MedianPruner) vs the same without pruning."""
    import mlflow
    import optuna

    from training.trials import make_objective

    storage = config.paths.resolved().optuna_storage
    median = optuna.load_study(study_name=study_name, storage=storage)
    nop = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=config.train.seed),
        pruner=optuna.pruners.NopPruner(),
    )
    objective = make_objective(config, data, warm_start=None, study_name="no-pruning")
    with mlflow.start_run(run_name="no-pruning"):
        nop.optimize(objective, n_trials=config.train.trials)
    m_epochs, m_best, m_pruned = _epochs_of(median)
    n_epochs, n_best, _ = _epochs_of(nop)
    return {
        "median_epochs": float(m_epochs),
        "median_best": m_best,
        "median_pruned_trials": float(m_pruned),
        "nop_epochs": float(n_epochs),
        "nop_best": n_best,
        "epochs_saved": float(n_epochs - m_epochs),
    }


def run_task(name: str, budget: dict[str, Any], extras: bool) -> dict[str, Any]:
    """Study, refit and comparison for one task (plus overhead/pruning when ``extras``)."""
    from benchmarks.quality_data import TASKS, prepare_task, protocol_figures, task_config
    from training.tune import run_study

    task = TASKS[name]
    with tempfile.TemporaryDirectory(prefix=f"quality-{name}-") as tmp:
        study = f"quality-{name}"
        train = {**budget, "study_name": study, "experiment": "quality"}
        config = task_config(task, Path(tmp), train)
        events, data = prepare_task(task, config)
        start = time.perf_counter()
        outcome = run_study(
            config, events, data, source=str(task.path), register=False, show_progress=False
        )
        out: dict[str, Any] = {
            "study_seconds": time.perf_counter() - start,
            "samples": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
            "best_params": outcome.best_params,
            "n_complete": outcome.n_complete,
            "n_pruned": outcome.n_pruned,
            "test": outcome.refit.test_metrics,
            "baselines": outcome.refit.baselines,
            "readme_best": task.readme,
            "compare": compare(outcome.refit.test_metrics, outcome.refit.baselines),
            "protocol": protocol_figures(task, events),
        }
        out.update(task_ratios(outcome.refit.test_metrics, outcome.refit.baselines))
        out.update(measure_demand(config, outcome.refit.run_id, events, data.splits.test))
        if extras:
            out["pruning"] = measure_pruning(config, data, study)
            out["overhead"] = measure_overhead(config, data, outcome.best_params)
    return out


def print_table(results: dict[str, Any]) -> None:
    """Model vs best baseline per task and metric, then overhead and pruning."""
    print(f"\n{'task':<8}{'metric':<15}{'model':>8}{'baseline':>10}  {'best baseline':<16}ratio")
    from benchmarks.quality_text import print_text_table

    for task, res in results["tasks"].items():
        if "text_over_no_text_recall_ratio" in res:
            print_text_table(task, res)
            continue
        for metric, row in res["compare"].items():
            flag = "" if row["beats"] else "  (not beaten)"
            print(
                f"{task:<8}{metric:<15}{row['model']:>8.4f}{row['baseline']:>10.4f}  "
                f"{row['best_baseline']:<16}{row['ratio']:.3f}{flag}"
            )
        for name, row in res["protocol"].items():
            readme = row.get("readme_recall_at_10")
            ref = "" if readme is None else f"  (README {readme:.4f})"
            print(f"{task:<8}protocol {name:<24}recall@10 {row['recall_at_10']:.4f}{ref}")
        keys = (
            "recall_at_10_ratio",
            "explore_recall_at_10_ratio",
            "buy_auc_delta",
            "buy_ece",
            "demand_wape_ratio",
        )
        print(f"{task} " + ", ".join(f"{k}={res.get(k)}" for k in keys))
        for key in ("overhead", "pruning"):
            if key in res:
                print(f"{task} {key}: " + ", ".join(f"{k}={v:.3g}" for k, v in res[key].items()))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse arguments, run every task, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="small")
    parser.add_argument(
        "--tasks",
        default="taobao,tmall",
        help="comma-separated task names: taobao, tmall, and the text tasks amazon_reviews, "
        "rees46 (benchmarks/quality_text.py)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-extras", action="store_true", help="skip overhead and pruning")
    args = parser.parse_args(argv)
    budget = BUDGETS[args.budget]
    results: dict[str, Any] = {"budget": args.budget, **budget, "tasks": {}}
    start = time.perf_counter()
    from benchmarks.quality_text import TEXT_TASKS, run_text_task

    for i, name in enumerate(n.strip() for n in args.tasks.split(",")):
        if name in TEXT_TASKS:
            results["tasks"][name] = run_text_task(name, args.budget)
            continue
        results["tasks"][name] = run_task(name, budget, extras=i == 0 and not args.no_extras)
    results["seconds"] = time.perf_counter() - start
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # Merge: a run of some tasks keeps the other tasks' results already in the file.
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    tasks = {**previous.get("tasks", {}), **results["tasks"]}
    args.out.write_text(
        json.dumps({**previous, **results, "tasks": tasks}, indent=2, sort_keys=True, default=float)
    )
    print(f"wrote {args.out} in {results['seconds']:.0f} s")
    return results


if __name__ == "__main__":
    main()
