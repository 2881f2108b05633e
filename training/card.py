"""The model card: metrics against baselines, and the plots a reviewer looks at first."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from core.arrays import SequenceArrays
from evaluation.demand import demand_wapes
from evaluation.metrics import recall_curve

KS: tuple[int, ...] = (1, 3, 5, 10, 20, 50)
CARD_METRICS: tuple[str, ...] = (
    "recall_at_10",
    "ndcg_at_10",
    "repeat_recall_at_10",
    "explore_recall_at_10",
    "buy_auc",
    "churn_auc",
    "trajectory_js",
)
CALIBRATION_METRICS: tuple[str, ...] = ("ece_raw", "ece", "threshold", "f1")


def _fmt(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.4f}"


def metrics_table(model: Mapping[str, float], baselines: Mapping[str, Mapping[str, float]]) -> str:
    """Markdown table: one row per metric, model vs each baseline."""
    names = list(baselines)
    lines = [
        "| metric | model | " + " | ".join(names) + " |",
        "|---" * (2 + len(names)) + "|",
    ]
    for metric in CARD_METRICS:
        cells = [_fmt(model.get(metric))] + [_fmt(baselines[b].get(metric)) for b in names]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def params_lines(baseline_params: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One bullet per baseline: the parameters chosen on validation."""
    return [
        f"- **{name}**: " + ", ".join(f"{k}={v}" for k, v in values.items())
        for name, values in baseline_params.items()
    ]


