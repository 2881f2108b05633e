"""Text inputs of one micro-batch of requests, through the bundle's own vectorisers.

Only when the served model reads a text channel (``text_tokens`` / ``attr_tokens`` among its
inputs); the text-free hot path never comes here. The events' ``text``, ``item_text``,
``brand`` and ``price`` go through the steps of :func:`modelkit.text_features.attach_text`
(the vectorisers' ``encode``, ``attribute_strings``, ``attach_tokens``), the code training
used, so a request vectorises exactly as its training samples did.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from core.arrays import TEXT_INPUT_NAMES, SequenceArrays
from modelkit.text_features import attach_tokens, attribute_strings
from serving.wire import RequestBatch

_WORD = re.compile(r"\w", re.UNICODE)


def reads_text(bundle: Any) -> bool:
    """Whether the bundle's model has a text input (and the bundle the vectorisers)."""
    if getattr(bundle, "text", None) is None:
        return False
    return any(name in bundle.predictor.input_specs for name in TEXT_INPUT_NAMES)


def readable_texts(times: Sequence[int], texts: Sequence[Any], max_texts: int) -> set[int]:
    """Positions of the ``max_texts`` newest events whose text has a word.

    Only those can reach the model (:func:`core.textbag.history_tokens` reads the newest
    texts before the cutoff, and every request event precedes its cutoff), so the rest are
    never vectorised: a long review history costs what its latest reviews cost.

    Args:
        times: one user's event times (any comparable unit), in request order.
        texts: the events' texts (``None``: no text).
        max_texts: how many texts the model reads.
    """
    order = sorted(range(len(times)), key=lambda i: (times[i], i), reverse=True)
    kept: set[int] = set()
    for i in order:
        if len(kept) == max_texts:
            break
        if texts[i] and _WORD.search(texts[i]):  # normalize_text keeps words
            kept.add(i)
    return kept


def request_columns(
    keys: Sequence[str], batch: RequestBatch, max_texts: int | None = None
) -> dict[str, np.ndarray]:
    """The requests' events as columns: ``user_id`` (= ``keys``), ``time_ns`` (int64 ns),
    ``text``, ``item_text``, ``brand``, ``price`` (float, NaN if absent).

    With ``max_texts``, event texts the model cannot read are left out (see
    :func:`readable_texts`).
    """
    events = batch.events
    counts = np.diff(batch.stops, prepend=0)
    texts = [e.text for e in events]
    if max_texts is not None:
        times = batch.time_ns.tolist()
        for a, b in zip(batch.starts.tolist(), batch.stops.tolist(), strict=True):
            kept = readable_texts(times[a:b], texts[a:b], max_texts)
            for i in range(a, b):
                if i - a not in kept:
                    texts[i] = None
    return {
        "user_id": np.repeat(np.asarray(keys, dtype=object), counts),
        "time_ns": batch.time_ns,
        "text": np.array(texts, dtype=object),
        "item_text": np.array([e.item_text for e in events], dtype=object),
        "brand": np.array([e.brand for e in events], dtype=object),
        "price": np.array([np.nan if e.price is None else e.price for e in events], np.float64),
    }


def _frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    time = columns["time_ns"].view("datetime64[ns]")
    data = {k: v for k, v in columns.items() if k != "time_ns"}
    return pd.DataFrame({**data, "timestamp": pd.DatetimeIndex(time).tz_localize("UTC")})


def attach_request_text(
    arrays: SequenceArrays, keys: Sequence[str], batch: RequestBatch, bundle: Any
) -> None:
    """Set the text inputs of ``arrays`` (samples keyed by ``keys``) in place.

    The same steps as :func:`modelkit.text_features.attach_text` (the vectorisers'
    ``encode``, :func:`modelkit.text_features.attach_tokens`) on plain columns: a pandas
    frame only for the item-attribute channel, whose strings training builds from one.
    """
    features = bundle.text
    columns = request_columns(keys, batch, features.settings.history_texts)
    texts = columns["text"].tolist()
    tokens: dict[str, np.ndarray] = {}
    if features.text is not None:
        tokens["text_tokens"] = features.text.encode(texts)
    if features.attrs is not None:
        tokens["attr_tokens"] = features.attrs.encode(attribute_strings(_frame(columns)))
    wanted = {k: v for k, v in tokens.items() if k in bundle.predictor.input_specs}
    attach_tokens(
        arrays, columns["user_id"], columns["time_ns"], wanted, texts, features,
        bundle.feature_config,
    )  # fmt: skip
