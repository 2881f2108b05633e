"""Read side of the per-sample scores a refit run stores (``evaluation/samples.parquet``).

The refit logs its model's and baselines' per-sample test scores as one run artifact
(format in :mod:`evaluation.samples`); the promotion gate and monitoring read it back with
an MLflow client only, so monitoring never imports ``training``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from evaluation.samples import SampleScores, read_samples

if TYPE_CHECKING:
    from mlflow import MlflowClient

SAMPLES_DIR = "evaluation"
SAMPLES_FILE = "samples.parquet"
MODEL = "model"  # the version's own model among the stored contenders


def read_stored_samples(client: MlflowClient, run_id: str | None) -> dict[str, SampleScores]:
    """The per-sample scores a run logged, by contender (empty when it logged none)."""
    if not run_id:
        return {}
    path = f"{SAMPLES_DIR}/{SAMPLES_FILE}"
    if path not in {f.path for f in client.list_artifacts(run_id, SAMPLES_DIR)}:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        return read_samples(Path(client.download_artifacts(run_id, path, tmp)))
