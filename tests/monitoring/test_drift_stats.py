"""Binned reference statistics: agreement with scipy, the cache beside the reference."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from monitoring.stats import (
    ReferenceStats,
    ShareStats,
    cached_stats,
    numeric_values,
    share_matrix,
    stats_path,
)
from monitoring.stattests import chi2_test, ks_test, wald_test

COLUMNS = (["x"], ["c"], ["b"])


def frame(n: int, seed: int, loc: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(loc, 1.0, n),
            "c": rng.choice(list("abcde"), n, p=[0.4, 0.3, 0.2, 0.09, 0.01]),
            "b": rng.dirichlet([2.0, 1.0, 1.0], n).tolist(),
        }
    )


@pytest.mark.parametrize("loc", [0.0, 0.1, 0.3])
def test_binned_ks_matches_scipy(loc: float) -> None:
    ref, cur = frame(5000, 0), frame(3000, 1, loc)
    stats = ReferenceStats.from_frame(ref, *COLUMNS)
    p, d = ks_test(stats.numeric["x"], numeric_values(cur["x"]))
    exact = st.ks_2samp(ref["x"], cur["x"], method="asymp")
    assert d == pytest.approx(exact.statistic, abs=0.01)
    assert d <= exact.statistic + 1e-12  # a grid can only miss part of the gap
    assert np.log10(max(p, 1e-300)) == pytest.approx(np.log10(max(exact.pvalue, 1e-300)), abs=1)


def test_few_valued_column_is_exact() -> None:
    rng = np.random.default_rng(0)
    ref, cur = rng.integers(0, 24, 4000), rng.integers(0, 20, 4000)
    stats = ReferenceStats.from_frame(pd.DataFrame({"x": ref}), ["x"], [], [])
    _, d = ks_test(stats.numeric["x"], np.sort(cur.astype(float)))
    assert d == pytest.approx(st.ks_2samp(ref, cur).statistic)


def test_chi2_matches_scipy_contingency() -> None:
    ref, cur = frame(4000, 0), frame(2000, 1)
    stats = ReferenceStats.from_frame(ref, *COLUMNS)
    counts = cur["c"].value_counts()
    p, w = chi2_test(stats.categorical["c"], counts.astype(float).to_dict(), len(cur))
    table = pd.crosstab(
        np.r_[np.zeros(len(ref)), np.ones(len(cur))], np.r_[ref["c"], cur["c"]]
    ).to_numpy()
    expected = st.chi2_contingency(table, correction=False)
    assert p == pytest.approx(expected.pvalue, rel=1e-6)
    assert 0.0 <= w < 0.05  # same distribution: no effect once the null's mean is removed


def test_unseen_categories_pool_into_one_cell() -> None:
    ref = pd.DataFrame({"c": ["a"] * 500 + ["b"] * 500})
    stats = ReferenceStats.from_frame(ref, [], ["c"], [])
    p, w = chi2_test(stats.categorical["c"], {"a": 300.0, "b": 300.0, "new": 400.0}, 1000)
    assert p < 1e-12 and w > 0.3


def test_stats_round_trip_json() -> None:
    stats = ReferenceStats.from_frame(frame(1000, 0), *COLUMNS)
    assert ReferenceStats.from_json(stats.to_json()) == stats
    assert stats.buckets["b"].n == 1000 and len(stats.buckets["b"].total) == 3


def test_cache_is_written_once_and_reused(tmp_path: Path) -> None:
    ref = frame(1000, 0)
    path = tmp_path / "reference.parquet"
    ref.to_parquet(path)
    first = cached_stats(path, ref, *COLUMNS)
    cache = stats_path(path)
    assert cache.name == "reference.parquet.stats.json" and cache.is_file()
    # Reused: a frame that disagrees with the cache does not change the answer.
    assert cached_stats(path, frame(1000, 5), *COLUMNS) == first
    # A reference newer than its cache is summarised again.
    later = cache.stat().st_mtime_ns + 10**9
    os.utime(path, ns=(later, later))
    assert cached_stats(path, frame(1000, 5), *COLUMNS) != first


def test_unwritable_cache_still_answers(tmp_path: Path) -> None:
    ref = frame(500, 0)
    missing = tmp_path / "gone" / "reference.parquet"  # its folder does not exist
    stats = cached_stats(missing, ref, *COLUMNS)
    assert stats.n_rows == 500


def test_malformed_bucket_values_are_left_out() -> None:
    series = pd.Series([[0.5, 0.5], "[0. 1.]", None, [1.0, None], [0.0, 0.0], [1.0, 0.0, 0.0]])
    matrix = share_matrix(series)
    assert matrix.tolist() == [[0.5, 0.5], [1.0, 0.0]]  # the NaN became 0; empty rows dropped


def test_wald_test_is_calibrated_and_sees_a_share_shift() -> None:
    rng = np.random.default_rng(9)
    alpha = [2.0, 1.0, 1.0]
    nulls = [
        wald_test(ShareStats.from_matrix(rng.dirichlet(alpha, 2000)), rng.dirichlet(alpha, 500))[0]
        for _ in range(200)
    ]
    assert 0.01 < np.mean(np.array(nulls) < 0.05) < 0.1  # ~5% false rejections at 0.05
    ref = ShareStats.from_matrix(rng.dirichlet(alpha, 2000))
    p, d = wald_test(ref, rng.dirichlet([2.0, 1.3, 1.0], 1000))
    assert p < 1e-6 and d > 0.1
