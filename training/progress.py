"""A live line of an Optuna study's progress: trials finished of the target, pruned, best.

Optuna's own bar counts only this process's trials and never the pruned ones; this one
reads the study, so it also counts what other workers finished.
"""

from __future__ import annotations

from types import TracebackType

import optuna
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

_FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


class StudyProgress:
    """Context manager and Optuna callback drawing ``trials 3/10  pruned 1  best 0.1234``.

    Args:
        study: the study being optimised.
        target: finished trials the study should reach (``train.trials``).
    """

    def __init__(self, study: optuna.Study, target: int) -> None:
        self.study = study
        self._progress = Progress(
            TextColumn("trials"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task = self._progress.add_task("", total=target)
        self._refresh()

    def _refresh(self) -> None:
        trials = self.study.get_trials(deepcopy=False, states=_FINISHED)
        pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in trials)
        complete = [
            t.value
            for t in trials
            if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None
        ]
        best = "-"
        if complete:
            pick = max if self.study.direction == optuna.study.StudyDirection.MAXIMIZE else min
            best = f"{pick(complete):.4f}"
        self._progress.update(
            self._task, completed=len(trials), description=f"pruned {pruned}  best {best}"
        )

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Optuna callback: redraw after each trial."""
        self._refresh()

    def __enter__(self) -> StudyProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._progress.stop()
