"""``gbdt_rerank``: a learned, non-sequential baseline over per-(user, category) features.

Candidates for a user at a cutoff are the user's history categories plus the
``n_popular`` most popular ones. Each (user, candidate) row gets counts per behaviour,
recency of the last event, two decayed scores, the category's popularity, the
user's activity, and how often the user's last categories were followed by the candidate
in everyone's history (category-to-category transition counts). A scikit-learn
``HistGradientBoostingClassifier`` learns "touched in the horizon" on earlier cutoffs and
re-ranks the candidates at the evaluated one; other categories follow by popularity.

No leakage: training cutoffs sit at ``cutoff - horizon - i * step``, so every training
label window ends at or before the evaluated cutoff (:func:`training_cutoffs` checks it),
and every feature is computed from events strictly before its own cutoff.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from core.arrays import SequenceArrays
from core.vocab import Vocabulary
from evaluation.baselines import (
    _utc,
    count_popularity,
    persist_trajectory,
    score_activity,
    select_history,
)

NAME = "gbdt_rerank"
LAST_CATEGORIES = 3  # the user's most recent distinct categories used for transitions


def training_cutoffs(
    cutoff: pd.Timestamp, horizon: pd.Timedelta, n: int = 3, step: pd.Timedelta | None = None
) -> list[pd.Timestamp]:
    """Earlier cutoffs whose label windows end at or before ``cutoff``, latest first.

    Raises:
        ValueError: if a window would overlap the evaluated cutoff (``step`` <= 0).
    """
    step = horizon / 3 if step is None else step
    if step <= pd.Timedelta(0):
        raise ValueError(f"training cutoff step must be positive, got {step}")
    out = [cutoff - horizon - i * step for i in range(n)]
    assert all(t + horizon <= cutoff for t in out)
    return out


def _transitions(past: pd.DataFrame) -> pd.DataFrame:
    """Share of each category-to-category change (``prev`` -> ``category_id``) in ``past``.

    On integer codes (users in time order, stable on ties; categories coded in sorted order,
    so rows come out sorted by ``prev`` then ``c``), not a frame of id strings.
    """
    users = pd.factorize(past["user_id"])[0]
    cats, names = pd.factorize(past["category_id"], sort=True)
    # datetime64 values, not tz-aware Timestamp objects: one object per event, ~14x slower
    order = np.lexsort((past["timestamp"].to_numpy("datetime64[ns]"), users))
    users, cats = users[order], cats[order]
    same = users[1:] == users[:-1]
    prev, cur = cats[:-1][same], cats[1:][same]
    moved = prev != cur
    pairs, n = np.unique(prev[moved] * len(names) + cur[moved], return_counts=True)
    labels = np.asarray(names.astype(str), dtype=object)
    counts = pd.DataFrame(
        {"prev": labels[pairs // len(names)], "c": labels[pairs % len(names)], "n": n}
    )
    counts["share"] = counts["n"] / counts.groupby("prev")["n"].transform("sum")
    return counts[["prev", "c", "share"]]


def candidate_features(
    past: pd.DataFrame,
    cut: pd.Timestamp,
    users: pd.Index,
    n_popular: int = 30,
    pop_window: str = "3D",
) -> pd.DataFrame:
    """One row per (user, candidate) with the features of the module docstring.

    Args:
        past: events strictly before ``cut`` (all users: popularity and transitions).
        cut: the cutoff.
        users: user ids (str) to build candidates for.
        n_popular: popular categories added to every user's candidates.
        pop_window: popularity window before ``cut``.
    """
    mine = past.loc[past["user_id"].astype(str).isin(users)]
    beh = mine["behavior"].astype(str).to_numpy()
    age = (cut - mine["timestamp"]).dt.total_seconds().to_numpy() / 86400.0
    ev = pd.DataFrame(
        {
            "u": mine["user_id"].astype(str).to_numpy(),
            "c": mine["category_id"].astype(str).to_numpy(),
            "age": age,
            "d1": 0.5**age,
            "d14": 0.5 ** (age / 14.0),
            **{f"n_{b}": beh == b for b in ("view", "fav", "cart", "buy")},
        }
    )
    own = ev.groupby(["u", "c"]).agg(
        n=("age", "size"),
        last_age=("age", "min"),
        d1=("d1", "sum"),
        d14=("d14", "sum"),
        n_view=("n_view", "sum"),
        n_fav=("n_fav", "sum"),
        n_cart=("n_cart", "sum"),
        n_buy=("n_buy", "sum"),
    )
    pop = count_popularity(past, cut, pd.Timedelta(pop_window))
    top = pop.index[:n_popular]
    index = own.index.union(pd.MultiIndex.from_product([users, top], names=["u", "c"]))
    rows = own.reindex(index).fillna(0.0).reset_index()
    rows["own"] = rows["n"] > 0
    rows.loc[~rows["own"], "last_age"] = 1e4
    rows["pop"] = rows["c"].map(pop).fillna(0.0).to_numpy(float)
    rank = pd.Series(np.arange(len(pop), dtype=float), index=pop.index)
    rows["pop_rank"] = rows["c"].map(rank).fillna(float(len(pop))).to_numpy(float)
    user = ev.groupby("u").agg(u_n=("age", "size"), u_last=("age", "min"), u_cats=("c", "nunique"))
    rows = rows.join(user, on="u")
    rows["share"] = rows["n"] / rows["u_n"]
    last = ev.sort_values("age", kind="stable").drop_duplicates(["u", "c"])
    last = last.assign(pos=last.groupby("u").cumcount()).query(f"pos < {LAST_CATEGORIES}")
    rows["is_last"] = (
        rows.merge(last.loc[last.pos == 0, ["u", "c"]], how="left", indicator=True)["_merge"]
        .eq("both")
        .to_numpy()
    )
    trans = (
        last[["u", "c", "pos"]].rename(columns={"c": "prev"}).merge(_transitions(past), on="prev")
    )
    trans = trans.assign(w=trans["share"] / (1.0 + trans["pos"]))
    moved = trans.groupby(["u", "c"])["w"].sum()
    rows["trans"] = moved.reindex(pd.MultiIndex.from_frame(rows[["u", "c"]])).fillna(0.0).to_numpy()
    return rows


FEATURES: tuple[str, ...] = (
    "n",
    "last_age",
    "d1",
    "d14",
    "n_view",
    "n_fav",
    "n_cart",
    "n_buy",
    "own",
    "pop",
    "pop_rank",
    "u_n",
    "u_last",
    "u_cats",
    "share",
    "is_last",
    "trans",
)


def _labelled(
    events: pd.DataFrame, cut: pd.Timestamp, horizon: pd.Timedelta, n_popular: int, pop_window: str
) -> pd.DataFrame:
    """Candidate rows at a training cutoff, ``y`` = touched in ``[cut, cut + horizon)``."""
    past = select_history(events, cut)
    users = pd.Index(np.sort(past["user_id"].astype(str).unique()))
    if len(users) == 0:
        return pd.DataFrame()
    rows = candidate_features(past, cut, users, n_popular, pop_window)
    ts = events["timestamp"]
    future = events.loc[(ts >= cut) & (ts < cut + horizon)]
    touched = pd.MultiIndex.from_arrays(
        [future["user_id"].astype(str), future["category_id"].astype(str)]
    ).unique()
    rows["y"] = pd.MultiIndex.from_frame(rows[["u", "c"]]).isin(touched)
    return rows


def gbdt_predictions(
    events: pd.DataFrame,
    arrays: SequenceArrays,
    vocab: Vocabulary,
    horizon: str | pd.Timedelta,
    *,
    n_popular: int = 30,
    pop_window: str = "3D",
    n_train_cutoffs: int = 3,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """``gbdt_rerank`` predictions on ``arrays`` (one model per evaluated cutoff).

    Returns:
        ``{"next_cats": (n, V), "buy", "churn", "trajectory"}``; purchase and churn are the
        heuristic scores of :func:`evaluation.baselines.score_activity`, the trajectory the
        persistence forecast.
    """
    span = pd.Timedelta(horizon)
    n, v = len(arrays), vocab.size
    future = 1 if arrays.trajectory is None else arrays.trajectory.shape[1]
    out = {
        "next_cats": np.zeros((n, v), dtype=np.float32),
        "buy": np.zeros(n),
        "churn": np.zeros(n),
        "trajectory": persist_trajectory(arrays, future),
    }
    cutoffs = pd.to_datetime(arrays.cutoff)
    for cutoff in np.unique(cutoffs):
        cut = _utc(cutoff)
        rows = np.flatnonzero(cutoffs == cutoff)
        users = pd.Index(np.asarray(arrays.user_id)[rows].astype(str))
        past = select_history(events, cut)
        out["buy"][rows], out["churn"][rows] = score_activity(past, cut, users, span)
        pop = count_popularity(past, cut, pd.Timedelta(pop_window))
        fill = vocab.encode(pop.index.to_numpy())
        keep = fill >= 2
        base = np.zeros(v, dtype=np.float32)
        base[fill[keep]] = np.linspace(1.0, 0.0, keep.sum() + 1, dtype=np.float32)[:-1]
        out["next_cats"][rows] = base
        # Only each training cutoff's feature matrix and labels are kept (not its candidate
        # frame with user and category strings): memory follows the rows, not 2-3 copies.
        xs, ys = [], []
        for t in training_cutoffs(cut, span, n_train_cutoffs):
            frame = _labelled(events, t, span, n_popular, pop_window)
            if len(frame):
                xs.append(frame[list(FEATURES)].to_numpy(float))
                ys.append(frame["y"].to_numpy())
            del frame
        y = np.concatenate(ys) if ys else np.zeros(0, dtype=bool)
        if len(np.unique(y)) < 2:
            continue  # nothing to learn from: popularity order stands
        x = np.concatenate(xs)
        del xs
        model = HistGradientBoostingClassifier(
            max_iter=150,
            learning_rate=0.05,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=seed,
        )
        cand = candidate_features(past, cut, users, n_popular, pop_window)
        # One OpenMP thread: on a shared, busy machine more threads run 10-20x slower.
        with threadpool_limits(1):
            model.fit(x, y)
            del x
            prob = model.predict_proba(cand[list(FEATURES)].to_numpy(float))[:, 1]
        cols = vocab.encode(cand["c"].to_numpy())
        r = users.get_indexer(cand["u"])
        ok = cols >= 2
        out["next_cats"][rows[r[ok]], cols[ok]] = 1.0 + prob[ok].astype(np.float32)
    return out
