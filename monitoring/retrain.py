"""Gated retraining, reached through the command line: monitoring decides, ``interest tune`` trains.

Monitoring never imports ``training`` (the import rule of the project). The command line is
the boundary: :func:`retrain_via_cli` runs ``interest tune --warm-start`` in a child process,
which loads the champion's weights, runs a small Optuna study on the recent events, refits,
registers the winner as ``challenger`` and applies the same promotion gate as a manual
tune (test cutoff = last event - horizon, so the gate scores champion and challenger on the
most recent labelled window). A child that fails has moved no alias: the gate is its last step.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config import ProjectConfig

REDEPLOY = "interest bento import && interest bento build"
_TAIL = 2000  # characters of the child's stderr kept in error messages


class RetrainError(RuntimeError):
    """The retraining child failed; the champion is untouched."""


@dataclass(frozen=True)
class RetrainRequest:
    """What to retrain on and with which budget."""

    data: Path
    format: str
    trials: int
    epochs: int | None
    study_name: str
    config_path: Path | None = None
    timeout_s: float | None = None


@dataclass
class RetrainOutcome:
    """What the child reported: the registered version and the gate's decision."""

    version: str | None
    promoted: bool
    reasons: list[str]
    test_metrics: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def tune_command(config: ProjectConfig, request: RetrainRequest) -> list[str]:
    """Build the ``interest tune`` argv for ``request`` (same stores as ``config``)."""
    paths = config.paths.resolved()
    argv = [sys.executable, "-m", "interest.cli"]
    if request.config_path is not None:
        argv += ["--config", str(request.config_path)]
    argv += [
        "tune",
        "--data",
        str(request.data),
        "--format",
        request.format,
        "--trials",
        str(request.trials),
        "--study-name",
        request.study_name,
        "--tracking-uri",
        paths.tracking_uri,
        "--storage",
        paths.optuna_storage,
        "--warm-start",
        "--register",
        "--no-progress",
        "--json",
    ]
    if request.epochs is not None:
        argv += ["--epochs", str(request.epochs)]
    return argv


def _parse_summary(stdout: str) -> dict[str, Any]:
    start = stdout.find("{")
    if start < 0:
        raise RetrainError(f"interest tune printed no JSON summary: {stdout[-_TAIL:]!r}")
    try:
        return json.loads(stdout[start:])
    except json.JSONDecodeError as err:
        raise RetrainError(f"interest tune printed an unreadable summary ({err})") from err


def retrain_via_cli(config: ProjectConfig, request: RetrainRequest) -> RetrainOutcome:
    """Run ``interest tune`` with warm start, registration and the gate in a child process.

    Raises:
        RetrainError: if the child fails, times out or reports no decision (the message
            carries the tail of its stderr).
    """
    env = dict(os.environ)
    # The child must see the same state folder even when it came from CLI overrides.
    env["INTEREST_STATE_DIR"] = str(config.paths.resolved().state_dir)
    try:
        done = subprocess.run(
            tune_command(config, request),
            capture_output=True,
            text=True,
            env=env,
            timeout=request.timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise RetrainError(f"interest tune ran past {request.timeout_s} s and was stopped") from err
    if done.returncode != 0:
        raise RetrainError(
            f"interest tune exited {done.returncode}: {done.stderr.strip()[-_TAIL:]}"
        )
    summary = _parse_summary(done.stdout)
    decision = summary.get("decision")
    if not decision:
        raise RetrainError("interest tune registered nothing: no promotion decision in its output")
    return RetrainOutcome(
        version=summary.get("version"),
        promoted=bool(decision.get("promote")),
        reasons=list(decision.get("reasons", [])),
        test_metrics=dict(summary.get("test_metrics") or {}),
        summary=summary,
    )


def rebuild_bento(config_path: Path | None = None) -> tuple[bool, str]:
    """Run ``interest bento import`` then ``build`` when the bento commands exist.

    Returns:
        ``(done, message)``; ``done`` is false when the commands are missing or failed.
    """
    if importlib.util.find_spec("interest.bento_cmd") is None:
        return False, f"bento commands are not available in this install; run: {REDEPLOY}"
    base = [sys.executable, "-m", "interest.cli"]
    if config_path is not None:
        base += ["--config", str(config_path)]
    for step in ("import", "build"):
        done = subprocess.run([*base, "bento", step], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return (
                False,
                f"interest bento {step} failed ({done.returncode}): {done.stderr[-_TAIL:]}",
            )
    return True, "bento rebuilt from the new champion; redeploy it"
