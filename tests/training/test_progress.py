"""The study progress line counts finished and pruned trials and the best value."""

from __future__ import annotations

import optuna
import pytest

from training.progress import StudyProgress


def test_progress_counts_pruned_and_best(capsys: pytest.CaptureFixture[str]) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    values = iter([0.2, None, 0.7, None])

    def objective(trial: optuna.Trial) -> float:
        value = next(values)
        if value is None:
            raise optuna.TrialPruned()
        return value

    with StudyProgress(study, target=4) as progress:
        study.optimize(objective, n_trials=4, callbacks=[progress])
    err = capsys.readouterr().err
    assert "4/4" in err and "pruned 2" in err and "best 0.7000" in err
