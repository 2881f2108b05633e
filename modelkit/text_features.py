"""Text channels of a bundle: fitting the vectorisers, building the text inputs, saving them.

Two channels, each optional: ``text`` (events' own text: reviews, search queries) and
``attrs`` (item attributes: ``item_text`` words such as a category path, ``brand_<name>``
and ``price_<log2 bucket>``). Each is one :class:`~modelkit.text.TextVectorizer` fitted on
the events before one cutoff (the training window) and saved as ``text.json`` in the bundle.
Per-sample inputs come from :func:`core.textbag.history_tokens` (events strictly before the
cutoff only).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.arrays import FeatureSpec, SequenceArrays
from core.config import FeatureConfig
from core.periods import duration_ns, to_ns
from core.textbag import history_means, history_tokens
from core.textstats import CHAR_EXTRAS, char_stats
from modelkit.text import TextVectorizer

TEXT_FILE = "text.json"


@dataclass(frozen=True)
class TextSettings:
    """Sizes of the text channels (why: a few hundred ids per user keep the bag cheap)."""

    max_tokens: int = 5_000  # event-text vocabulary, padding and OOV included
    tokens_per_text: int = 48  # first words of each review (summary first)
    history_texts: int = 8  # latest texts a sample reads
    text_len: int = 192  # T: token ids per sample
    attr_max_tokens: int = 2_000
    tokens_per_attr: int = 8  # category path words + brand + price bucket
    attr_len: int = 64  # A


@dataclass
class TextFeatures:
    """Fitted vectorisers (``None``: the channel is absent) and their settings."""

    settings: TextSettings
    text: TextVectorizer | None = None
    attrs: TextVectorizer | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``text.json``)."""
        return {
            "settings": dataclasses.asdict(self.settings),
            "text": None if self.text is None else self.text.to_dict(),
            "attrs": None if self.attrs is None else self.attrs.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextFeatures:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            settings=TextSettings(**data["settings"]),
            text=None if data.get("text") is None else TextVectorizer.from_dict(data["text"]),
            attrs=None if data.get("attrs") is None else TextVectorizer.from_dict(data["attrs"]),
        )

    def save(self, directory: Path) -> Path:
        """Write ``text.json`` into ``directory``."""
        path = Path(directory) / TEXT_FILE
        path.write_text(json.dumps(self.to_dict()))
        return path

    @classmethod
    def load(cls, directory: Path) -> TextFeatures | None:
        """Read ``text.json`` from ``directory``; ``None`` when the bundle has none."""
        path = Path(directory) / TEXT_FILE
        return cls.from_dict(json.loads(path.read_text())) if path.is_file() else None


def attribute_strings(events: pd.DataFrame) -> list[str]:
    """Per event: item text words, ``brand_<name>`` and ``price_<bucket>`` (what is known)."""
    n = len(events)
    parts: list[pd.Series] = []
    if "item_text" in events:
        parts.append(events["item_text"].astype("string").fillna(""))
    if "brand" in events:
        brand = events["brand"].astype("string").str.replace(r"\W+", "_", regex=True)
        parts.append(("brand_" + brand).fillna(""))
    if "price" in events:
        price = pd.to_numeric(events["price"], errors="coerce").to_numpy(dtype=np.float64)
        bucket = np.floor(np.log2(np.clip(price, 0, None) + 1))
        text = pd.Series(bucket, index=events.index).map(
            lambda b: "" if b != b else f"price_{int(b)}"
        )
        parts.append(text.astype("string"))
    if not parts:
        return [""] * n
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.str.cat(part, sep=" ")
    return joined.str.strip().tolist()


def _texts(events: pd.DataFrame) -> list[object]:
    if "text" not in events:
        return [None] * len(events)
    column = events["text"]
    return (column if column.dtype == object else column.astype("object")).tolist()


