"""The drift decision's per-column two-sample tests and its multiple-testing rule.

Each test takes the reference side as binned statistics (:mod:`monitoring.stats`) and the
window's values, and returns ``(p_value, effect)``:

- numeric columns: Kolmogorov-Smirnov on the reference's ECDF grid; effect D;
- categorical columns: chi-square of homogeneity on counts; effect Cohen's w;
- category-bucket shares (one share vector per user): a Wald (two-sample Hotelling) test of
  the mean share vectors with both samples' covariances; effect the Mahalanobis distance.

:func:`run_tests` applies them to every monitored column of a window; :func:`benjamini_hochberg`
then keeps the columns whose p-values survive the FDR level.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as st

from core.config import MonitoringConfig
from monitoring.stats import (
    CountStats,
    NumericStats,
    ReferenceStats,
    ShareStats,
    category_values,
    numeric_values,
    share_matrix,
)

# Chi-square wants an expected count of about 5 per cell: rarer categories are pooled.
MIN_EXPECTED = 5.0
MAX_CATEGORIES = 50


def ks_test(ref: NumericStats, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov on the reference's ECDF grid.

    Args:
        ref: the reference column's binned ECDF.
        current: the window's finite values, sorted.

    Returns:
        ``(p_value, D)``: D is the largest ECDF gap at the grid points (a lower bound of the
        exact statistic, tight at 256 quantiles; exact for columns with few distinct values),
        the p-value that of ``scipy.stats.ks_2samp``'s asymptotic mode.
    """
    edges = np.asarray(ref.edges)
    f_ref = np.asarray(ref.cum, dtype=np.float64) / ref.n
    f_cur = np.searchsorted(current, edges, side="right") / current.size
    # Below the first reference value the reference ECDF is 0.
    below = np.searchsorted(current, edges[0], side="left") / current.size
    d = float(max(np.abs(f_ref - f_cur).max(), below))
    en = ref.n * current.size / (ref.n + current.size)
    return float(st.kstwo.sf(d, max(round(en), 1))), d


def chi2_test(ref: CountStats, current: dict[str, float], n_current: int) -> tuple[float, float]:
    """Chi-square test of homogeneity of reference vs current counts.

    Reference categories too rare for an expected count of :data:`MIN_EXPECTED` in the
    smaller sample, categories beyond :data:`MAX_CATEGORIES` and those the reference never
    saw are pooled into one cell.

    Returns:
        ``(p_value, w)``: w is Cohen's effect size, bias-corrected:
        ``sqrt(max(chi2 - dof, 0) / n_eff)`` with ``n_eff = n_ref n_cur / (n_ref + n_cur)``
        (``chi2 ~ n_eff w^2`` between two samples; ``chi2 - dof`` removes the null's mean, so
        a small window's sampling noise does not read as an effect).
    """
    n_ref, n_cur = ref.n, n_current
    small = min(n_ref, n_cur)
    ref_total = sum(ref.counts.values()) or 1.0
    ranked = sorted(ref.counts.items(), key=lambda kv: -kv[1])[:MAX_CATEGORIES]
    keep = [k for k, v in ranked if v / ref_total * small >= MIN_EXPECTED]
    r = np.array([ref.counts[k] for k in keep] + [ref_total - sum(ref.counts[k] for k in keep)])
    cur_total = sum(current.values())
    c_kept = [current.get(k, 0.0) for k in keep]
    c = np.array(c_kept + [cur_total - sum(c_kept)])
    table = np.vstack([r, c])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or cur_total <= 0:
        return 1.0, 0.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    chi2 = float(((table - expected) ** 2 / expected).sum())
    dof = table.shape[1] - 1
    n_eff = n_ref * n_cur / (n_ref + n_cur)
    return float(st.chi2.sf(chi2, dof)), float(np.sqrt(max(chi2 - dof, 0.0) / n_eff))


def wald_test(ref: ShareStats, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Wald test of the mean bucket-share vectors (Hotelling's T^2, large samples).

    Shares sum to 1, so the last bucket ("other") is dropped, and buckets that never vary in
    either sample carry no information. Per-user share vectors are far less variable than
    single category draws, so this is much more powerful than a chi-square on summed shares
    while staying calibrated (the covariance is measured, not assumed multinomial).

    Args:
        ref: the reference's share statistics.
        current: the window's (n users, buckets) share matrix.

    Returns:
        ``(p_value, d)``: ``d = sqrt(max(T2 - dof, 0) / n_eff)`` is the Mahalanobis distance
        between the mean share vectors in per-user standard deviations, bias-corrected like
        Cohen's w in :func:`chi2_test`.
    """
    n_ref, n_cur = ref.n, len(current)
    if n_ref < 2 or n_cur < 2 or current.shape[1] != len(ref.total):
        return 1.0, 0.0
    ref_mean, ref_cov = ref.moments()
    cur_mean, cur_cov = current.mean(axis=0), np.cov(current, rowvar=False)
    cov = (ref_cov / n_ref + cur_cov / n_cur)[:-1, :-1]
    diff = (cur_mean - ref_mean)[:-1]
    keep = np.diag(cov) > 1e-12
    if not keep.any():
        return 1.0, 0.0
    cov, diff = cov[np.ix_(keep, keep)], diff[keep]
    t2 = float(diff @ np.linalg.pinv(cov, hermitian=True) @ diff)
    dof = int(keep.sum())
    n_eff = n_ref * n_cur / (n_ref + n_cur)
    return float(st.chi2.sf(t2, dof)), float(np.sqrt(max(t2 - dof, 0.0) / n_eff))


def benjamini_hochberg(p_values: list[float], fdr: float) -> tuple[list[bool], list[float]]:
    """The Benjamini-Hochberg step-up procedure.

    Args:
        p_values: one p-value per hypothesis.
        fdr: the false-discovery rate to control.

    Returns:
        ``(rejected, q_values)`` in input order: hypothesis ``i`` is rejected when
        ``p_(i) <= i * fdr / m`` for some rank ``i`` at or above its own; ``q`` is the
        adjusted p-value (rejected exactly when ``q <= fdr``).
    """
    m = len(p_values)
    if m == 0:
        return [], []
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum.accumulate(scaled[::-1])[::-1].clip(max=1.0)
    q = np.empty(m)
    q[order] = q_sorted
    return (q <= fdr).tolist(), q.tolist()


def run_tests(
    stats: ReferenceStats,
    current: pd.DataFrame,
    columns: tuple[list[str], list[str], list[str]],
    config: MonitoringConfig,
) -> list[tuple[str, str, float, float, float]]:
    """``(column, method, p_value, effect, floor)`` per testable column."""
    numeric, categorical, buckets = columns
    out: list[tuple[str, str, float, float, float]] = []
    for col in numeric:
        values = numeric_values(current[col])
        if col in stats.numeric and values.size:
            out.append((col, "ks", *ks_test(stats.numeric[col], values), config.min_ks_effect))
    for col in categorical:
        if col in stats.categorical:
            counts = category_values(current[col]).value_counts()
            found = {str(k): float(v) for k, v in counts.items()}
            p, w = chi2_test(stats.categorical[col], found, len(current))
            out.append((col, "chisquare", p, w, config.min_chi2_effect))
    for col in buckets:
        matrix = share_matrix(current[col])
        if col in stats.buckets and len(matrix) >= 2:
            p, d = wald_test(stats.buckets[col], matrix)
            out.append((col, "wald", p, d, config.min_share_effect))
    return out
