"""The paired bootstrap over users: seeded, grouped by user, wide enough to refuse noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.paired import paired_bootstrap


def per_user_recall(n_users: int, gain: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Realistic per-user recall@10: a baseline spread over [0, 1] (mean ~0.38, sd ~0.3) and
    a challenger that differs user by user (sd ~0.15) with a mean relative gain ``gain``."""
    rng = np.random.default_rng(seed)
    base = rng.beta(0.6, 1.0, n_users)
    noise = rng.normal(0.0, 0.15, n_users)
    noise -= noise.mean()
    return base * (1 + gain) + noise, base


def test_small_gain_on_900_users_is_not_sure():
    a, b = per_user_recall(900, 0.009, seed=1)
    interval = paired_bootstrap(a, b, np.arange(900))
    assert interval.point == pytest.approx(0.009, abs=1e-9)
    assert interval.lower < 0 < interval.upper
    assert interval.n_users == interval.n_samples == 900 and interval.n_resamples == 1000


def test_large_gain_is_sure_and_the_interval_contains_the_point():
    a, b = per_user_recall(900, 0.25, seed=2)
    interval = paired_bootstrap(a, b)
    assert 0 < interval.lower < interval.point < interval.upper
    assert interval.mean_a == pytest.approx(a.mean()) and interval.mean_b == pytest.approx(b.mean())


def test_seeded_and_direction_aware():
    a, b = per_user_recall(300, 0.05, seed=3)
    assert paired_bootstrap(a, b, seed=7) == paired_bootstrap(a, b, seed=7)
    assert paired_bootstrap(a, b, seed=7) != paired_bootstrap(a, b, seed=8)
    # Lower is better: b beats a by (mean(a) - mean(b)) / mean(a), a's mean the reference.
    lower_better = paired_bootstrap(b, a, higher_is_better=False)
    assert lower_better.point == pytest.approx((a.mean() - b.mean()) / a.mean())
    assert lower_better.lower > 0


def test_a_users_samples_resample_together():
    a, b = per_user_recall(400, 0.03, seed=4)
    users = np.arange(400)
    once = paired_bootstrap(a, b, users)
    # Every user scored at two cutoffs with the same values: no new evidence.
    a2, b2, users2 = np.repeat(a, 2), np.repeat(b, 2), np.repeat(users, 2)
    grouped = paired_bootstrap(a2, b2, users2)
    assert (grouped.lower, grouped.upper) == pytest.approx((once.lower, once.upper), abs=1e-12)
    assert grouped.n_users == 400 and grouped.n_samples == 800
    # Treating the copies as independent users would claim a narrower interval.
    naive = paired_bootstrap(a2, b2)
    assert naive.upper - naive.lower < 0.8 * (grouped.upper - grouped.lower)


def test_nan_samples_are_left_out_and_empty_input_refused():
    a, b = per_user_recall(200, 0.1, seed=5)
    a[:50] = np.nan
    interval = paired_bootstrap(a, b)
    assert interval.n_samples == 150
    with pytest.raises(ValueError, match="finite"):
        paired_bootstrap(np.full(3, np.nan), np.ones(3))
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap(a, b, confidence=1.0)


def test_zero_baseline_gives_an_unbounded_gain():
    interval = paired_bootstrap(np.array([0.1, 0.2]), np.zeros(2))
    assert math.isinf(interval.point) and interval.to_dict()["point"] is None
    flat = paired_bootstrap(np.zeros(2), np.zeros(2))
    assert flat.point == flat.lower == flat.upper == 0.0
