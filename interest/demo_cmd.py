"""``interest demo``: the main job, the whole loop on the embedded defaults.

Each step is one of the documented commands' functions, so the demo is exactly what the
README shows each role running by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from interest.common import config_from


@dataclass
class DemoState:
    """What the steps hand to each other."""

    config: Any
    data_path: Path
    shift_at: str
    notes: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)


def _step(index: int, total: int, title: str, fn: Callable[[], str | None]) -> None:
    typer.secho(f"[{index}/{total}] {title}", bold=True)
    started = time.perf_counter()
    detail = fn()
    typer.echo(
        f"      done in {time.perf_counter() - started:.1f}s" + (f": {detail}" if detail else "")
    )


def generate_step(state: DemoState, users: int, days: int, seed: int) -> str:
    """Synthetic log with an interest shift in the last week."""
    from eventlogs.loaders import write_events
    from synthlogs.generator import SynthConfig, generate_events

    config = SynthConfig(
        n_users=users, n_days=days, seed=seed, shift_at=state.shift_at, shift_fraction=0.3
    )
    result = generate_events(config)
    state.data_path.parent.mkdir(parents=True, exist_ok=True)
    write_events(result.events, state.data_path)
    result.truth.save(state.data_path.with_suffix(".truth.parquet"))
    return f"{len(result.events):,} events, {users:,} users, shift from {state.shift_at}"


def validate_step(state: DemoState) -> str:
    """Validate the log and keep the pre-shift part for training."""
    import pandas as pd

    from eventlogs.loaders import load_events

    loaded = load_events(state.data_path, state.config.data)
    events = loaded.events
    cut = pd.Timestamp(state.shift_at, tz="UTC")
    state.values["events"] = events
    state.values["train_events"] = events[events["timestamp"] < cut].reset_index(drop=True)
    state.values["live_events"] = events[events["timestamp"] >= cut].reset_index(drop=True)
    report = loaded.report
    return f"read {report.rows_read:,}, kept {report.rows_kept:,}, dropped {report.rows_dropped:,}"


def features_step(state: DemoState) -> str:
    """Build the training arrays from the pre-shift history."""
    from core.dataset import prepare_dataset

    data = prepare_dataset(state.values["train_events"], state.config, "demo")
    state.values["prepared"] = data
    return (
        f"train {len(data.train):,} / val {len(data.val):,} / test {len(data.test):,} samples, "
        f"{data.vocab.size} categories"
    )


def tune_step(state: DemoState) -> str:
    """Small Optuna study, refit, register, gate."""
    from training.tune import run_study

    outcome = run_study(
        state.config,
        state.values["train_events"],
        state.values["prepared"],
        source=str(state.data_path),
        resume=False,
        show_progress=False,
    )
    state.values["outcome"] = outcome
    metric = state.config.registry.primary_metric
    best_base = max(v.get(metric, 0.0) for v in outcome.refit.baselines.values())
    verdict = "promoted to champion" if outcome.decision.promote else "refused by the gate"
    state.notes.append(f"model version {outcome.version}: {verdict}")
    state.notes.extend(f"  - {r}" for r in outcome.decision.reasons)
    if not outcome.decision.promote:
        from modelkit.registry import registered_champion
        from training.registry import promote_version

        if registered_champion(state.config) is None:
            # The rest of the loop needs a served model: say so loudly, as a person would.
            promote_version(state.config, str(outcome.version), force=True)
            state.notes.append(
                f"  - no champion existed: the demo forced v{outcome.version} in "
                "(interest promote --force) so the serving half can run"
            )
    return (
        f"{outcome.n_complete} complete / {outcome.n_pruned} pruned; test {metric} "
        f"{outcome.refit.test_metrics[metric]:.4f} vs best baseline {best_base:.4f}; "
        f"version {outcome.version} {verdict}"
    )


def serve_step(state: DemoState) -> str:
    """Import the champion into BentoML, build the bento, start ``bentoml serve``."""
    from interest.demo_live import child_env, cli, start_server

    env = child_env(state.config)
    _, out = cli(env, "bento", "import", "--alias", "champion")
    model_tag = out.strip().splitlines()[-1]
    _, out = cli(env, "bento", "build", "--model", model_tag)
    state.values["bento_tag"] = out.strip().splitlines()[-1]
    server = start_server(state.config, model_tag)
    state.values["server"] = server
    return f"model {model_tag}, bento {state.values['bento_tag']}, serving at {server.url}"


def replay_step(state: DemoState, shifted: bool) -> str:
    """Replay users' recent histories to the service, before or after the interest shift."""
    import pandas as pd

    from interest.demo_live import replay

    shift = pd.Timestamp(state.shift_at, tz="UTC")
    days = range(2, 6) if shifted else range(-4, 0)
    cutoffs = [shift + pd.Timedelta(days=d) for d in days]
    state.values["since_shifted" if shifted else "since_reference"] = pd.Timestamp.now(tz="UTC")
    answered = replay(
        state.values["server"].url,
        state.values["events"],
        cutoffs,
        state.config.features.history or "7D",
        max_users=200,
        seed=len(cutoffs) + shifted,
    )
    when = "after" if shifted else "before"
    return f"{answered} predictions for cutoffs {when} the shift ({cutoffs[0].date()}..)"


