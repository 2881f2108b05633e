"""The live half of the demo: serve the champion, replay traffic, watch drift, retrain.

Every step calls what the README documents for each role: ``interest bento import`` /
``bento build`` (platform), ``bentoml serve`` over HTTP (clients), ``interest monitor
drift`` and ``interest monitor run`` (monitors).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from core.config import ProjectConfig
from serving.launch import Server

REPO = Path(__file__).resolve().parents[1]
BATCH_USERS = 32  # users per /predict_batch call
MAX_EVENTS_SENT = 200  # most recent events per user in a request


def cli(config_env: dict[str, str], *args: str, timeout: float = 900) -> tuple[int, str]:
    """Run ``interest ARGS`` as a child (the documented command); return (code, stdout)."""
    out = subprocess.run(
        [sys.executable, "-m", "interest.cli", *args],
        cwd=REPO,
        env=config_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if out.returncode not in (0, 3, 4, 5):
        raise RuntimeError(
            f"interest {' '.join(args)} failed ({out.returncode}):\n{out.stderr[-3000:]}"
        )
    return out.returncode, out.stdout


def child_env(config: ProjectConfig) -> dict[str, str]:
    """Environment that points children at the same project state."""
    paths = config.paths.resolved()
    return {
        **os.environ,
        "INTEREST_STATE_DIR": str(paths.state_dir),
        "INTEREST_TRACKING_URI": paths.tracking_uri,
        "INTEREST_OPTUNA_STORAGE": paths.optuna_storage,
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


def start_server(config: ProjectConfig, tag: str, timeout: float = 240) -> Server:
    """Start ``bentoml serve`` for ``tag`` on a free loopback port; wait for ``/readyz``.

    Raises:
        serving.launch.ServerStartError: it exited or was not ready in time (log tail inside).
    """
    from interest.bento_cmd import bentoml_env
    from serving.launch import free_port
    from serving.launch import start_server as launch

    port = free_port()
    log = config.paths.resolved().logs / f"bentoml-serve-{port}.log"
    return launch(bentoml_env(config, tag), log, port, timeout)


def _payload(user: str, frame: pd.DataFrame, cutoff: pd.Timestamp) -> dict[str, Any]:
    recent = frame.tail(MAX_EVENTS_SENT)
    return {
        "user_id": user,
        "cutoff": cutoff.isoformat(),
        "events": [
            {
                "item_id": str(r.item_id),
                "category_id": str(r.category_id),
                "behavior": str(r.behavior),
                "timestamp": r.timestamp.isoformat(),
            }
            for r in recent.itertuples()
        ],
    }


def replay(
    url: str,
    events: pd.DataFrame,
    cutoffs: list[pd.Timestamp],
    history: str,
    max_users: int,
    seed: int,
) -> int:
    """Send each sampled user's recent history at each cutoff, in batches; return answers."""
    rng = np.random.default_rng(seed)
    answered = 0
    with httpx.Client(timeout=60) as client:
        for cutoff in cutoffs:
            window = events[
                (events["timestamp"] < cutoff)
                & (events["timestamp"] >= cutoff - pd.Timedelta(history))
            ]
            users = window["user_id"].unique()
            picked = rng.choice(users, size=min(max_users, len(users)), replace=False)
            groups = dict(tuple(window[window["user_id"].isin(picked)].groupby("user_id")))
            payloads = [_payload(str(u), groups[u], cutoff) for u in picked]
            for start in range(0, len(payloads), BATCH_USERS):
                body = {"users": payloads[start : start + BATCH_USERS]}
                response = client.post(f"{url}/predict_batch", json=body)
                response.raise_for_status()
                answered += len(response.json()["predictions"])
    return answered


def parse_json(stdout: str) -> dict[str, Any]:
    """The JSON object a ``--json`` command printed (its last line block)."""
    start = stdout.find("{")
    return json.loads(stdout[start:]) if start >= 0 else {}
