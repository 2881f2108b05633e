"""The training pipeline: load -> features -> tune -> refit -> register -> gate.

Each arrow is one stage's function; this module only composes them and returns a typed
:class:`TrainResult`. ``interest tune``, the monitoring loop's retraining and the demo all
call :func:`train` in process. Nothing is registered and no alias moves unless every stage
before the gate succeeded; a lost tracking server or database surfaces as one
:class:`training.outage.ServiceOutage` naming the stage.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from core.config import ProjectConfig
from core.dataset import PreparedData, prepare_dataset
from core.vocab import Vocabulary
from eventlogs.loaders import LoadResult, load_events
from eventlogs.validation import ValidationReport
from modelkit.bundle import load_bundle
from modelkit.registry import download_bundle, registered_champion
from training.outage import OutageGuard
from training.promotion import PromotionDecision
from training.refit import RefitResult, gate_and_register
from training.text_data import add_text
from training.tune import StudyOutcome, run_study
from training.workers import run_worker


@dataclass(frozen=True)
class TrainRequest:
    """What to train on and how; the budget and stores come from the project config."""

    data: Path
    warm_start: bool = False  # offer the champion's weights and reuse its vocabulary
    resume: bool = False  # continue an existing study
    register: bool = True  # register the refit winner and run the gate
    workers: int = 1  # processes optimising the one study
    show_progress: bool = True
    # train.input = "stream": where the out-of-core feature shards go (default: a temporary
    # folder, removed when the job ends); about 3 kB per sample, twice (selection + refit).
    work_dir: Path | None = None


@dataclass
class TrainResult:
    """What one training job produced, stage by stage."""

    load_report: ValidationReport
    data: PreparedData
    study: StudyOutcome
    version: str | None = None
    decision: PromotionDecision | None = None

    @property
    def refit(self) -> RefitResult:
        """The refit winner (always present once a study finished)."""
        assert self.study.refit is not None
        return self.study.refit

    @property
    def promoted(self) -> bool:
        """Whether the gate moved ``champion`` to the new version."""
        return bool(self.decision is not None and self.decision.promote)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (``interest tune --json`` prints it)."""
        return {
            "study": self.study.study_name,
            "parent_run_id": self.study.parent_run_id,
            "best_value": self.study.best_value,
            "best_params": self.study.best_params,
            "complete": self.study.n_complete,
            "pruned": self.study.n_pruned,
            "refit_run_id": self.refit.run_id,
            "test_metrics": self.refit.test_metrics,
            "baselines": self.refit.baselines,
            "version": self.version,
            "decision": self.decision.to_dict() if self.decision else None,
        }


@dataclass(frozen=True)
class Champion:
    """The registered champion's model and vocabulary, for warm starts."""

    model: keras.Model
    vocab: Vocabulary


def load_champion(config: ProjectConfig) -> Champion | None:
    """Return the current champion's model and vocabulary, or ``None`` when there is none."""
    if registered_champion(config) is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        bundle = load_bundle(download_bundle(config, "champion", Path(tmp)))
    return Champion(bundle.model, bundle.vocab)


@dataclass
class Prepared:
    """A job's data: the log as loaded (stream mode: the sampled users' events), the arrays."""

    loaded: LoadResult
    data: PreparedData
    champion: Champion | None
    refit_data: PreparedData | None = None  # stream mode: built out of core already


def prepare(config: ProjectConfig, request: TrainRequest, work: Path | None = None) -> Prepared:
    """Load and validate the log, fetch the champion for a warm start, build the arrays.

    With ``train.input = "stream"`` the log is never loaded whole: shards are built out of
    core under ``work`` (:mod:`training.stream_data`).

    Raises:
        eventlogs.validation.DataValidationError: the log is unreadable (names the file).
        training.outage.ServiceOutage: the registry did not answer.
    """
    with OutageGuard(config, config.train.study_name, stage="loading the champion"):
        champion = load_champion(config) if request.warm_start else None
    if config.train.input == "stream":
        from training.stream_data import prepare_stream_data

        if work is None:
            raise ValueError("train.input = 'stream' needs a work folder for the shards")
        vocab = champion.vocab if champion else None
        streamed = prepare_stream_data(
            config, request.data, work, name=request.data.stem, vocab=vocab
        )
        return Prepared(streamed.loaded, streamed.data, champion, streamed.refit)
    loaded = load_events(request.data, config.data)
    data = prepare_dataset(
        loaded.events, config, request.data.stem, vocab=champion.vocab if champion else None
    )
    if config.train.text_features:
        data = add_text(loaded.events, data, config)
    return Prepared(loaded, data, champion)


def work_folder(request: TrainRequest, stack: contextlib.ExitStack) -> Path:
    """The stream-mode shard folder: ``request.work_dir`` or a temporary one (removed)."""
    if request.work_dir is not None:
        request.work_dir.mkdir(parents=True, exist_ok=True)
        return request.work_dir
    return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="interest-shards-")))


def train(
    config: ProjectConfig,
    request: TrainRequest,
    *,
    on_prepared: Callable[[LoadResult, PreparedData], None] | None = None,
) -> TrainResult:
    """Run the whole training pipeline for ``request``.

    Args:
        config: project configuration (``train`` budget, ``registry`` gate, ``paths``).
        request: the event log and the job's switches.
        on_prepared: called once the data is ready (the CLI prints the counts there).

    Returns:
        The typed result; ``version``/``decision`` are set when ``request.register``.

    Raises:
        eventlogs.validation.DataValidationError: unreadable log.
        ValueError: the log gives no usable split or study (the message says why).
        training.outage.ServiceOutage: tracking server or database lost (nothing moved).
    """
    with contextlib.ExitStack() as stack:
        work = work_folder(request, stack) if config.train.input == "stream" else None
        return _train(config, request, prepare(config, request, work), on_prepared)


def _train(
    config: ProjectConfig,
    request: TrainRequest,
    prepared: Prepared,
    on_prepared: Callable[[LoadResult, PreparedData], None] | None,
) -> TrainResult:
    loaded, data, champion = prepared.loaded, prepared.data, prepared.champion
    if on_prepared is not None:
        on_prepared(loaded, data)
    study = run_study(
        config,
        loaded.events,
        data,
        source=str(request.data.resolve()),
        resume=request.resume,
        register=False,
        warm_start=champion.model if champion else None,
        show_progress=request.show_progress,
        workers=request.workers,
        refit_data=prepared.refit_data,
    )
    result = TrainResult(loaded.report, data, study)
    if not request.register:
        return result
    with OutageGuard(config, study.study_name, stage="registering the refit model") as guard:
        guard.registering = True
        result.version, result.decision = gate_and_register(
            config, loaded.events, data, result.refit, study_name=study.study_name
        )
    study.version, study.decision = result.version, result.decision
    return result


def join_study(config: ProjectConfig, request: TrainRequest) -> int:
    """Join ``train.study_name`` as one more worker (no refit, no registration).

    Returns:
        The number of trials this worker ran.
    """
    with contextlib.ExitStack() as stack:
        work = work_folder(request, stack) if config.train.input == "stream" else None
        prepared = prepare(config, request, work)
        champion = prepared.champion
        return run_worker(config, prepared.data, warm_start=champion.model if champion else None)
