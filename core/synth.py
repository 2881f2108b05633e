"""Seeded generator of realistic e-commerce behaviour logs with known ground truth.

Users hold interest mixtures over a two-level category hierarchy (groups -> leaves) that
drift day by day and occasionally jump; items have Zipf popularity within categories;
events come in sessions at plausible hours and follow a view -> fav/cart -> buy funnel;
activity is heavy-tailed and users churn for good. A distribution shift can be injected
from ``shift_at``. The same :class:`SynthConfig` always yields the identical frame.

Example::

    result = generate_events(SynthConfig.for_events(100_000, seed=7))
    result.events  # about 100,000 canonical events; result.truth holds the latent state
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from core.schema import CORE_BEHAVIORS, EVENT_COLUMNS
from core.synth_events import (
    Catalog,
    EventArrays,
    draw_catalog,
    draw_events,
    draw_prices,
    weekday_factors,
)
from core.synth_truth import (
    InterestWorld,
    SynthTruth,
    draw_interest_world,
    draw_shard_truth,
    draw_truth,
    draw_users,
    id_labels,
)

_PILOT_USERS = 20_000


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

    @classmethod
    def for_events(cls, n_events: int, seed: int = 0, **overrides: Any) -> SynthConfig:
        """Return a config sized (via ``n_users``) for about ``n_events`` events.

        Args:
            n_events: target number of events (the result lands within a few percent).
            seed: random seed.
            **overrides: any other field, e.g. ``n_days`` or ``shift_at``.
        """
        if n_events < 1:
            raise ValueError(f"n_events must be >= 1, got {n_events}")
        probe = cls(seed=seed, **{**overrides, "n_users": 1})
        n_users = max(1, int(round(n_events / probe.expected_events_per_user())))
        return replace(probe, n_users=n_users)

    def expected_events_per_user(self) -> float:
        """Expected events per user, from a seeded pilot draw of user activity and churn."""
        users = draw_users(self, np.random.default_rng([self.seed, 99]), _PILOT_USERS)
        sessions = users.activity[:, None] * weekday_factors(self) * users.alive(self.n_days)
        buy = self.p_cart * self.p_buy_after_cart + (1 - self.p_cart) * self.p_buy_direct
        visit = self.views_per_item + self.p_fav + self.p_cart + buy
        per_item = (1 - self.p_buy_without_view) * visit + self.p_buy_without_view
        return float(sessions.sum(axis=1).mean() * self.items_per_session * per_item)

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


@dataclass
class SynthResult:
    """Output of :func:`generate_events`.

    Attributes:
        events: canonical event frame (``core.schema`` columns and dtypes), sorted by time.
        truth: latent ground truth (daily interests, shifted users, churn days).
        config: the config that produced it.
        n_sessions: number of sessions (their ids are consecutive).
    """

    events: pd.DataFrame
    truth: SynthTruth
    config: SynthConfig
    n_sessions: int = 0

    def behavior_shares(self) -> dict[str, float]:
        """Return the share of each core behaviour among the events."""
        shares = self.events["behavior"].value_counts(normalize=True)
        return {b: float(shares.get(b, 0.0)) for b in CORE_BEHAVIORS}


def _strings(table: np.ndarray, codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Build a string column of ``table[codes]`` in the storage ``astype("string")`` gives.

    The Python storage shares one object per distinct value; the Arrow one decodes a
    dictionary array in C++. Both avoid creating a Python string per event.
    """
    dtype = pd.StringDtype()
    if dtype.storage == "pyarrow":
        coded = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(table))
        return pd.arrays.ArrowStringArray(coded.cast(pa.string()))
    return pd.array(table[codes], dtype=dtype)


def generate_events(config: SynthConfig) -> SynthResult:
    """Generate a synthetic event log and its latent ground truth, all users at once.

    Args:
        config: generator settings; identical configs give identical results.

    Returns:
        A :class:`SynthResult` whose ``events`` are canonical and sorted by timestamp.
    """
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(10)]
    # One generator per stage, so changing one stage leaves the others' draws unchanged.
    truth, users = draw_truth(config, rngs[:4])
    # Catalog, item draws and prices share rngs[6] in this order so existing seeds keep
    # their logs; shards (generate_shard) use separate world and user streams instead.
    catalog = draw_catalog(config, rngs[6])
    ev = draw_events(config, truth, users, catalog, rngs[4:9])
    prices = draw_prices(config, catalog, rngs[6])
    item_names = id_labels("i", config.n_items, 7)[rngs[9].permutation(config.n_items)]
    return _result(config, truth, ev, item_names, prices, 0)


