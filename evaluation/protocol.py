"""The README protocol as model-space samples: every history user, a complete vocabulary.

:func:`protocol_arrays` turns "users with an event in ``[start, cutoff)``, labels from
``[cutoff, cutoff + horizon)``" into :class:`core.arrays.SequenceArrays` whose vocabulary
holds every category of the history and the horizon, so nothing is lost to OOV and any
predictor written for model samples (tuned heuristics, ``gbdt_rerank``) can be scored on
exactly the README's users. Input features are empty placeholders (one padded event):
these samples are for predictors that read the raw events, not for a Keras model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.arrays import SequenceArrays
from core.vocab import Vocabulary
from evaluation.baselines import _utc, select_history


def protocol_arrays(
    events: pd.DataFrame,
    cutoff: str | pd.Timestamp,
    horizon: str | pd.Timedelta,
    *,
    history_start: str | pd.Timestamp | None = None,
    history_cats: bool = True,
    vocab: Vocabulary | None = None,
) -> tuple[SequenceArrays, Vocabulary]:
    """Labelled samples and a complete vocabulary for the protocol at ``cutoff``.

    Args:
        events: canonical events.
        cutoff: the cutoff (naive values are UTC).
        horizon: label window.
        history_start: ignore events before this when choosing users.
        history_cats: put each user's history categories into ``cat`` (for the
            repeat/explore split); otherwise ``cat`` is all padding.
        vocab: encode with this vocabulary (e.g. validation samples in the test one)
            instead of a complete one built here.

    Raises:
        ValueError: if no user has history before the cutoff.
    """
    cut, span = _utc(cutoff), pd.Timedelta(horizon)
    start = None if history_start is None else _utc(history_start)
    history = select_history(events, cut, start)
    users = np.sort(history["user_id"].astype(str).unique())
    if len(users) == 0:
        raise ValueError(f"no events before the cutoff {cut}")
    ts = events["timestamp"]
    future = events.loc[(ts >= cut) & (ts < cut + span)]
    future = future.loc[future["user_id"].astype(str).isin(users)]
    cats = pd.concat([history["category_id"], future["category_id"]]).astype(str).unique()
    vocab = vocab or Vocabulary(sorted(cats), 30)
    index, n = pd.Index(users), len(users)
    truth = np.zeros((n, vocab.size), np.float32)
    truth[
        index.get_indexer(future["user_id"].astype(str)),
        vocab.encode(future["category_id"].astype(str)),
    ] = 1
    buyers = future.loc[future["behavior"].astype(str) == "buy", "user_id"].astype(str)
    pairs = history[["user_id", "category_id"]].astype(str).drop_duplicates()
    width = max(1, int(pairs.groupby("user_id").size().max())) if history_cats else 1
    cat = np.zeros((n, width), np.int32)
    if history_cats:
        rows = index.get_indexer(pairs["user_id"])
        pos = pairs.groupby("user_id").cumcount().to_numpy()
        cat[rows, width - 1 - pos] = vocab.encode(pairs["category_id"])
    arrays = SequenceArrays(
        user_id=users.astype(object),
        cutoff=np.full(n, cut.tz_localize(None).to_datetime64()),
        cat=cat,
        beh=np.zeros_like(cat),
        hour=np.zeros_like(cat),
        gap=np.zeros(cat.shape, np.float32),
        age=np.zeros(cat.shape, np.float32),
        period_dist=np.zeros((n, 1, 2), np.float32),
        period_counts=np.zeros((n, 1, 4), np.float32),
        next_cats=truth,
        buy=index.isin(buyers).astype(float),
        churn=(truth.sum(axis=1) == 0).astype(float),
        trajectory=np.zeros((n, 1, 2), np.float32),
    )
    return arrays, vocab