def fit_text_features(
    events: pd.DataFrame, until: pd.Timestamp | str, settings: TextSettings | None = None
) -> TextFeatures:
    """Fit both vectorisers on the events strictly before ``until`` (the training window).

    A channel whose column is empty in that window stays ``None``.
    """
    settings = settings or TextSettings()
    stamps = pd.to_datetime(events["timestamp"], utc=True)
    before = events.loc[(stamps < pd.Timestamp(to_ns(until), tz="UTC")).to_numpy()]
    out = TextFeatures(settings=settings)
    texts = [t for t in _texts(before) if isinstance(t, str) and t.strip()]
    if texts:
        out.text = TextVectorizer.fit(texts, settings.max_tokens, settings.tokens_per_text)
    attrs = [a for a in attribute_strings(before) if a]
    if attrs:
        out.attrs = TextVectorizer.fit(attrs, settings.attr_max_tokens, settings.tokens_per_attr)
    return out


def event_tokens(features: TextFeatures, events: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per channel, ``(E, L)`` token ids of every event (in the frame's row order)."""
    out: dict[str, np.ndarray] = {}
    if features.text is not None:
        out["text_tokens"] = features.text.encode(_texts(events))
    if features.attrs is not None:
        out["attr_tokens"] = features.attrs.encode(attribute_strings(events))
    return out


def attach_text(
    arrays: SequenceArrays,
    events: pd.DataFrame,
    features: TextFeatures,
    config: FeatureConfig,
    tokens: dict[str, np.ndarray] | None = None,
) -> SequenceArrays:
    """Set ``arrays.text_tokens`` / ``attr_tokens`` from ``events`` (in place; returned).

    ``tokens``: :func:`event_tokens` output to reuse across several sample sets.
    """
    tokens = tokens if tokens is not None else event_tokens(features, events)
    stamps = events["timestamp"]
    if not (isinstance(stamps.dtype, pd.DatetimeTZDtype) and str(stamps.dtype.tz) == "UTC"):
        stamps = pd.to_datetime(stamps, utc=True)
    time = stamps.array.asi8 * {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[stamps.dt.unit]
    users = events["user_id"].to_numpy(dtype=object)
    texts = _texts(events) if "text_tokens" in tokens else None
    return attach_tokens(arrays, users, time, tokens, texts, features, config)


def attach_tokens(
    arrays: SequenceArrays,
    users: np.ndarray,
    time_ns: np.ndarray,
    tokens: dict[str, np.ndarray],
    texts: list[object] | None,
    features: TextFeatures,
    config: FeatureConfig,
) -> SequenceArrays:
    """:func:`attach_text` from event columns: ``(E,)`` users and int ns times, per-channel
    ``(E, L)`` token ids and (with ``text_tokens``) the events' texts for the summaries."""
    history = duration_ns(config.history, "history") if config.history else None
    s = features.settings
    sizes = {"text_tokens": s.text_len, "attr_tokens": s.attr_len}
    for name, ids in tokens.items():
        bag = history_tokens(
            users,
            time_ns,
            ids,
            arrays.user_id,
            arrays.cutoff,
            max_texts=s.history_texts,
            length=sizes[name],
            history_ns=history,
        )
        setattr(arrays, name, bag)
    if "text_tokens" in tokens:  # monitoring's text summaries of the same texts
        stats, present = char_stats(texts if texts is not None else [None] * len(users))
        means = history_means(
            users, time_ns, stats, present, arrays.user_id, arrays.cutoff,
            max_texts=s.history_texts, history_ns=history,
        )  # fmt: skip
        for column, name in enumerate(CHAR_EXTRAS):
            arrays.extra[name] = means[:, column]
    return arrays


def text_spec(spec: FeatureSpec, features: TextFeatures | None) -> FeatureSpec:
    """``spec`` with the text channel sizes of ``features`` (unchanged for ``None``)."""
    if features is None:
        return spec
    s = features.settings
    return dataclasses.replace(
        spec,
        n_text_tokens=features.text.size if features.text else 0,
        text_len=s.text_len if features.text else 0,
        n_attr_tokens=features.attrs.size if features.attrs else 0,
        attr_len=s.attr_len if features.attrs else 0,
        text_hash=hashlib.sha256(json.dumps(features.to_dict()).encode()).hexdigest()[:16],
    )
