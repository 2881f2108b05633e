"""Per-sample text inputs: token ids of the user's latest texts strictly before the cutoff.

The one code path for training arrays, batch scoring and single serving requests. Per-event
token ids (``(E, L)`` int32, 0 = padding, 1 = out-of-vocabulary) come from the bundle's text
vectoriser (:mod:`modelkit.text`); this module only chooses which events a sample may read.

No leakage: a sample at ``cutoff`` reads events with ``time < cutoff`` only, so the texts of
its label window (a review is written after the purchase it describes) never reach its
inputs. On a day-resolution log, a cutoff at a day boundary takes a user's same-day burst as
one step: all of the day's texts are history or none is.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from core.periods import to_ns


def history_tokens(
    user_ids: np.ndarray,
    time_ns: np.ndarray,
    tokens: np.ndarray,
    sample_users: np.ndarray,
    sample_cutoffs: np.ndarray,
    *,
    max_texts: int,
    length: int,
    history_ns: int | None = None,
) -> np.ndarray:
    """Return ``(n, length)`` int32: the tokens of each sample's latest texts, newest first.

    Args:
        user_ids: ``(E,)`` user of each event.
        time_ns: ``(E,)`` int64 event time, ns since the epoch (UTC).
        tokens: ``(E, L)`` int32 token ids of each event's text (all 0 when it has none).
        sample_users: ``(n,)`` user of each sample.
        sample_cutoffs: ``(n,)`` cutoff of each sample (datetime64 or int ns).
        max_texts: read at most this many of the user's latest events with text.
        length: tokens per sample; the rest is cut (oldest text last, so it is cut first).
        history_ns: only events within this long before the cutoff (``None``: all).

    Returns:
        Token ids, 0-padded on the right; all 0 for a sample without earlier text.
    """
    n = len(sample_users)
    out = np.zeros((n, length), np.int32)
    tokens = np.asarray(tokens)
    has_text = (tokens > 0).any(axis=1) if tokens.size else np.zeros(len(user_ids), bool)
    for i, rows in _history_rows(
        user_ids, time_ns, has_text, sample_users, sample_cutoffs, max_texts, history_ns
    ):
        flat = tokens[rows].reshape(-1)
        flat = flat[flat > 0][:length]
        out[i, : flat.size] = flat
    return out


def history_means(
    user_ids: np.ndarray,
    time_ns: np.ndarray,
    values: np.ndarray,
    has_text: np.ndarray,
    sample_users: np.ndarray,
    sample_cutoffs: np.ndarray,
    *,
    max_texts: int,
    history_ns: int | None = None,
) -> np.ndarray:
    """``(n, k)`` means of per-event ``values`` ``(E, k)`` over the texts a sample reads.

    The same events as :func:`history_tokens` (``has_text`` marks events with text); NaN for
    a sample without earlier text. Monitoring's text summaries come from here.
    """
    values = np.asarray(values, dtype=np.float64)
    out = np.full((len(sample_users), values.shape[1]), np.nan)
    for i, rows in _history_rows(
        user_ids, time_ns, has_text, sample_users, sample_cutoffs, max_texts, history_ns
    ):
        out[i] = values[rows].mean(axis=0)
    return out


def _history_rows(
    user_ids: np.ndarray,
    time_ns: np.ndarray,
    has_text: np.ndarray,
    sample_users: np.ndarray,
    sample_cutoffs: np.ndarray,
    max_texts: int,
    history_ns: int | None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Per sample with earlier text: ``(sample, event rows in input order, newest first)``."""
    if len(sample_users) == 0 or len(user_ids) == 0:
        return
    users = np.asarray(user_ids).astype(str)
    time = np.asarray(time_ns, dtype=np.int64)
    order = np.lexsort((time, users))  # stable: ties keep input order
    users, time, has_text = users[order], time[order], np.asarray(has_text)[order]
    unique, starts = np.unique(users, return_index=True)
    stops = np.append(starts[1:], len(users))
    wanted = np.asarray(sample_users).astype(str)
    slot = np.minimum(np.searchsorted(unique, wanted), len(unique) - 1)
    known = unique[slot] == wanted
    cutoffs = np.asarray(sample_cutoffs)
    if cutoffs.dtype.kind == "M":
        cutoffs = cutoffs.astype("datetime64[ns]").view(np.int64)
    else:
        cutoffs = np.array([to_ns(c) for c in sample_cutoffs], dtype=np.int64)
    for i in np.flatnonzero(known):
        lo, hi = starts[slot[i]], stops[slot[i]]
        end = lo + np.searchsorted(time[lo:hi], cutoffs[i], side="left")
        if history_ns is not None:
            lo = lo + np.searchsorted(time[lo:end], cutoffs[i] - history_ns, side="left")
        rows = np.flatnonzero(has_text[lo:end])[::-1][:max_texts] + lo
        if rows.size:
            yield int(i), order[rows]
