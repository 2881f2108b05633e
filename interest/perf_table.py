"""``monitor performance``'s terminal table: one row per metric, one column per version.

Versions are few and metrics many, so the transposed table stays inside 80 columns where
``DataFrame.to_string`` wrapped it; ``--json`` keeps every column.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.table import Table

if TYPE_CHECKING:  # annotations only: keep `--help` fast
    import pandas as pd

#: Shown first, in this order; the rest follow as the table has them.
LEADING: tuple[str, ...] = ("recall", "ndcg", "repeat_recall", "explore_recall")


def _cell(metric: str, value: object) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        return f"{value:,.0f}" if metric.startswith("n_") else f"{value:.4f}"
    return str(value)


def _order(columns: list[str], k: int) -> list[str]:
    first = [f"{name}_at_{k}" for name in LEADING if f"{name}_at_{k}" in columns]
    return first + [c for c in columns if c not in first]


def performance_table(table: pd.DataFrame, k: int, title: str) -> Table:
    """Metrics as rows and model versions (``all`` last) as columns."""
    versions = [str(v) for v in table.index]
    out = Table(title=title, title_justify="left")
    out.add_column("metric")
    for version in versions:
        out.add_column(f"v{version}" if version.isdigit() else version, justify="right")
    for metric in _order([str(c) for c in table.columns], k):
        out.add_row(metric, *(_cell(metric, table.loc[v, metric]) for v in table.index))
    return out
