"""Raw events to numpy: the sorted, integer-coded form every feature is computed from.

Two entry points give identical results: :func:`encode_events` for data frames (pandas
``factorize`` on large logs) and :func:`encode_arrays` for the few thousand events of one
serving request, where pandas' fixed overhead would dominate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from core.schema import BEHAVIORS, behavior_index
from core.vocab import DICT_LOOKUP_MAX, OOV_INDEX, Vocabulary

#: Up to this many events, encode from plain arrays (pandas overhead dominates).
SMALL_EVENTS = 5_000


@dataclass
class EncodedEvents:
    """Events as numpy arrays sorted by (user, time), categories encoded with one vocabulary."""

    user_ids: np.ndarray  # (U,) object str, ascending
    starts: np.ndarray  # (U,) int64 offset of each user's first event
    time: np.ndarray  # (E,) int64 ns since epoch, UTC, ascending within a user
    cat: np.ndarray  # (E,) int32 vocabulary index
    beh: np.ndarray  # (E,) int8 behaviour index
    vocab_hash: str

    def __len__(self) -> int:
        return int(self.time.shape[0])

    def stops(self) -> np.ndarray:
        """(U,) offset one past each user's last event."""
        return np.append(self.starts[1:], len(self)).astype(np.int64)


def _times_ns(column: pd.Series) -> np.ndarray:
    if not isinstance(column.dtype, pd.DatetimeTZDtype):
        column = pd.to_datetime(column, utc=True)
    if column.isna().any():
        raise ValueError(f"column 'timestamp' has {column.isna().sum()} missing values")
    # asi8 of a tz-aware array counts from the UTC epoch in the array's own unit.
    scale = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[column.dt.unit]
    return column.array.asi8 * scale


def _check_missing(name: str, values: np.ndarray) -> None:
    """Raise if ``values`` holds missing entries (or, for factorize codes, ``-1``)."""
    missing = int((values < 0).sum()) if values.dtype.kind == "i" else int(pd.isna(values).sum())
    if missing:
        raise ValueError(f"column {name!r} has {missing} missing values")


def _behavior_lut(uniques: Sequence[object]) -> np.ndarray:
    return np.array([behavior_index(str(b)) for b in uniques], dtype=np.int8)


@cache
def _behavior_table() -> pd.Index:
    return pd.Index(BEHAVIORS, dtype=object)


@cache
def _behavior_codes() -> dict[str, int]:
    return {b: i for i, b in enumerate(BEHAVIORS)}


def encode_behaviors(values: Sequence[str] | np.ndarray) -> np.ndarray:
    """Return int8 behaviour indices of canonical behaviour names (0 is padding).

    Raises:
        ValueError: on an unknown behaviour, naming it.
    """
    return _encode_behaviors(np.asarray(values, dtype=object))


def _encode_behaviors(values: np.ndarray) -> np.ndarray:
    if len(values) <= DICT_LOOKUP_MAX:  # a dict beats pandas' index on a request's events
        get = _behavior_codes().get
        found = np.fromiter((get(v, -1) for v in values), np.int64, len(values))
    else:
        found = _behavior_table().get_indexer(values)
    if (found < 0).any():
        behavior_index(str(values[np.argmax(found < 0)]))  # raises, naming the value
    return (found + 1).astype(np.int8)


