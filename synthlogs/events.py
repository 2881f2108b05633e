"""Vectorised event generation for the synthetic generator: sessions, funnel, timestamps.

Three levels, each built from the previous one with ``np.repeat``: sessions (per user-day),
blocks (one viewed item within a session, with its fav/cart/buy follow-ups) and events.
There is no Python loop over users or events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthlogs.config import SynthConfig
from synthlogs.truth import SynthTruth, UserDraw

#: Relative session starts per UTC hour: quiet nights, a lunch bump, an evening peak.
DIURNAL = np.array(
    [3, 2, 1.2, 0.8, 0.6, 0.7, 1.2, 2.2, 3.5, 4.5, 5, 5.5,
     6.5, 6, 5.5, 5.5, 5.8, 6.2, 7, 8, 9, 9, 7.5, 5],
)  # fmt: skip
#: Relative activity per weekday (Monday first); weekends are busier.
WEEKLY = np.array([0.95, 0.93, 0.95, 0.97, 1.0, 1.1, 1.1])
#: Behaviour codes used below, matching :data:`core.schema.CORE_BEHAVIORS` order.
VIEW, FAV, CART, BUY = 0, 1, 2, 3
_NONE = 9


@dataclass(frozen=True)
class EventArrays:
    """Integer-coded events, sorted by time (``seconds`` since the config start)."""

    user: np.ndarray
    item: np.ndarray
    category: np.ndarray
    behavior: np.ndarray
    session: np.ndarray
    seconds: np.ndarray


def weekday_factors(config: SynthConfig) -> np.ndarray:
    """Return the (D,) activity multiplier of each day, normalised to mean 1 over a week."""
    first = np.datetime64(config.start, "D").astype("datetime64[D]").astype(np.int64)
    weekday = (first + np.arange(config.n_days) + 3) % 7  # 1970-01-01 was a Thursday
    return WEEKLY[weekday] / WEEKLY.mean()


def _sample_rows(cdf: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one index per row of a row-wise cumulative distribution ``(n, k)``."""
    u = rng.random(cdf.shape[0], dtype=np.float32) * cdf[:, -1]
    return np.minimum((cdf < u[:, None]).sum(axis=1), cdf.shape[1] - 1)


