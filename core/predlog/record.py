"""The prediction-log record: its fields, its JSON line and the columns monitoring reads.

Serving derives a record's prediction fields from model outputs with
:func:`rank_categories` and the training reference profile uses
:func:`prediction_columns`, so both name and compute the monitored columns one way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np

from core.profile import PROFILE_COLUMNS
from core.textstats import TEXT_FEATURES

#: The monitored prediction columns (drift checks and the reference profile).
PREDICTION_NUMERIC: tuple[str, ...] = ("p_buy", "p_churn")
PREDICTION_CATEGORICAL: tuple[str, ...] = ("top_pred",)
PREDICTION_COLUMNS: tuple[str, ...] = PREDICTION_NUMERIC + PREDICTION_CATEGORICAL
#: A record ranks at least this many categories (or all), whatever ``top_k`` was served, so
#: realised recall@K and NDCG@K are exact for every K up to it.
RANKED_CATEGORIES = 10
#: Category indices below this (padding, OOV) are never ranked (as in ``evaluation``).
FIRST_RANKED = 2


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One answered prediction, as one JSON line of the log (CONTRACT.md, "Prediction log").

    ``profile`` holds the :data:`core.profile.PROFILE_COLUMNS` values; on the JSON line they
    are top-level keys between ``cutoff`` and ``p_buy``.
    """

    logged_at: datetime  # UTC, when the record was built (just before the write)
    request_id: str  # uuid4 hex; also in the HTTP response
    user_hash: str | None  # core.hashing.hash_user(user_id); None for anonymous calls
    model_name: str
    model_version: str
    cutoff: datetime  # UTC, the effective cutoff the features were built at
    profile: Mapping[str, float | str | None]  # behaviour summary of the request's events
    p_buy: float | None
    p_churn: float | None
    top_pred: str | None  # the best category (first of top_categories)
    top_score: float | None  # its next_cats score
    top_categories: tuple[str, ...]  # >= RANKED_CATEGORIES category ids, best first
    trajectory: tuple[dict[str, float], ...]  # per future period: every bucket -> share
    shadow: bool = False  # True for a challenger's shadow prediction (not served)
    # core.textstats.TEXT_FEATURES of the request's texts; only models with a text channel
    # log them (after ``shadow``); older lines and text-free models have none.
    text_profile: Mapping[str, float | None] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the line (datetimes as ISO strings, profile flattened)."""
        line: dict[str, Any] = {
            "logged_at": self.logged_at.isoformat(),
            "request_id": self.request_id,
            "user_hash": self.user_hash,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "cutoff": self.cutoff.isoformat(),
        }
        line.update(self.profile)
        line.update(
            p_buy=self.p_buy,
            p_churn=self.p_churn,
            top_pred=self.top_pred,
            top_score=self.top_score,
            top_categories=list(self.top_categories),
            trajectory=list(self.trajectory),
            shadow=self.shadow,
        )
        if self.text_profile is not None:
            line.update(self.text_profile)
        return line

    def to_json(self) -> str:
        """One JSON line, without the newline (non-finite shares are written as ``NaN``).

        Encoded by msgspec (about 15x faster than ``json``: serving writes a line per
        prediction); a line holding a non-finite number, or a value msgspec does not
        take, goes through ``json`` (msgspec would write ``NaN`` as ``null``).
        """
        line = self.to_dict()
        if math.isfinite(_number_sum(line.values())):
            try:
                return _JSON.encode(line).decode()
            except (TypeError, msgspec.EncodeError):
                pass  # json names what it cannot serialise
        return json.dumps(line, allow_nan=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PredictionRecord:
        """Rebuild a record from :meth:`to_dict` output; unknown keys are ignored.

        Raises:
            ValueError: naming the missing keys.
        """
        missing = [k for k in RECORD_COLUMNS if k not in data and k != "shadow"]
        if missing:
            raise ValueError(f"prediction-log record lacks {missing}")
        return cls(
            logged_at=_parse_time(data["logged_at"]),
            request_id=str(data["request_id"]),
            user_hash=data["user_hash"],
            model_name=str(data["model_name"]),
            model_version=str(data["model_version"]),
            cutoff=_parse_time(data["cutoff"]),
            profile={c: data[c] for c in PROFILE_COLUMNS},
            p_buy=data["p_buy"],
            p_churn=data["p_churn"],
            top_pred=data["top_pred"],
            top_score=data["top_score"],
            top_categories=tuple(data["top_categories"]),
            trajectory=tuple(data["trajectory"]),
            shadow=bool(data.get("shadow", False)),
            text_profile={c: data[c] for c in TEXT_FEATURES if c in data} or None,
        )

    @classmethod
    def from_json(cls, line: str | bytes) -> PredictionRecord:
        """Parse one line written by :meth:`to_json`.

        Raises:
            ValueError: the line is not a JSON object or lacks fields.
        """
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError(f"prediction-log line is not a JSON object: {line[:80]!r}")
        return cls.from_dict(data)


#: Keys of a JSON line, in the order they are written.
RECORD_COLUMNS: tuple[str, ...] = (
    ("logged_at", "request_id", "user_hash", "model_name", "model_version", "cutoff")
    + PROFILE_COLUMNS
    + ("p_buy", "p_churn", "top_pred", "top_score", "top_categories", "trajectory", "shadow")
)


def _parse_time(value: str) -> datetime:
    stamp = datetime.fromisoformat(value)
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def rank_categories(scores: np.ndarray, k: int) -> np.ndarray:
    """Return the ``k`` best category indices per row, best first, never 0 or 1.

    Ties go to the lower index, as in ``evaluation.metrics.top_k``; only a tie across the
    K-th place may pick a different member. NaN scores rank last.

    Args:
        scores: (n, V) ``next_cats`` scores.
        k: how many (capped at ``V - 2``).

    Returns:
        (n, min(k, V - 2)) int64 indices.
    """
    neg = -np.asarray(scores, dtype=np.float64)[:, FIRST_RANKED:]
    neg[np.isnan(neg)] = np.inf
    k = min(k, neg.shape[1])
    if k < neg.shape[1]:
        chosen = np.argpartition(neg, k - 1, axis=1)[:, :k]
    else:
        chosen = np.broadcast_to(np.arange(neg.shape[1]), neg.shape)
    order = np.lexsort((chosen, np.take_along_axis(neg, chosen, axis=1)), axis=1)
    return np.take_along_axis(chosen, order, axis=1) + FIRST_RANKED


def prediction_columns(
    outputs: Mapping[str, np.ndarray], decode: Callable[[Sequence[int]], Sequence[str]]
) -> dict[str, Any]:
    """The :data:`PREDICTION_COLUMNS` of model outputs (the reference profile adds these).

    Args:
        outputs: ``next_cats`` (n, V), ``buy`` and ``churn`` ((n,) or (n, 1)).
        decode: maps category indices to ids (``Vocabulary.decode``).
    """
    top = rank_categories(outputs["next_cats"], 1)[:, 0]
    return {
        "p_buy": np.asarray(outputs["buy"], dtype=np.float64).reshape(-1),
        "p_churn": np.asarray(outputs["churn"], dtype=np.float64).reshape(-1),
        "top_pred": list(decode(top.tolist())),
    }


_JSON = msgspec.json.Encoder()


def _number_sum(values: Iterable[Any], depth: int = 0) -> float:
    """The sum of every float in ``values`` (nested lists, tuples, dicts): finite only when
    each of them is (an overflow merely sends a line the slower way). NaN for nesting
    deeper than a record has (``json`` then reports a circular reference)."""
    if depth > 4:
        return math.nan
    total = 0.0
    for value in values:
        if isinstance(value, float):
            total += value
        elif isinstance(value, list | tuple | dict):
            items = value.values() if isinstance(value, dict) else value
            if isinstance(value, list | tuple) and value and isinstance(value[0], str):
                continue  # category names
            try:
                total += sum(items, 0.0)  # numbers only: one loop in C
            except TypeError:  # strings, None, nested containers
                total += _number_sum(items, depth + 1)
    return total


def finite(value: Any) -> Any:
    """``value`` as a plain Python scalar, with NaN and infinities as ``None`` (JSON null)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
