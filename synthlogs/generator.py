"""Seeded generator of realistic e-commerce behaviour logs with known ground truth.

Users hold interest mixtures over a two-level category hierarchy (groups -> leaves) that
drift day by day and occasionally jump; items have Zipf popularity within categories;
events come in sessions at plausible hours and follow a view -> fav/cart -> buy funnel;
activity is heavy-tailed and users churn for good. A distribution shift can be injected
from ``shift_at``. The same :class:`SynthConfig` always yields the identical frame.

Example::

    result = generate_events(config_for_events(100_000, seed=7))
    result.events  # about 100,000 canonical events; result.truth holds the latent state
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from core.schema import CORE_BEHAVIORS, EVENT_COLUMNS
from synthlogs.config import SynthConfig, id_labels
from synthlogs.events import (
    Catalog,
    EventArrays,
    draw_catalog,
    draw_events,
    draw_prices,
    weekday_factors,
)
from synthlogs.truth import (
    InterestWorld,
    SynthTruth,
    draw_interest_world,
    draw_shard_truth,
    draw_truth,
    draw_users,
)

_PILOT_USERS = 20_000


def expected_events_per_user(config: SynthConfig) -> float:
    """Expected events per user, from a seeded pilot draw of user activity and churn."""
    users = draw_users(config, np.random.default_rng([config.seed, 99]), _PILOT_USERS)
    sessions = users.activity[:, None] * weekday_factors(config) * users.alive(config.n_days)
    buy = config.p_cart * config.p_buy_after_cart + (1 - config.p_cart) * config.p_buy_direct
    visit = config.views_per_item + config.p_fav + config.p_cart + buy
    per_item = (1 - config.p_buy_without_view) * visit + config.p_buy_without_view
    return float(sessions.sum(axis=1).mean() * config.items_per_session * per_item)


def config_for_events(n_events: int, seed: int = 0, **overrides: Any) -> SynthConfig:
    """Return a config sized (via ``n_users``) for about ``n_events`` events.

    Args:
        n_events: target number of events (the result lands within a few percent).
        seed: random seed.
        **overrides: any other field, e.g. ``n_days`` or ``shift_at``.
    """
    if n_events < 1:
        raise ValueError(f"n_events must be >= 1, got {n_events}")
    probe = SynthConfig(seed=seed, **{**overrides, "n_users": 1})
    n_users = max(1, int(round(n_events / expected_events_per_user(probe))))
    return replace(probe, n_users=n_users)


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
        "item_text": _missing_strings(ev.item.size),
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