def _sample_categories(
    truth: SynthTruth,
    cdfs: tuple[np.ndarray, np.ndarray],
    user: np.ndarray,
    day: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw a group from the user's interests that day, then a leaf from their profile."""
    group_cdf, leaf_cdf = cdfs
    group = _sample_rows(group_cdf[user, day], rng)
    leaf = _sample_rows(leaf_cdf[group, truth.pref_index[user, group]], rng)
    return group * leaf_cdf.shape[2] + leaf


@dataclass(frozen=True)
class Catalog:
    """Items every user shares: category of each item and Zipf popularity within it."""

    sizes: np.ndarray  # (K,) items per category
    offsets: np.ndarray  # (K + 1,) first item index of each category
    flat: np.ndarray  # (N,) cumulative popularity; category k occupies (k, k + 1]


def draw_catalog(config: SynthConfig, rng: np.random.Generator) -> Catalog:
    """Draw item counts per category and Zipf popularity within each."""
    n_cats = config.n_groups * config.cats_per_group
    sizes = rng.multinomial(config.n_items - n_cats, rng.dirichlet(np.full(n_cats, 2.0))) + 1
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    rank = np.arange(config.n_items) - np.repeat(offsets[:-1], sizes) + 1
    weight = 1.0 / rank**config.zipf_exponent
    cum = np.cumsum(weight)
    start = np.repeat(cum[offsets[:-1]] - weight[offsets[:-1]], sizes)
    total = np.repeat(cum[offsets[1:] - 1], sizes) - start
    # Category k occupies (k, k + 1] so one searchsorted serves every category.
    flat = np.repeat(np.arange(n_cats), sizes) + (cum - start) / total
    return Catalog(sizes=sizes, offsets=offsets, flat=flat)


def draw_prices(config: SynthConfig, catalog: Catalog, rng: np.random.Generator) -> np.ndarray:
    """Draw item prices: a lognormal level per category times a per-item factor."""
    base = np.repeat(rng.lognormal(3.0, 0.8, catalog.sizes.size), catalog.sizes)
    return np.round(base * rng.lognormal(0.0, 0.3, config.n_items), 2)


def _sample_items(catalog: Catalog, category: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw an item of each given category by its popularity."""
    item = np.searchsorted(catalog.flat, category + rng.random(category.size), side="right")
    return np.minimum(item, catalog.offsets[category + 1] - 1)


def _funnel(
    config: SynthConfig, n_blocks: int, damp: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per block: number of views and the sorted follow-up codes ``(B, 3)``."""
    direct = rng.random(n_blocks, dtype=np.float32) < config.p_buy_without_view
    views = np.where(direct, 0, rng.geometric(1.0 / config.views_per_item, n_blocks))
    fav = ~direct & (rng.random(n_blocks, dtype=np.float32) < config.p_fav * damp)
    cart = ~direct & (rng.random(n_blocks, dtype=np.float32) < config.p_cart * damp)
    p_buy = np.where(cart, config.p_buy_after_cart, config.p_buy_direct * damp)
    buy = direct | (rng.random(n_blocks, dtype=np.float32) < p_buy)
    codes = np.full((n_blocks, 3), _NONE, dtype=np.int8)
    codes[fav, 0], codes[cart, 1], codes[buy, 2] = FAV, CART, BUY
    codes.sort(axis=1)  # present follow-ups first, in funnel order
    return views, codes


def _timestamps(
    config: SynthConfig,
    session_day: np.ndarray,
    event_session: np.ndarray,
    first_event: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Seconds since start: diurnal session start plus short heavy-tailed gaps."""
    n_events = event_session.size
    # Lognormal gaps via a quantile table: a lookup is far cheaper than exp per event.
    quantiles = rng.lognormal(np.log(config.gap_seconds), 1.0, 4096)
    table = np.clip(quantiles, 1, 1800).astype(np.int64)
    gaps = table[rng.integers(0, table.size, n_events, dtype=np.int16)]
    gaps[first_event] = 0
    cum = np.cumsum(gaps)
    offset = cum - cum[first_event][event_session]
    last_event = np.append(first_event[1:], n_events) - 1
    duration = offset[last_event]
    hour_cdf = np.cumsum(DIURNAL) / DIURNAL.sum()
    hour = np.searchsorted(hour_cdf, rng.random(session_day.size), side="right")
    start = hour * 3600 + rng.integers(0, 3600, session_day.size)
    # Keep each session inside its day so churn and day boundaries stay exact.
    start = np.clip(np.minimum(start, 86_399 - duration), 0, None)
    within = np.minimum(start[event_session] + offset, 86_399)
    return session_day[event_session].astype(np.int64) * 86_400 + within


def draw_events(
    config: SynthConfig,
    truth: SynthTruth,
    users: UserDraw,
    catalog: Catalog,
    rngs: list[np.random.Generator],
) -> EventArrays:
    """Generate the events of ``truth``'s users, sorted by time (user/session indices local)."""
    n_users, n_days = users.activity.size, config.n_days
    rate = users.activity[:, None] * weekday_factors(config)[None, :]
    counts = rngs[0].poisson(rate * users.alive(n_days)).ravel()
    cell = np.repeat(np.arange(n_users * n_days), counts)
    s_user, s_day = cell // n_days, cell % n_days
    n_sessions = cell.size

    per_session = rngs[0].geometric(1.0 / config.items_per_session, n_sessions)
    b_session = np.repeat(np.arange(n_sessions), per_session)
    b_user, b_day = s_user[b_session], s_day[b_session]
    cdfs = (np.cumsum(truth.interests, axis=2), np.cumsum(truth.pref_bank, axis=2))
    category = _sample_categories(truth, cdfs, s_user, s_day, rngs[1])[b_session]
    fresh = rngs[1].random(b_session.size, dtype=np.float32) >= config.session_stickiness
    fresh = np.flatnonzero(fresh)
    category[fresh] = _sample_categories(truth, cdfs, b_user[fresh], b_day[fresh], rngs[1])
    del cdfs
    item = _sample_items(catalog, category, rngs[2])

    damp = np.ones(b_session.size, dtype=np.float32)
    shift_day = config.shift_day()
    if config.behavior_shift > 0 and shift_day is not None:
        moved = truth.users["shifted"].to_numpy()[b_user] & (b_day >= shift_day)
        damp[moved] = 1.0 / (1.0 + config.behavior_shift)
    views, codes = _funnel(config, b_session.size, damp, rngs[3])

    per_block = views + (codes != _NONE).sum(axis=1)
    e_block = np.repeat(np.arange(b_session.size), per_block)
    block_start = np.cumsum(per_block) - per_block
    pos = np.arange(e_block.size) - block_start[e_block]
    extra = np.clip(pos - views[e_block], 0, 2)
    behavior = np.where(pos < views[e_block], VIEW, codes[e_block, extra]).astype(np.int8)
    e_session = b_session[e_block]
    # Blocks are contiguous per session, so a session's first event starts its first block.
    first_block = np.cumsum(per_session) - per_session
    seconds = _timestamps(config, s_day, e_session, block_start[first_block], rngs[4])

    # Sorting unique (time, index) keys is a stable argsort, about twice as fast.
    index_bits = max(1, int(seconds.size).bit_length())
    keys = np.sort((seconds << index_bits) | np.arange(seconds.size))
    order = keys & ((1 << index_bits) - 1)
    del keys
    return EventArrays(
        user=s_user[e_session][order].astype(np.int32),
        item=item[e_block][order].astype(np.int32),
        category=category[e_block][order].astype(np.int32),
        behavior=behavior[order],
        session=e_session[order].astype(np.int64),
        seconds=seconds[order],
    )
