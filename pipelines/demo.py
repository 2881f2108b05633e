"""The main job: the whole loop on the embedded defaults, one pipeline call per step.

generate -> validate -> train (tune, refit, register, gate) -> package and serve -> replay
traffic -> drift check -> replay shifted traffic -> scheduled monitoring pass (drift ->
retrain -> gate) -> deploy a new champion to the running service. Each step is the function
a role's documented command calls, run in this process; only ``bentoml serve`` is a child
process, spoken to over HTTP like any client.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pandas as pd

from core.config import ProjectConfig
from eventlogs.loaders import load_events, write_events
from modelkit.registry import registered_champion
from monitoring.check import check_window
from pipelines.deploy import deploy, package_version, start_service
from pipelines.monitor import RetrainRequest, run_monitor
from pipelines.traffic import replay
from pipelines.train import TrainRequest, train
from serving.launch import Server
from synthlogs.generator import SynthConfig, generate_events
from training.registry import promote_version

#: Called with (step number, step count, title) before a step and its one-line result after.
StepHook = Callable[[int, int, str, str | None, float | None], None]


@dataclass(frozen=True)
class DemoOptions:
    """Size of the demo world and budget of its first study."""

    users: int = 1500
    days: int = 35
    trials: int = 3
    epochs: int = 2
    seed: int = 7
    replay_users: int = 200


@dataclass
class DemoResult:
    """What the demo produced and where to look."""

    data_path: Path
    shift_at: str
    notes: list[str] = field(default_factory=list)
    bento_tag: str | None = None
    model_tag: str | None = None
    champion: str | None = None  # registry version holding ``champion`` at the end
    served_version: str | None = None  # what the running service answered as, at the end
    served_is_champion: bool | None = None  # the service's own registry check


@dataclass
class _Run:
    config: ProjectConfig
    options: DemoOptions
    result: DemoResult
    events: pd.DataFrame | None = None
    server: Server | None = None
    since: dict[str, pd.Timestamp] = field(default_factory=dict)


def _generate(run: _Run) -> str:
    opts, out = run.options, run.result
    synth = SynthConfig(
        n_users=opts.users,
        n_days=opts.days,
        seed=opts.seed,
        shift_at=out.shift_at,
        shift_fraction=0.3,
    )
    generated = generate_events(synth)
    out.data_path.parent.mkdir(parents=True, exist_ok=True)
    write_events(generated.events, out.data_path)
    generated.truth.save(out.data_path.with_suffix(".truth.parquet"))
    return f"{len(generated.events):,} events, {opts.users:,} users, shift from {out.shift_at}"


def _validate(run: _Run) -> str:
    loaded = load_events(run.result.data_path, run.config.data)
    run.events = loaded.events
    cut = pd.Timestamp(run.result.shift_at, tz="UTC")
    # The first champion learns from the history before the shift, as it would have then.
    write_events(run.events[run.events["timestamp"] < cut], _history_path(run))
    report = loaded.report
    return f"read {report.rows_read:,}, kept {report.rows_kept:,}, dropped {report.rows_dropped:,}"


def _history_path(run: _Run) -> Path:
    return run.result.data_path.with_suffix(".history.parquet")


def _train(run: _Run) -> str:
    config, out = run.config, run.result
    trained = train(config, TrainRequest(data=_history_path(run), show_progress=False))
    metric = config.registry.primary_metric
    best_base = max(v.get(metric, 0.0) for v in trained.refit.baselines.values())
    verdict = "promoted to champion" if trained.promoted else "refused by the gate"
    out.notes.append(f"model version {trained.version}: {verdict}")
    out.notes.extend(f"  - {r}" for r in trained.decision.reasons if trained.decision)
    if not trained.promoted and registered_champion(config) is None:
        # The rest of the loop needs a served model: say so loudly, as a person would.
        promote_version(config, str(trained.version), force=True)
        out.notes.append(
            f"  - no champion existed: the demo forced v{trained.version} in "
            "(interest promote --force) so the serving half can run"
        )
    return (
        f"{len(trained.data.train):,} train samples, "
        f"{trained.study.n_complete} complete / {trained.study.n_pruned} pruned; "
        f"test {metric} {trained.refit.test_metrics[metric]:.4f} vs best baseline {best_base:.4f}; "
        f"version {trained.version} {verdict}"
    )


def _serve(run: _Run) -> str:
    packaged = package_version(run.config, "champion")
    run.result.model_tag, run.result.bento_tag = packaged.model_tag, packaged.bento_tag
    run.server = start_service(run.config, packaged.model_tag)
    return f"v{packaged.version} as {packaged.model_tag}, bento {packaged.bento_tag}, at {run.server.url}"


def _replay(run: _Run, shifted: bool) -> str:
    assert run.server is not None and run.events is not None
    shift = pd.Timestamp(run.result.shift_at, tz="UTC")
    days = range(2, 6) if shifted else range(-4, 0)
    cutoffs = [shift + pd.Timedelta(days=d) for d in days]
    run.since["shifted" if shifted else "reference"] = pd.Timestamp.now(tz="UTC")
    answered = replay(
        run.server.url,
        run.events,
        cutoffs,
        run.config.features.history or "7D",
        max_users=run.options.replay_users,
        seed=len(cutoffs) + shifted,
    )
    when = "after" if shifted else "before"
    return f"{answered} predictions for cutoffs {when} the shift ({cutoffs[0].date()}..)"


def _drift(run: _Run) -> str:
    now = pd.Timestamp.now(tz="UTC")
    check = check_window(
        run.config,
        None,
        run.since["reference"].to_pydatetime(),
        now.to_pydatetime(),
        stamp=now.strftime("%Y%m%dT%H%M%SZ"),
        trigger="demo",
    )
    drift = check.drift
    run.result.notes.append(
        f"drift before the shift: {drift.status}, share drifted {drift.share_drifted:.2f}"
    )
    return f"status {drift.status}, drifted {[c.column for c in drift.drifted_columns]}"


def _monitor(run: _Run) -> str:
    now = pd.Timestamp.now(tz="UTC")
    request = RetrainRequest(
        data=run.result.data_path, format="canonical", trials=2, epochs=run.config.train.epochs
    )
    outcome = run_monitor(
        run.config,
        run.since["shifted"].to_pydatetime(),
        now.to_pydatetime(),
        now.to_pydatetime(),
        request,
    )
    notes = run.result.notes
    if outcome.check is not None:  # what the drift check saw in the shifted traffic
        drift = outcome.check.drift
        drivers = [c.describe() for c in drift.drifted_columns[:4]]
        drivers += [f"segment {s}" for s in drift.drifted_segments[:2]]
        notes.append(
            f"drift after the shift: {drift.status}; drivers: {', '.join(drivers) or 'none'}"
        )
    notes.append(f"monitor run after the shift: {outcome.status}: {outcome.message}")
    if outcome.retrain is not None:
        verdict = "promoted to champion" if outcome.retrain.promoted else "refused by the gate"
        notes.append(f"  challenger v{outcome.retrain.version} {verdict}")
    return f"{outcome.status}: {outcome.message}"


def _served(url: str) -> dict:
    return httpx.get(f"{url}/model", timeout=30).json()


def _deploy(run: _Run) -> str:
    assert run.server is not None
    champion = registered_champion(run.config)
    before = _served(run.server.url)["model"]["version"]
    if champion is not None and str(before) != champion[0]:
        done = deploy(run.config, "champion", url=run.server.url, command="interest demo")
        run.result.bento_tag, run.result.model_tag = done.record.bento_tag, done.record.model_tag
    info = _served(run.server.url)
    run.result.served_version = str(info["model"]["version"])
    run.result.served_is_champion = info.get("is_champion")
    run.result.notes.append(
        f"the service answers as v{run.result.served_version} "
        f"(is_champion: {run.result.served_is_champion})"
    )
    return f"v{before} -> v{run.result.served_version}, is_champion {run.result.served_is_champion}"


def run_demo(config: ProjectConfig, options: DemoOptions, on_step: StepHook) -> DemoResult:
    """Run the whole loop; the served model is stopped at the end, whatever happened.

    Args:
        config: project configuration (state folder, stores, training budget).
        options: demo world size and budget.
        on_step: progress hook, called before each step (result ``None``) and after it.
    """
    paths = config.paths.resolved()
    stamp = time.strftime("%Y%m%dT%H%M%S")
    start = pd.Timestamp("2024-01-01")
    shift_at = (start + pd.Timedelta(days=options.days - 7)).date().isoformat()
    config = config.model_copy(deep=True)
    config.data.format = "canonical"
    config.train.trials, config.train.epochs = options.trials, options.epochs
    config.train.seed, config.train.study_name = options.seed, f"demo-{stamp}"
    result = DemoResult(paths.state_dir / "data" / f"demo-{stamp}.parquet", shift_at)
    run = _Run(config, options, result)
    steps: list[tuple[str, Callable[[], str]]] = [
        ("Generate a synthetic behaviour log", lambda: _generate(run)),
        ("Validate it; keep the history before the shift", lambda: _validate(run)),
        ("Train: features, tune, refit, register, gate", lambda: _train(run)),
        ("Import the champion, build the bento, serve it", lambda: _serve(run)),
        ("Replay traffic from before the shift", lambda: _replay(run, shifted=False)),
        ("Drift check of the traffic before the shift", lambda: _drift(run)),
        ("Replay traffic after the interest shift", lambda: _replay(run, shifted=True)),
        ("Monitor run: drift -> retrain -> gate", lambda: _monitor(run)),
        ("Deploy the champion to the running service", lambda: _deploy(run)),
    ]
    try:
        for i, (title, fn) in enumerate(steps, start=1):
            on_step(i, len(steps), title, None, None)
            began = time.perf_counter()
            detail = fn()
            on_step(i, len(steps), title, detail, time.perf_counter() - began)
    finally:
        if run.server is not None:
            run.server.stop()
    champion = registered_champion(config)
    result.champion = champion[0] if champion else None
    return result