def encode_events(events: pd.DataFrame, vocab: Vocabulary) -> EncodedEvents:
    """Encode canonical events into sorted numpy arrays (unknown categories -> OOV).

    Raises:
        KeyError: on a missing column.
        ValueError: on missing user ids, behaviours or timestamps, or unknown behaviours.
    """
    time = _times_ns(events["timestamp"])
    if len(events) <= SMALL_EVENTS:
        return encode_arrays(
            events["user_id"].to_numpy(object),
            time,
            events["category_id"].to_numpy(object),
            events["behavior"].to_numpy(object),
            vocab,
        )
    user_codes, user_ids = pd.factorize(events["user_id"], sort=True)
    _check_missing("user_id", user_codes)
    cat_codes, cat_uniques = pd.factorize(events["category_id"])
    # Code -1 (missing category) picks the trailing OOV entry.
    cat = np.append(vocab.encode(np.asarray(cat_uniques, dtype=object)), OOV_INDEX)[cat_codes]
    beh_codes, beh_uniques = pd.factorize(events["behavior"])
    _check_missing("behavior", beh_codes)
    beh = _behavior_lut(beh_uniques)[beh_codes]
    return _sort_events(user_codes, np.asarray(user_ids, dtype=object), time, cat, beh, vocab)


def encode_arrays(
    user_id: np.ndarray,
    time_ns: np.ndarray,
    category_id: np.ndarray,
    behavior: np.ndarray,
    vocab: Vocabulary,
) -> EncodedEvents:
    """Encode raw columns given as arrays: the low-overhead path for one serving request.

    Args:
        user_id: (E,) user ids.
        time_ns: (E,) int64 ns since the epoch, UTC.
        category_id: (E,) category ids (missing or unknown -> OOV).
        behavior: (E,) canonical behaviour names.
        vocab: the fitted vocabulary.
    """
    user_id = np.asarray(user_id, dtype=object)
    try:  # one user (a serving request) skips the sort; NA in the column raises TypeError
        one_user = user_id.size > 0 and isinstance(user_id[0], str)
        one_user = one_user and bool((user_id == user_id[0]).all())
    except TypeError:
        one_user = False
    if one_user:
        user_codes, user_ids = np.zeros(user_id.size, np.int64), user_id[:1]
    else:
        _check_missing("user_id", user_id)
        user_ids, user_codes = np.unique(user_id.astype(str), return_inverse=True)
    cat = vocab.encode(category_id)
    beh = _encode_behaviors(np.asarray(behavior, dtype=object))
    time = np.asarray(time_ns, dtype=np.int64)
    return _sort_events(user_codes, user_ids.astype(object), time, cat, beh, vocab)


def encode_codes(
    user_codes: np.ndarray,
    user_ids: np.ndarray,
    time_ns: np.ndarray,
    cat: np.ndarray,
    beh: np.ndarray,
    vocab: Vocabulary,
) -> EncodedEvents:
    """Sort already-coded events into :class:`EncodedEvents` (the out-of-core entry point).

    Args:
        user_codes: (E,) int codes into ``user_ids``, which must be ascending.
        user_ids: (U,) user ids.
        time_ns: (E,) int64 ns since the epoch, UTC.
        cat: (E,) vocabulary indices.
        beh: (E,) behaviour indices.
        vocab: the vocabulary ``cat`` was encoded with.

    Events of a user keep their (time, input order) order, exactly as :func:`encode_events`.
    """
    return _sort_events(user_codes, user_ids, time_ns, cat, beh, vocab)


def _sort_events(
    user_codes: np.ndarray,
    user_ids: np.ndarray,
    time: np.ndarray,
    cat: np.ndarray,
    beh: np.ndarray,
    vocab: Vocabulary,
) -> EncodedEvents:
    # Input sorted by time (the usual case) needs only a stable sort by user.
    if time.size < 2 or bool((time[1:] >= time[:-1]).all()):
        order = np.argsort(user_codes, kind="stable")
    else:
        order = np.lexsort((time, user_codes))
    users = user_codes[order]
    first = np.r_[True, users[1:] != users[:-1]] if users.size else np.zeros(0, bool)
    return EncodedEvents(
        user_ids=np.asarray(user_ids, dtype=object)[users[first]],
        starts=np.flatnonzero(first).astype(np.int64),
        time=time[order],
        cat=cat[order].astype(np.int32),
        beh=beh[order].astype(np.int8),
        vocab_hash=vocab.hash,
    )
