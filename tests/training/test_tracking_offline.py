"""Study plots open offline; integer params stay integers."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import mlflow
import optuna
from optuna.visualization import plot_optimization_history

from training.tracking import flat_params, log_figure_html


def test_plot_artifact_loads_no_external_script(tmp_path: Path, empty_db: Path) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    shutil.copy(empty_db, tmp_path / "mlflow.db")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = mlflow.create_experiment("plots", artifact_location=str(tmp_path / "artifacts"))
    with mlflow.start_run(experiment_id=exp) as run:
        log_figure_html(plot_optimization_history(study), "optuna/history.html")
    folder = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(tmp_path))
    html = (Path(folder) / "optuna" / "history.html").read_text()
    assert "plotly" in html.lower()
    assert not re.search(r"<script[^>]+src=[\"']https?:", html)


def test_flat_params_keep_integers() -> None:
    params = flat_params({"epochs": 2, "timeout_s": None, "seed": 42, "rate": 0.5}, "train.")
    assert params == {"train.epochs": 2, "train.seed": 42, "train.rate": 0.5}
    assert str(params["train.epochs"]) == "2"
