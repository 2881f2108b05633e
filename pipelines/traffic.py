"""Client traffic for the demo: replay users' recent histories to a served model over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pandas as pd

BATCH_USERS = 32  # users per /predict_batch call
MAX_EVENTS_SENT = 200  # most recent events per user in a request


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