def calibration_lines(
    model: Mapping[str, float], calibration: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Markdown table: per head, the fitted map and test ECE before/after, F1 at threshold."""
    lines = [
        "| head | calibration | ECE raw | ECE calibrated | threshold (val) | F1 |",
        "|---|---|---|---|---|---|",
    ]
    for head, params in calibration.items():
        fitted = ", ".join(f"{k}={v:.3g}" for k, v in params.items() if isinstance(v, float))
        cells = [_fmt(model.get(f"{head}_{m}")) for m in CALIBRATION_METRICS]
        lines.append(f"| {head} | {params.get('method')} ({fitted}) | " + " | ".join(cells) + " |")
    return lines


def raw_calibration_lines(model: Mapping[str, float]) -> list[str]:
    """Markdown table: per head, the test ECE of the raw probabilities (no map fitted)."""
    lines = ["| head | calibration | ECE (test) |", "|---|---|---|"]
    for head in ("buy", "churn"):
        lines.append(f"| {head} | none (train.calibrate off) | {_fmt(model.get(f'{head}_ece'))} |")
    return lines


#: Rows of the demand table the card lists (largest forecasts first).
DEMAND_ROWS = 10


def demand_lines(demand: pd.DataFrame, cutoff: str, period: str) -> list[str]:
    """Markdown section: next-period demand per category against persistence and actual."""
    wapes = demand_wapes(demand)
    lines = [
        f"## Category demand forecast, the {period} from {cutoff} (evaluation.demand)",
        "",
        "Expected core-behaviour events per category: sum over users of P(active) x events per",
        "active period x the predicted share, scaled to last period's total; persistence is",
        "last period's demand. WAPE (lower is better): model "
        f"{_fmt(wapes['model'])} vs persistence {_fmt(wapes['persistence'])} over every "
        f"bucket, {_fmt(wapes['model_named'])} vs {_fmt(wapes['persistence_named'])} without "
        "`other`.",
        "",
        "| category | forecast | persistence | actual |",
        "|---|---|---|---|",
    ]
    for row in demand.head(DEMAND_ROWS).itertuples():
        cells = [
            f"{v:.1f}" if math.isfinite(v) else "n/a"
            for v in (row.forecast, row.persistence, row.actual)
        ]
        lines.append(f"| {row.category} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def save_plots(
    pred: Mapping[str, np.ndarray],
    baseline_pred: Mapping[str, Mapping[str, np.ndarray]],
    arrays: SequenceArrays,
    bucket_names: list[str],
    out: Path,
    demand: pd.DataFrame | None = None,
) -> list[Path]:
    """Write the card's plots as PNG files into ``out``.

    Plots: recall@K curve (model vs baselines), calibration of purchase and churn, one
    user's trajectory (predicted vs actual), and, given ``demand``
    (:func:`evaluation.demand.demand_table`), the category demand forecast next to
    persistence and what happened.
    """
    # Figures without pyplot: no GUI backend to choose and no global figure list to close.
    out.mkdir(parents=True, exist_ok=True)
    labels = arrays.labels()
    paths: list[Path] = []

    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    for name, scores in [("model", pred["next_cats"])] + [
        (b, p["next_cats"]) for b, p in baseline_pred.items()
    ]:
        curve = recall_curve(scores, labels["next_cats"], KS)
        ax.plot(list(curve), list(curve.values()), marker="o", label=name)
    ax.set(xscale="log", xlabel="K", ylabel="recall@K", title="Next-category recall@K")
    ax.legend(fontsize=7)
    paths.append(_save(fig, out / "recall_at_k.png"))

    fig = Figure(figsize=(8, 3.5))
    axes = fig.subplots(1, 2)
    for ax, head in zip(axes, ("buy", "churn"), strict=True):
        p, y = pred[head], labels[head]
        bins = np.clip((p * 10).astype(int), 0, 9)
        centres = [p[bins == b].mean() for b in range(10) if (bins == b).any()]
        rates = [y[bins == b].mean() for b in range(10) if (bins == b).any()]
        ax.plot([0, 1], [0, 1], ls="--", c="grey")
        ax.plot(centres, rates, marker="o")
        ax.set(xlabel="predicted", ylabel="observed", title=f"{head} calibration")
    paths.append(_save(fig, out / "calibration.png"))

    truth = labels["trajectory"]
    active = np.flatnonzero(truth.sum(axis=(1, 2)) > 0)
    if active.size:
        row = int(active[0])
        fig = trajectory_figure(
            pred["trajectory"][row], truth[row], bucket_names, str(arrays.user_id[row])
        )
        paths.append(_save(fig, out / "trajectory_example.png"))

    if demand is not None:  # the pooled "other" bucket would dwarf the named ones
        named = demand[demand["category"] != "other"]
        fig = Figure(figsize=(8, 3.5))
        ax = fig.subplots()
        idx = np.arange(len(named))
        for shift, column in ((-0.27, "forecast"), (0.0, "persistence"), (0.27, "actual")):
            ax.bar(idx + shift, named[column].fillna(0.0), width=0.27, label=column)
        ax.set_xticks(idx, named["category"].astype(str), rotation=90, fontsize=5)
        title = "Category demand, next period (named categories; 'other' in the card's table)"
        ax.set(ylabel="core-behaviour events", title=title)
        ax.legend()
        paths.append(_save(fig, out / "demand_forecast.png"))
    return paths


def trajectory_figure(
    predicted: np.ndarray, actual: np.ndarray, bucket_names: list[str], user: str
) -> Figure:
    """One user's interest trajectory, predicted beside actual, on one colour scale.

    Args:
        predicted: ``(K, C)`` shares per future period and category bucket.
        actual: ``(K, C)`` the shares that happened.
        bucket_names: the ``C`` bucket labels (rows of the heatmaps).
        user: the user's id, for the titles.
    """
    periods, buckets = predicted.shape
    fig = Figure(figsize=(9, max(3.5, 0.22 * buckets + 1.5)), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    top = float(max(np.max(predicted), np.max(actual), 1e-9))
    image = None
    for ax, data, title in ((axes[0], predicted, "predicted"), (axes[1], actual, "actual")):
        image = ax.imshow(
            data.T, aspect="auto", cmap="viridis", vmin=0.0, vmax=top, interpolation="nearest"
        )
        ax.set_xticks(range(periods), [str(k + 1) for k in range(periods)])
        ax.set(xlabel="future period", title=f"{title} trajectory ({user})")
    axes[0].set_yticks(range(buckets), bucket_names, fontsize=8)
    fig.colorbar(image, ax=list(axes), label="share of the user's events")
    return fig


#: How the card names the text switches of ``ModelConfig``.
CHANNEL_NAMES: dict[str, str] = {
    "use_text": "use_text (the user's earlier event texts)",
    "use_item_attrs": "use_item_attrs (attributes of the user's items)",
    "use_content": "use_content (category embeddings from each category's own text)",
}


def text_lines(comparison: Mapping[str, Any]) -> list[str]:
    """Markdown section: the model with its text channels and its text-free twin, on test."""
    with_text, without = comparison["with_text"], comparison["without_text"]
    ratio = comparison.get("text_over_no_text_recall_ratio")
    lines = [
        "## With and without text / item attributes (same plan, seed and samples; test)",
        "",
        f"Channels: {', '.join(CHANNEL_NAMES.get(c, c) for c in comparison.get('channels', []))}"
        f". recall@10 with / without: {_fmt(ratio)}.",
        "",
        "| metric | with text | without |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {_fmt(with_text.get(k))} | {_fmt(without.get(k))} |" for k in with_text]
    return [*lines, ""]


def _save(fig: Figure, path: Path) -> Path:
    if fig.get_layout_engine() is None:  # constrained figures lay themselves out
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def write_card(
    path: Path,
    *,
    title: str,
    model_metrics: Mapping[str, float],
    baselines: Mapping[str, Mapping[str, float]],
    params: Mapping[str, Any],
    fingerprint: Mapping[str, Any],
    plots: list[Path],
    baseline_params: Mapping[str, Mapping[str, Any]] | None = None,
    calibration: Mapping[str, Mapping[str, Any]] | None = None,
    text_comparison: Mapping[str, Any] | None = None,
    demand: Mapping[str, Any] | None = None,
) -> Path:
    """Write the Markdown model card next to its plots.

    ``baseline_params`` (chosen on validation), ``text_comparison``
    (``training.text_data.text_ablation``) and ``demand`` (``table``, ``cutoff``,
    ``period``: :func:`evaluation.demand.demand_table` at the test cutoff) add their
    sections when given; calibration is the fitted map per head (``calibration``) or the
    raw probabilities' test ECE.
    """
    lines = [
        f"# {title}",
        "",
        "Predicts, per user at a cutoff: next-horizon categories (ranked), purchase, churn and",
        "the category-interest trajectory over the next periods.",
        "",
        "## Test metrics vs baselines (same split; heuristics tuned on validation, gbdt_rerank)",
        "",
        metrics_table(model_metrics, baselines),
        "",
    ]
    if baseline_params:
        lines += [
            "## Baseline parameters (chosen on validation)",
            "",
            *params_lines(baseline_params),
            "",
        ]
    if calibration:
        lines += [
            "## Calibration (fitted on validation, measured on test; ECE over 10 bins)",
            "",
            *calibration_lines(model_metrics, calibration),
            "",
        ]
    else:
        lines += [
            "## Calibration (ECE over 10 bins)",
            "",
            *raw_calibration_lines(model_metrics),
            "",
        ]
    if demand is not None:
        lines += demand_lines(demand["table"], demand["cutoff"], demand["period"])
    if text_comparison:
        lines += text_lines(text_comparison)
    lines += [
        "## Training data",
        "",
        *[f"- **{k}**: {v}" for k, v in fingerprint.items()],
        "",
        "## Configuration",
        "",
        *[f"- `{k}` = {v}" for k, v in params.items()],
        "",
        "## Plots",
        "",
        *[f"![{p.stem}]({p.name})" for p in plots],
        "",
    ]
    path.write_text("\n".join(lines))
    return path
