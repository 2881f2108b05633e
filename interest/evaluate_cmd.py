"""``interest evaluate VERSION``: re-score a registered version on the current split of a log.

The version encodes the log with its own vocabulary and feature config; the test cutoff is
the one ``interest tune`` would use on this log with the current configuration, so two
versions evaluated on the same log face the same users. Exit codes: 0 done, 1 error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from interest.common import FormatOption, config_from, fail

if TYPE_CHECKING:  # annotations only: training.contenders imports TensorFlow and MLflow
    from evaluation.samples import Scored
    from training.contenders import Rescored

#: Columns of the table: the gate's primary metric, its repeat/explore split and the guards.
COLUMNS = (
    "recall_at_10",
    "ndcg_at_10",
    "repeat_recall_at_10",
    "explore_recall_at_10",
    "buy_auc",
    "churn_auc",
)


def _finite(metrics: Mapping[str, float]) -> dict[str, float | None]:
    return {k: (v if math.isfinite(v) else None) for k, v in metrics.items()}


def _summary(result: Rescored) -> dict[str, object]:
    samples = result.model.samples
    return {
        "version": result.version,
        "split": result.splits.to_dict(),
        "split_hash": result.split_hash,
        "n_samples": len(samples),
        "n_users": samples.n_users,
        "metrics": _finite(result.model.metrics),
        "baselines": {name: _finite(scored.metrics) for name, scored in result.baselines.items()},
    }


def _row(label: str, scored: Scored) -> list[str]:
    return [label, *(f"{scored.metrics.get(c, float('nan')):.4f}" for c in COLUMNS)]


def print_evaluation(result: Rescored, model_name: str) -> None:
    """The split line and one table: the version, then every baseline on the same samples."""
    split = result.splits.to_dict()
    samples = result.model.samples
    typer.echo(
        f"{model_name} v{result.version} on test cutoff {split['test']} (horizon "
        f"{split['horizon']}): {len(samples)} samples, {samples.n_users} users, "
        f"split {result.split_hash}"
    )
    table = Table(title="test split: model and baselines on the same samples")
    for col in ("contender", *COLUMNS):
        table.add_column(col, justify="left" if col == "contender" else "right")
    table.add_row(*_row(f"v{result.version}", result.model))
    for name, scored in result.baselines.items():
        table.add_row(*_row(f"baseline {name}", scored))
    Console(width=160).print(table)


def evaluate(
    ctx: typer.Context,
    data: Annotated[Path, typer.Option(help="Event log (CSV or Parquet).", exists=True)],
    version: Annotated[str, typer.Argument(help="Version number or alias.")] = "champion",
    format: FormatOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Re-score a registered version and the baselines on the current test split of --data."""
    config = config_from(ctx, {"data": {"format": format}})
    # Imported here: TensorFlow and MLflow are slow to import, `--help` must stay fast.
    from eventlogs.loaders import load_events
    from training.contenders import rescore_version

    try:
        events = load_events(data, config.data).events
        result = rescore_version(config, events, version)
    except (LookupError, ValueError) as err:
        raise fail(str(err)) from err
    if as_json:
        typer.echo(json.dumps(_summary(result), indent=2, default=str))
    else:
        print_evaluation(result, config.registry.model_name)
