"""Latent world of the synthetic generator: users, interests, churn and the injected shift.

Everything here is per user or per (user, day), never per event, so it stays small. The
:class:`SynthTruth` it returns is what tests compare a trained model against.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from synthlogs.config import SynthConfig, id_labels

#: Added to Dirichlet draws before taking logs, so that drift can revive unused groups.
_LOGIT_FLOOR = 0.02
_BANK_SIZE = 4096


@dataclass(frozen=True)
class UserDraw:
    """Per-user activity, join day and churn day (``-1`` = never churns in the span)."""

    activity: np.ndarray  # (U,) expected sessions per active day
    join_day: np.ndarray  # (U,) first day the user may be active
    churn_day: np.ndarray  # (U,) first day of permanent inactivity, or -1

    def alive(self, n_days: int) -> np.ndarray:
        """Return the (U, D) mask of days on which each user may be active."""
        days = np.arange(n_days)[None, :]
        end = np.where(self.churn_day < 0, n_days, self.churn_day)[:, None]
        return (days >= self.join_day[:, None]) & (days < end)


@dataclass(frozen=True)
class InterestWorld:
    """What every user shares: group popularity and the bank of leaf-preference profiles.

    Drawn once per config, so users generated in separate shards live in the same world.
    """

    group_pop: np.ndarray  # (G,) popularity of each group (sums to 1)
    pref_bank: np.ndarray  # (G, M, C) float32 leaf-preference profiles per group
    groups: list[str]
    categories: list[str]


@dataclass
class SynthTruth:
    """Latent ground truth behind a synthetic event log.

    Attributes:
        users: one row per user: ``user_id``, ``activity``, ``join_date``, ``churn_day``
            (``Int64``, NA if the user never churns), ``churn_date`` (no events at or after it),
            ``shifted``, ``shift_group`` (target group id or ``""``).
        interests: ``(U, D, G)`` float32 daily interest distribution over groups.
        pref_bank: ``(G, M, C)`` float32 leaf-preference profiles per group; user ``u`` uses
            profile ``pref_index[u, g]`` in group ``g`` (a bank keeps big runs cheap).
        pref_index: ``(U, G)`` int32.
        groups: group ids ``g00..``; categories: leaf ids ``g00-c00..`` (index ``g * C + c``).
        dates: the ``D`` days (UTC midnights).
        shift_groups: the "trend" groups shifted users move to (empty without a shift).
    """

    users: pd.DataFrame
    interests: np.ndarray
    pref_bank: np.ndarray
    pref_index: np.ndarray
    groups: list[str]
    categories: list[str]
    dates: pd.DatetimeIndex
    shift_groups: list[str]

    @property
    def category_prefs(self) -> np.ndarray:
        """Return the ``(U, G, C)`` preference over leaves within each group, per user."""
        return self.pref_bank[np.arange(self.pref_bank.shape[0]), self.pref_index]

    def category_mix(self, day: int) -> np.ndarray:
        """Return the ``(U, G * C)`` interest distribution over leaf categories on ``day``."""
        mix = self.interests[:, day, :, None] * self.category_prefs
        return mix.reshape(mix.shape[0], -1)

    def to_frame(self) -> pd.DataFrame:
        """Return one row per (user, day) with user-level columns and one column per group."""
        n_users, n_days, _ = self.interests.shape
        frame = pd.DataFrame(
            {
                "user_id": np.repeat(self.users["user_id"].to_numpy(), n_days),
                "date": np.tile(self.dates.tz_convert(None).to_numpy(), n_users),
            }
        )
        frame["date"] = frame["date"].dt.tz_localize("UTC")
        frame["user_id"] = frame["user_id"].astype("string")
        for col in ("shifted", "churn_date"):
            frame[col] = np.repeat(self.users[col].to_numpy(), n_days)
        frame["churn_date"] = pd.to_datetime(frame["churn_date"], utc=True)
        flat = self.interests.reshape(n_users * n_days, -1)
        for i, group in enumerate(self.groups):
            frame[group] = flat[:, i]
        return frame

    def save(self, path: Path) -> None:
        """Write :meth:`to_frame` to a Parquet file."""
        self.to_frame().to_parquet(path, index=False)


def draw_users(config: SynthConfig, rng: np.random.Generator, n_users: int) -> UserDraw:
    """Draw heavy-tailed activity, join days and churn days for ``n_users`` users."""
    sigma = config.activity_sigma
    rel = rng.lognormal(-0.5 * sigma**2, sigma, n_users)
    activity = config.sessions_per_day * np.minimum(rel, 30.0)
    days = config.n_days
    late = rng.random(n_users) < config.new_user_share
    join = np.where(late, rng.integers(1, max(days, 2), n_users), 0) if days > 1 else 0
    join_day = np.broadcast_to(join, (n_users,)).astype(np.int64)
    # Light users churn faster than heavy ones.
    hazard = config.churn_rate * np.clip(rel, 0.05, None) ** -0.3 * rng.lognormal(0, 0.5, n_users)
    hazard = np.clip(hazard, 1e-12, 1.0)
    lifetime = rng.geometric(hazard) if config.churn_rate > 0 else np.full(n_users, days + 1)
    churn_day = join_day + lifetime
    churn_day = np.where(churn_day >= days, -1, churn_day).astype(np.int64)
    return UserDraw(activity=activity, join_day=join_day, churn_day=churn_day)


def _zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    weights = rng.permutation(1.0 / np.arange(1, n + 1) ** exponent)
    return weights / weights.sum()


def _dirichlet(alpha: np.ndarray, size: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    # Vectorised over a batch (numpy's dirichlet draws one alpha per call).
    draws = rng.standard_gamma(np.broadcast_to(alpha, size + alpha.shape)).astype(np.float32)
    draws += 1e-12
    return draws / draws.sum(axis=-1, keepdims=True)


def _drift_interests(config: SynthConfig, base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Logit random walk per day plus occasional jumps towards a random group."""
    n_users, n_groups = base.shape
    steps = rng.standard_normal((n_users, config.n_days, n_groups), dtype=np.float32)
    steps *= config.drift_sigma
    steps[:, 0, :] = np.log(base + _LOGIT_FLOOR)
    jumps = np.nonzero(rng.random((n_users, config.n_days)) < config.jump_rate)
    keep = jumps[1] > 0
    steps[jumps[0][keep], jumps[1][keep], rng.integers(0, n_groups, keep.sum())] += config.jump_size
    logits = np.cumsum(steps, axis=1)
    logits -= logits.max(axis=2, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=2, keepdims=True)
    return logits