@dataclass(frozen=True)
class SynthWorld:
    """What every shard of a config shares: interest world, items, prices and item names."""

    interests: InterestWorld
    catalog: Catalog
    prices: np.ndarray
    item_names: np.ndarray


def draw_world(config: SynthConfig) -> SynthWorld:
    """Draw the shared world of ``config`` from its own seed stream (no user draws)."""
    seeds = np.random.SeedSequence(config.seed, spawn_key=(10,)).spawn(3)
    rngs = [np.random.default_rng(s) for s in seeds]
    catalog = draw_catalog(config, rngs[1])
    return SynthWorld(
        interests=draw_interest_world(config, rngs[0]),
        catalog=catalog,
        prices=draw_prices(config, catalog, rngs[1]),
        item_names=id_labels("i", config.n_items, 7)[rngs[2].permutation(config.n_items)],
    )


def generate_shard(
    config: SynthConfig,
    world: SynthWorld,
    shard: int,
    first_user: int,
    n_users: int,
    first_session: int = 0,
) -> SynthResult:
    """Generate the events of users ``first_user .. first_user + n_users`` in ``world``.

    Each shard draws its users from its own seed stream (``config.seed``, ``shard``) in the
    shared world, so it is a statistically faithful sample of the config's users (but not
    the same draws as :func:`generate_events`); ids continue the global numbering.

    Args:
        config: generator settings (``n_users`` is the total across all shards).
        world: :func:`draw_world` of ``config``.
        shard: shard number; selects the seed stream.
        first_user: global index of the shard's first user.
        n_users: users in this shard.
        first_session: global index of the shard's first session.

    Returns:
        A :class:`SynthResult` for the shard's users, events sorted by timestamp.
    """
    seeds = np.random.SeedSequence(config.seed, spawn_key=(11, shard)).spawn(9)
    rngs = [np.random.default_rng(s) for s in seeds]
    truth, users = draw_shard_truth(config, world.interests, rngs[:4], first_user, n_users)
    ev = draw_events(config, truth, users, world.catalog, rngs[4:])
    return _result(config, truth, ev, world.item_names, world.prices, first_session)


def _result(
    config: SynthConfig,
    truth: SynthTruth,
    ev: EventArrays,
    item_names: np.ndarray,
    prices: np.ndarray,
    first_session: int,
) -> SynthResult:
    """Turn integer-coded events into the canonical frame (strings without per-row objects)."""
    start = pd.Timestamp(config.start, tz="UTC").normalize()
    stamps = start.value + ev.seconds * 1_000_000_000
    n_sessions = int(ev.session.max()) + 1 if ev.session.size else 0
    frame = {
        "user_id": _strings(truth.users["user_id"].to_numpy(dtype=object), ev.user),
        "item_id": _strings(item_names, ev.item),
        "category_id": _strings(np.array(truth.categories, dtype=object), ev.category),
        "behavior": _strings(np.array(CORE_BEHAVIORS, dtype=object), ev.behavior),
        "timestamp": pd.DatetimeIndex(stamps.view("M8[ns]")).tz_localize("UTC"),
        "price": prices[ev.item] if config.with_price else np.full(ev.item.size, np.nan),
        "brand": _missing_strings(ev.item.size),
        "session_id": _session_ids(ev.session, first_session, first_session + n_sessions),
        "text": _missing_strings(ev.item.size),
    }
    events = pd.DataFrame(frame, columns=list(EVENT_COLUMNS), copy=False)
    return SynthResult(events=events, truth=truth, config=config, n_sessions=n_sessions)


def _session_ids(session: np.ndarray, first: int, end: int) -> pd.arrays.StringArray:
    """Return ``s00000042``-style ids numbered from ``first`` (every index has an event).

    The width follows the global count ``end``: numbers never repeat across shards, so the
    ids stay unique even if a later shard needs one more digit.
    """
    labels = id_labels("s", end - first, max(8, len(str(end))), first)
    return _strings(labels, session)


def _missing_strings(n: int) -> pd.arrays.StringArray:
    return pd.Series(pd.NA, index=pd.RangeIndex(n), dtype=pd.StringDtype()).array
