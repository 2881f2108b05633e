"""Events in, prediction table out: the batch and MLflow-pyfunc face of a model bundle.

The service answers one request at a time (``serving/encode.py``); batch scoring and the
registered pyfunc score whole event tables. Both go through the same feature code
(:func:`core.features.build_features` with ``with_labels=False``) and the same
:meth:`modelkit.bundle.Bundle.predict`, and write the fields ``/predict`` answers with the
same values: the ranked categories with their scores, ``p_buy``, ``p_churn`` and the top
trajectory buckets per future period.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.arrays import SequenceArrays
from core.encoding import EncodedEvents, encode_events
from core.features import build_features
from core.periods import search_ranges, to_ns
from core.predlog import rank_categories
from core.predlog.record import finite
from core.schema import REQUIRED_COLUMNS, conform
from core.vocab import OOV_INDEX
from modelkit.bundle import Bundle
from modelkit.text_features import attach_text
from modelkit.text_layers import reads_text

TRAJECTORY_TOP = 5  # buckets per future period, as the service answers
#: Columns of the prediction table, in order (``/predict``'s fields, the model flattened).
PREDICTION_TABLE_COLUMNS: tuple[str, ...] = (
    "user_id",
    "cutoff",
    "model_name",
    "model_version",
    "next_categories",
    "p_buy",
    "p_churn",
    "trajectory",
    "period",
    "events_used",
    "oov_events",
)


def empty_prediction_table() -> pd.DataFrame:
    """A prediction table with no rows and the table's dtypes."""
    frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in PREDICTION_TABLE_COLUMNS})
    frame["cutoff"] = pd.Series([], dtype="datetime64[ns, UTC]")
    for name in ("p_buy", "p_churn"):
        frame[name] = frame[name].astype("float64")
    for name in ("events_used", "oov_events"):
        frame[name] = frame[name].astype("int64")
    return frame


def oov_counts(enc: EncodedEvents, arrays: SequenceArrays) -> np.ndarray:
    """Per sample of ``arrays`` (one cutoff), events before the cutoff the vocabulary lacks.

    The service counts the unknown categories of every event a request sends; a log's
    events before the cutoff are what a request for that user would send.
    """
    if len(arrays) == 0:
        return np.zeros(0, np.int64)
    cutoff = int(arrays.cutoff[0].astype("datetime64[ns]").astype(np.int64))
    users = pd.Index(enc.user_ids).get_indexer(arrays.user_id)
    starts = enc.starts[users]
    end = search_ranges(enc.time, starts, enc.stops()[users], cutoff)
    unknown = np.concatenate([[0], np.cumsum(enc.cat == OOV_INDEX)])
    return (unknown[end] - unknown[starts]).astype(np.int64)


def _floats(values: np.ndarray) -> list[Any]:
    # NaN/inf as None, as the service's JSON writes null.
    listed = values.tolist()
    if np.isfinite(values).all():
        return listed
    if values.ndim > 1:
        return [[finite(v) for v in row] for row in listed]
    return [finite(v) for v in listed]


def prediction_table(
    bundle: Bundle,
    arrays: SequenceArrays,
    oov_events: np.ndarray,
    *,
    top_k: int,
    model_name: str,
    model_version: str | None,
) -> pd.DataFrame:
    """Score model inputs and return one prediction-table row per sample.

    Args:
        bundle: the loaded model bundle.
        arrays: model inputs with ``user_id`` and ``cutoff`` (``build_features`` output).
        oov_events: per sample, events with a category the vocabulary does not know.
        top_k: how many ranked categories each row holds (capped at the vocabulary).
        model_name: registered model name to state.
        model_version: registry version to state (``None`` when unknown).
    """
    if len(arrays) == 0:
        return empty_prediction_table()
    outputs = bundle.predict(arrays.inputs())
    scores = np.asarray(outputs["next_cats"])
    ranked = rank_categories(scores, top_k)
    width = ranked.shape[1]
    names = bundle.vocab.decode(ranked.reshape(-1))
    top_scores = _floats(np.take_along_axis(scores, ranked, axis=1))
    buckets = bundle.vocab.bucket_names(bundle.spec.n_buckets)
    trajectory = np.asarray(outputs["trajectory"])
    order = np.argsort(-trajectory, axis=-1, kind="stable")[..., :TRAJECTORY_TOP]
    shares = _floats(np.take_along_axis(trajectory, order, axis=-1))
    next_categories, periods = [], []
    for i, picked_rows in enumerate(order.tolist()):
        row_names = names[i * width : (i + 1) * width]
        next_categories.append(
            [{"category_id": str(n), "score": top_scores[i][j]} for j, n in enumerate(row_names)]
        )
        periods.append(
            [
                {
                    "period": p + 1,
                    "buckets": [
                        {"bucket": buckets[b], "share": shares[i][p][j]}
                        for j, b in enumerate(picked)
                    ],
                }
                for p, picked in enumerate(picked_rows)
            ]
        )
    n = len(arrays)
    return pd.DataFrame(
        {
            "user_id": pd.Series(arrays.user_id, dtype=object).astype(str).to_numpy(),
            "cutoff": pd.to_datetime(arrays.cutoff, utc=True),
            "model_name": [model_name] * n,
            "model_version": [model_version] * n,
            "next_categories": next_categories,
            "p_buy": np.asarray(outputs["buy"], dtype=np.float64).reshape(-1),
            "p_churn": np.asarray(outputs["churn"], dtype=np.float64).reshape(-1),
            "trajectory": periods,
            "period": [bundle.feature_config.period] * n,
            "events_used": (arrays.cat > 0).sum(axis=1).astype(np.int64),
            "oov_events": np.asarray(oov_events, dtype=np.int64),
        },
        columns=list(PREDICTION_TABLE_COLUMNS),
    )


