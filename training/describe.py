"""What a person reads first in MLflow: descriptions of the experiment, model and versions."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

EXPERIMENT_DESCRIPTION = (
    "Training of the interest-evolution model: one parent run per Optuna study (the study's "
    "plots and the dataset input), one nested run per trial (its params, per-epoch metrics "
    "and dataset input), and the refit run of the winner (test metrics, baselines on the same "
    "split as `baseline.<name>.<metric>`, the model card under `card/`, the serving bundle "
    "under `bundle/`). Only refit runs are registered."
)
CARD_ARTIFACT = "card/model_card.md"
MODEL_DESCRIPTION = (
    "Forecasts of how each e-commerce user's interests evolve: the next categories they "
    "will engage with (ranked), purchase and churn odds, and the interest mix over the next "
    "periods. Aliases: `champion` (served), `challenger` (last registered), `previous` (the "
    "champion before). Each version's run holds its test metrics and the baselines' on the "
    "same split (`baseline.<name>.<metric>`), its model card (`card/model_card.md`) and the "
    "serving bundle (`bundle/`); CONTRACT.md describes the bundle and the tags."
)


def log_run_metrics(
    client: MlflowClient, run_id: str, given: Mapping[str, Any], logged: Mapping[str, float]
) -> None:
    """Log ``given`` metrics on the run where it lacks them or holds other values."""
    from mlflow.entities import Metric

    stamp = int(time.time() * 1000)
    new = [
        Metric(key, float(value), stamp, 0)
        for key, value in given.items()
        if isinstance(value, int | float)
        and math.isfinite(float(value))
        and logged.get(key) != float(value)
    ]
    if new:
        client.log_batch(run_id, metrics=new)


def version_description(
    metrics: Mapping[str, float], run: Any, study: str | None, split: str | None
) -> str:
    """The card's headline metrics against the best baseline, and a link to the card."""
    from training.card import CARD_METRICS  # deferred: the card imports matplotlib

    lines = [f"Refit of study `{study}`." if study else "Registered run."]
    rows = []
    for name in CARD_METRICS:
        if name not in metrics:
            continue
        bases = {
            k.split(".")[1]: v
            for k, v in metrics.items()
            if k.startswith("baseline.") and k.endswith(f".{name}")
        }
        lower = name == "trajectory_js"  # a divergence: lower is better
        best = (min if lower else max)(bases.items(), key=lambda kv: kv[1]) if bases else None
        against = f" (best baseline `{best[0]}` {best[1]:.4f})" if best else ""
        rows.append(f"- {name}: **{metrics[name]:.4f}**{against}")
    if rows:
        where = f" on test split `{split}`" if split else ""
        lines += ["", f"Test metrics{where}:", *rows]
    run_id, experiment = run.info.run_id, run.info.experiment_id
    link = f"#/experiments/{experiment}/runs/{run_id}/artifactPath/{CARD_ARTIFACT}"
    lines += ["", f"Model card: [{CARD_ARTIFACT}]({link}) (`runs:/{run_id}/{CARD_ARTIFACT}`)"]
    return "\n".join(lines)