def drift_step(state: DemoState) -> str:
    """Drift check of the pre-shift traffic against the champion's training reference."""
    from interest.demo_live import child_env, cli, parse_json

    since = state.values["since_reference"].isoformat()
    code, out = cli(child_env(state.config), "monitor", "drift", "--since", since, "--json")
    result = parse_json(out)
    state.notes.append(
        f"drift before the shift: {result.get('status')} (exit {code}), "
        f"share drifted {result.get('share_drifted', float('nan')):.2f}"
    )
    return f"status {result.get('status')}, drifted {result.get('drifted_columns', [])}"


def monitor_step(state: DemoState) -> str:
    """The scheduled pass on the shifted window: drift -> warm-start retrain -> gate."""
    import pandas as pd

    from interest.demo_live import child_env, cli

    since = state.values["since_shifted"].isoformat()
    until = pd.Timestamp.now(tz="UTC").isoformat()
    code, out = cli(
        child_env(state.config),
        *("monitor", "run", "--since", since, "--until", until),
        *("--data", str(state.data_path), "--format", "canonical"),
        *("--trials", "2", "--epochs", str(state.config.train.epochs)),
    )
    lines = [line for line in out.strip().splitlines() if line]
    state.notes.append(f"monitor run after the shift (exit {code}):")
    state.notes.extend(f"  {line}" for line in lines)
    return lines[0] if lines else f"exit {code}"


def demo(
    ctx: typer.Context,
    users: Annotated[int, typer.Option(help="Synthetic users.")] = 1500,
    days: Annotated[int, typer.Option(help="Days of synthetic history.")] = 35,
    trials: Annotated[int, typer.Option(help="Optuna trials of the first study.")] = 3,
    epochs: Annotated[int, typer.Option(help="Epochs per trial.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed for data, sampler and models.")] = 7,
) -> None:
    """Run the whole loop on the embedded defaults and print where to look."""
    import pandas as pd

    config = config_from(
        ctx,
        {
            "data": {"format": "canonical"},
            "train": {"trials": trials, "epochs": epochs, "seed": seed, "study_name": None},
        },
    )
    paths = config.paths.resolved()
    start = pd.Timestamp("2024-01-01")
    shift_at = (start + pd.Timedelta(days=days - 7)).date().isoformat()
    stamp = time.strftime("%Y%m%dT%H%M%S")
    config.train.study_name = f"demo-{stamp}"
    state = DemoState(config, paths.state_dir / "data" / f"demo-{stamp}.parquet", shift_at)
    steps: list[tuple[str, Callable[[], str | None]]] = [
        ("Generate a synthetic behaviour log", lambda: generate_step(state, users, days, seed)),
        ("Validate it", lambda: validate_step(state)),
        ("Build sequence features", lambda: features_step(state)),
        ("Tune, refit, register and gate", lambda: tune_step(state)),
        ("Import the champion, build the bento, serve it", lambda: serve_step(state)),
        ("Replay traffic from before the shift", lambda: replay_step(state, shifted=False)),
        ("Drift check (expect no drift)", lambda: drift_step(state)),
        ("Replay traffic after the interest shift", lambda: replay_step(state, shifted=True)),
        ("Monitor run: drift -> retrain -> gate", lambda: monitor_step(state)),
    ]
    try:
        for i, (title, fn) in enumerate(steps, start=1):
            _step(i, len(steps), title, fn)
    finally:
        if "server" in state.values:
            state.values["server"].stop()
    typer.secho("\nSummary", bold=True)
    for note in state.notes:
        typer.echo(note)
    typer.echo(f"state folder:   {paths.state_dir}")
    typer.echo(f"event log:      {state.data_path}")
    typer.echo(f"MLflow UI:      mlflow ui --backend-store-uri {paths.tracking_uri}")
    typer.echo(f"Evidently UI:   evidently ui --workspace {paths.evidently_workspace}")
    typer.echo(f"drift reports:  {paths.state_dir / 'reports'}")
    typer.echo(f"bento:          {state.values.get('bento_tag', '(not built)')}")
    typer.echo("registry:       interest status")
