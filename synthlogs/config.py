"""Every knob of the synthetic generator, in one frozen dataclass.

Kept apart from the drawing code (:mod:`synthlogs.truth`, :mod:`synthlogs.events`), which
reads it, so those modules import it without a cycle.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def id_labels(prefix: str, n: int, width: int, start: int = 0) -> np.ndarray:
    """Return ``n`` zero-padded ids from ``start`` (``u000042``) as an object array, via Arrow."""
    digits = pc.utf8_lpad(pa.array(np.arange(start, start + n)).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "").to_numpy(zero_copy_only=False)


@dataclass(frozen=True)
class SynthConfig:
    """Every knob of the generator; defaults give Taobao-like behaviour shares."""

    n_users: int = 1_000
    n_days: int = 30
    start: str = "2024-01-01"  # first day (UTC)
    seed: int = 0
    n_groups: int = 10
    cats_per_group: int = 12
    n_items: int = 20_000
    zipf_exponent: float = 1.1  # item popularity within a category
    sessions_per_day: float = 0.6  # mean over users; per-user rate is lognormal
    activity_sigma: float = 1.0  # heavy tail of per-user activity
    items_per_session: float = 3.5
    views_per_item: float = 1.3
    session_stickiness: float = 0.7  # share of a session's items in its main category
    gap_seconds: float = 30.0  # median gap between events in a session
    p_fav: float = 0.04
    p_cart: float = 0.075
    p_buy_after_cart: float = 0.35
    p_buy_direct: float = 0.01  # buy after a view without a cart
    p_buy_without_view: float = 0.003  # share of item visits that are a bare buy (re-orders)
    interest_concentration: float = 1.0  # Dirichlet scale: lower = users focus on fewer groups
    leaf_concentration: float = 1.0
    drift_sigma: float = 0.08  # daily logit random-walk step
    jump_rate: float = 0.01  # per user-day chance of an abrupt jump to another group
    jump_size: float = 2.5
    churn_rate: float = 0.01  # mean daily hazard of leaving for good
    new_user_share: float = 0.1  # users joining after day 0
    shift_at: str | None = None  # ISO date the injected shift starts
    shift_fraction: float = 0.2  # share of users whose interests move
    shift_strength: float = 0.8  # share of their interest mass that moves
    behavior_shift: float = 0.0  # shifted users convert (1 + this) times less after shift_at
    with_price: bool = True

    def __post_init__(self) -> None:
        for name in ("n_users", "n_days", "n_groups", "cats_per_group"):
            if getattr(self, name) < 1:
                raise ValueError(f"SynthConfig.{name} must be >= 1, got {getattr(self, name)}")
        n_cats = self.n_groups * self.cats_per_group
        if self.n_items < n_cats:
            raise ValueError(f"SynthConfig.n_items={self.n_items} is below the {n_cats} categories")
        for name in ("shift_fraction", "shift_strength", "session_stickiness", "new_user_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SynthConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("p_fav", "p_cart", "p_buy_after_cart", "p_buy_direct", "p_buy_without_view"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SynthConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.items_per_session < 1 or self.views_per_item < 1:
            raise ValueError("SynthConfig.items_per_session and views_per_item must be >= 1")
        try:
            pd.Timestamp(self.start)
            self.shift_day()
        except ValueError as err:
            raise ValueError(f"SynthConfig: bad date in start/shift_at: {err}") from None

    def shift_day(self) -> int | None:
        """Return the day index of ``shift_at`` (None if unset or outside the span)."""
        if self.shift_at is None:
            return None
        day = (pd.Timestamp(self.shift_at).normalize() - pd.Timestamp(self.start).normalize()).days
        return day if 0 <= day < self.n_days else None

    def user_ids(self) -> np.ndarray:
        """Return the user id strings, ``u000000``-style, as an object array."""
        return id_labels("u", self.n_users, max(6, len(str(self.n_users - 1))))

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a plain dict (for logging and MLflow params)."""
        return asdict(self)