def score_encoded(
    bundle: Bundle,
    enc: EncodedEvents,
    cutoff: pd.Timestamp,
    *,
    top_k: int,
    model_name: str,
    model_version: str | None,
    events: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Prediction table of every user of ``enc`` with an event in the history window.

    ``events``: the canonical frame ``enc`` was encoded from; needed (for its ``text``,
    ``item_text``, ``brand``, ``price``) when the bundle's model reads text.

    Raises:
        ValueError: the model reads text and ``events`` is not given.
    """
    arrays = build_features(enc, [cutoff], bundle.vocab, bundle.feature_config, with_labels=False)
    if getattr(bundle, "text", None) is not None and reads_text(bundle.model):
        if events is None:
            raise ValueError("this model reads text: score it from the events frame")
        attach_text(arrays, events, bundle.text, bundle.feature_config)
    return prediction_table(
        bundle,
        arrays,
        oov_counts(enc, arrays),
        top_k=top_k,
        model_name=model_name,
        model_version=model_version,
    )


def as_cutoff(value: Any, source: str = "cutoff") -> pd.Timestamp:
    """A cutoff as a UTC timestamp (naive means UTC).

    Raises:
        ValueError: naming ``source`` when the value is not a time.
    """
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: {value!r} is not a time ({exc})") from None
    if pd.isna(stamp):
        raise ValueError(f"{source}: missing value")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    to_ns(stamp)  # int64 nanoseconds must hold it
    return stamp


def score_events(
    bundle: Bundle,
    events: pd.DataFrame,
    cutoff: Any | None = None,
    *,
    top_k: int = 10,
    model_name: str | None = None,
    model_version: str | None = None,
) -> pd.DataFrame:
    """Score raw events: one row per (user, cutoff) with an event in the history window.

    Args:
        bundle: the loaded model bundle.
        events: canonical event columns (``user_id``, ``item_id``, ``category_id``,
            ``behavior``, ``timestamp``; optional ones ignored), and optionally a ``cutoff``
            column: each row's events are scored as of its own cutoff.
        cutoff: the cutoff for rows without a ``cutoff`` column.
        top_k: ranked categories per row.
        model_name: default: the bundle's ``model_name``.
        model_version: default: the bundle's ``version`` (set by ``bento import``), if any.

    Returns:
        The prediction table (:data:`PREDICTION_TABLE_COLUMNS`), ordered by cutoff, then user.

    Raises:
        ValueError: no cutoff, a missing event column or a bad value (the message names it).
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in events.columns]
    if missing:
        raise ValueError(f"events: missing columns {missing} (have {list(events.columns)})")
    name = model_name or str(bundle.metadata.get("model_name", ""))
    version = model_version or bundle.metadata.get("version")
    version = None if version is None else str(version)
    if "cutoff" in events.columns:
        stamps = pd.to_datetime(events["cutoff"], utc=True, errors="coerce")
        if stamps.isna().any():
            row = int(np.flatnonzero(stamps.isna().to_numpy())[0])
            raise ValueError(f"column 'cutoff': row {row} is missing or not a time")
        groups = [(as_cutoff(c), events.loc[(stamps == c).to_numpy()]) for c in stamps.unique()]
    elif cutoff is None:
        raise ValueError("give a cutoff: a 'cutoff' column or the cutoff parameter")
    else:
        groups = [(as_cutoff(cutoff), events)]
    parts = []
    for stamp, frame in sorted(groups, key=lambda g: g[0]):
        canonical = conform(frame)
        enc = encode_events(canonical, bundle.vocab)
        parts.append(
            score_encoded(
                bundle,
                enc,
                stamp,
                top_k=top_k,
                model_name=name,
                model_version=version,
                events=canonical,
            )
        )
    if not parts:
        return empty_prediction_table()
    return pd.concat(parts, ignore_index=True)