def _apply_shift(
    config: SynthConfig,
    interests: np.ndarray,
    alive: np.ndarray,
    group_pop: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move a share of users' interests towards the least popular ("trend") groups."""
    n_users, n_days, n_groups = interests.shape
    shifted = np.zeros(n_users, dtype=bool)
    target = np.full(n_users, -1, dtype=np.int64)
    day = config.shift_day()
    trend = np.argsort(group_pop, kind="stable")[: max(1, n_groups // 5)]
    if day is None or config.shift_fraction <= 0:
        return shifted, target, trend[:0]
    candidates = np.flatnonzero(alive[:, day:].any(axis=1))
    n_shift = int(round(config.shift_fraction * candidates.size))
    chosen = np.sort(rng.choice(candidates, n_shift, replace=False))
    shifted[chosen] = True
    # Each shifted user moves to the trend group it liked least: a real move, not a no-op.
    target[chosen] = trend[np.argmin(interests[chosen, day][:, trend], axis=1)]
    onehot = np.zeros((n_shift, 1, n_groups), dtype=np.float32)
    onehot[np.arange(n_shift), 0, target[chosen]] = 1.0
    s = np.float32(config.shift_strength)
    interests[chosen, day:] = (1 - s) * interests[chosen, day:] + s * onehot
    return shifted, target, trend


def draw_truth(config: SynthConfig, rngs: list[np.random.Generator]) -> tuple[SynthTruth, UserDraw]:
    """Draw the whole latent world and all users of ``config`` at once (the in-memory path)."""
    users = draw_users(config, rngs[0], config.n_users)
    n_groups, n_leaves = config.n_groups, config.cats_per_group
    group_pop = _zipf_weights(n_groups, 1.0, rngs[1])
    alpha = (config.interest_concentration * n_groups * group_pop).astype(np.float64)
    base = _dirichlet(alpha, (config.n_users,), rngs[1])
    interests = _drift_interests(config, base, rngs[2])
    leaf_pop = np.stack([_zipf_weights(n_leaves, 1.0, rngs[1]) for _ in range(n_groups)])
    n_bank = min(config.n_users, _BANK_SIZE)
    bank = _dirichlet(leaf_pop * n_leaves * config.leaf_concentration, (n_bank,), rngs[1])
    world = InterestWorld(
        group_pop=group_pop,
        pref_bank=np.ascontiguousarray(bank.transpose(1, 0, 2)),
        groups=[f"g{g:02d}" for g in range(n_groups)],
        categories=[f"g{g:02d}-c{c:02d}" for g in range(n_groups) for c in range(n_leaves)],
    )
    pref_index = rngs[1].integers(0, n_bank, (config.n_users, n_groups), dtype=np.int32)
    return _assemble(config, world, users, interests, pref_index, rngs[3], 0), users


def draw_interest_world(config: SynthConfig, rng: np.random.Generator) -> InterestWorld:
    """Draw group popularity and the leaf-preference bank shared by every shard of ``config``."""
    n_groups, n_leaves = config.n_groups, config.cats_per_group
    group_pop = _zipf_weights(n_groups, 1.0, rng)
    leaf_pop = np.stack([_zipf_weights(n_leaves, 1.0, rng) for _ in range(n_groups)])
    n_bank = min(config.n_users, _BANK_SIZE)
    bank = _dirichlet(leaf_pop * n_leaves * config.leaf_concentration, (n_bank,), rng)
    return InterestWorld(
        group_pop=group_pop,
        pref_bank=np.ascontiguousarray(bank.transpose(1, 0, 2)),
        groups=[f"g{g:02d}" for g in range(n_groups)],
        categories=[f"g{g:02d}-c{c:02d}" for g in range(n_groups) for c in range(n_leaves)],
    )


def draw_shard_truth(
    config: SynthConfig,
    world: InterestWorld,
    rngs: list[np.random.Generator],
    first_user: int,
    n_users: int,
) -> tuple[SynthTruth, UserDraw]:
    """Draw users ``first_user .. first_user + n_users`` of ``config`` in a shared ``world``.

    Args:
        config: generator settings (``config.n_users``, the total, sets the id width).
        world: the :class:`InterestWorld` every shard shares.
        rngs: this shard's own users, interests, drift and shift generators.
        first_user: global index of the first user (ids continue across shards).
        n_users: users in this shard.
    """
    users = draw_users(config, rngs[0], n_users)
    n_groups = config.n_groups
    alpha = (config.interest_concentration * n_groups * world.group_pop).astype(np.float64)
    base = _dirichlet(alpha, (n_users,), rngs[1])
    interests = _drift_interests(config, base, rngs[2])
    n_bank = world.pref_bank.shape[1]
    pref_index = rngs[1].integers(0, n_bank, (n_users, n_groups), dtype=np.int32)
    return _assemble(config, world, users, interests, pref_index, rngs[3], first_user), users


def _assemble(
    config: SynthConfig,
    world: InterestWorld,
    users: UserDraw,
    interests: np.ndarray,
    pref_index: np.ndarray,
    shift_rng: np.random.Generator,
    first_user: int,
) -> SynthTruth:
    """Apply the injected shift and build the :class:`SynthTruth` of these users."""
    n_users = users.activity.size
    alive = users.alive(config.n_days)
    shifted, target, trend = _apply_shift(config, interests, alive, world.group_pop, shift_rng)
    groups = world.groups
    dates = pd.date_range(config.start, periods=config.n_days, freq="D", tz="UTC")
    churn = pd.array(np.where(users.churn_day < 0, pd.NA, users.churn_day), dtype="Int64")
    churn_date = pd.Series(pd.NaT, index=range(n_users), dtype="datetime64[ns, UTC]")
    has_churn = users.churn_day >= 0
    churn_date[has_churn] = dates[0] + pd.to_timedelta(users.churn_day[has_churn], unit="D")
    width = max(6, len(str(config.n_users - 1)))
    frame = pd.DataFrame(
        {
            "user_id": pd.array(id_labels("u", n_users, width, first_user), dtype="string"),
            "activity": users.activity,
            "join_date": dates[0] + pd.to_timedelta(users.join_day, unit="D"),
            "churn_day": churn,
            "churn_date": churn_date,
            "shifted": shifted,
            "shift_group": pd.array(
                np.where(target >= 0, np.array(groups)[np.maximum(target, 0)], ""), dtype="string"
            ),
        }
    )
    return SynthTruth(
        users=frame,
        interests=interests,
        pref_bank=world.pref_bank,
        pref_index=pref_index,
        groups=groups,
        categories=world.categories,
        dates=dates,
        shift_groups=[groups[g] for g in trend],
    )
