"""Content profiles of categories: the tokens each category's own text is made of.

Next-category prediction on sparse logs (the review log: 899 items, users never re-buy an
item) is mostly about categories the user has not touched; a learned id embedding says
nothing about an item seen a handful of times. A *profile* lists, per category index, the
token ids that describe it best (TF-IDF over the category's texts: its reviews, its category
path words, brands and price buckets), so :class:`modelkit.text_layers.CategoryContent` can
give the category a content embedding that similar categories share.

No leakage: a profile reads only events strictly before its ``until`` (the training window).
A model holds two profiles (both in :class:`~core.arrays.FeatureSpec` and in the model's
weights): ``content_fit`` (events before the earliest training cutoff: no training sample
sees text written in or after its own label window) for training, ``content`` (events before
the last cutoff the model was fitted to) for scoring and serving.

Token ids: the event-text channel's ids as they are, the attribute channel's ids shifted by
the text vectoriser's size (one id space of ``n_content_tokens`` rows; 0 = padding).
"""

from __future__ import annotations

import base64
import dataclasses
import zlib

import numpy as np
import pandas as pd

from core.arrays import FeatureSpec
from core.periods import to_ns
from core.vocab import Vocabulary
from modelkit.text_features import TextFeatures

#: Tokens per category and channel (the most distinctive ones by TF-IDF).
TOKENS_PER_CHANNEL = 16


def category_profiles(
    events: pd.DataFrame,
    vocab: Vocabulary,
    features: TextFeatures,
    until: pd.Timestamp | str,
    tokens: dict[str, np.ndarray],
    *,
    per_channel: int = TOKENS_PER_CHANNEL,
) -> np.ndarray:
    """``(V, K)`` int32 token ids describing each category, from events before ``until``.

    Args:
        events: canonical events (``category_id``, ``timestamp`` and the text columns).
        vocab: the category vocabulary (row ``i`` is category index ``i``).
        features: the fitted vectorisers (their sizes fix the id space).
        until: only events with ``timestamp < until`` are read.
        tokens: :func:`modelkit.text_features.event_tokens` of ``events`` (same row order).
        per_channel: tokens kept per category and channel.

    Returns:
        Per category the top TF-IDF token ids of each channel (text first), 0-padded; padding,
        OOV and categories without text before ``until`` are all 0 (their content is zero).
    """
    stamps = pd.to_datetime(events["timestamp"], utc=True)
    ns = stamps.array.asi8 * {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[stamps.dt.unit]
    before = ns < to_ns(until)
    cats = vocab.encode(events["category_id"].astype(str).to_numpy(dtype=object))
    keep = before & (cats >= 2)
    channels = []
    offset = 0
    for name, vectorizer in (("text_tokens", features.text), ("attr_tokens", features.attrs)):
        if vectorizer is None:
            continue
        channels.append(_top_tokens(cats[keep], tokens[name][keep], vocab.size, per_channel))
        channels[-1] = np.where(channels[-1] > 0, channels[-1] + offset, 0)
        offset += vectorizer.size
    if not channels:
        return np.zeros((vocab.size, 0), np.int32)
    return np.concatenate(channels, axis=1).astype(np.int32)


def _top_tokens(cats: np.ndarray, ids: np.ndarray, n_cats: int, k: int) -> np.ndarray:
    """Per category the ``k`` token ids with the highest ``count * idf`` (ties: lower id)."""
    out = np.zeros((n_cats, k), np.int32)
    ids = np.asarray(ids, np.int64)
    pair_cat = np.repeat(np.asarray(cats, np.int64), ids.shape[1] if ids.ndim == 2 else 0)
    flat = ids.reshape(-1)
    known = flat > 1  # neither padding (0) nor out-of-vocabulary (1)
    if not known.any():
        return out
    width = int(flat.max()) + 1
    pairs, counts = np.unique(pair_cat[known] * width + flat[known], return_counts=True)
    cat, tok = pairs // width, pairs % width
    n_with_text = len(np.unique(cat))
    df = np.bincount(tok, minlength=width)  # categories using each token
    score = (1.0 + np.log(counts)) * (np.log((1.0 + n_with_text) / (1.0 + df[tok])) + 1.0)
    order = np.lexsort((tok, -score, cat))
    cat, tok = cat[order], tok[order]
    starts = np.searchsorted(cat, cat, side="left")
    rank = np.arange(len(cat)) - starts
    top = rank < k
    out[cat[top], rank[top]] = tok[top]
    return out


def encode_profile(profile: np.ndarray) -> str:
    """Compact text form of a ``(V, K)`` profile for :class:`FeatureSpec` (``V,K:base64``)."""
    profile = np.ascontiguousarray(profile, dtype="<i4")
    packed = base64.b64encode(zlib.compress(profile.tobytes(), 6)).decode("ascii")
    return f"{profile.shape[0]},{profile.shape[1]}:{packed}"


def decode_profile(text: str) -> np.ndarray:
    """Inverse of :func:`encode_profile`.

    Raises:
        ValueError: when ``text`` is not ``V,K:base64`` of ``V * K`` int32 values.
    """
    try:
        shape, packed = text.split(":", 1)
        rows, cols = (int(x) for x in shape.split(","))
        flat = np.frombuffer(zlib.decompress(base64.b64decode(packed)), dtype="<i4")
        return flat.reshape(rows, cols).astype(np.int32)
    except (ValueError, zlib.error) as exc:
        msg = f"feature spec content profile is not a valid V,K:base64 table: {exc}"
        raise ValueError(msg) from None


def content_spec(
    spec: FeatureSpec,
    events: pd.DataFrame,
    vocab: Vocabulary,
    features: TextFeatures,
    tokens: dict[str, np.ndarray],
    *,
    fit_until: pd.Timestamp | str,
    score_until: pd.Timestamp | str,
) -> FeatureSpec:
    """``spec`` with both content profiles (unchanged when no channel has text).

    ``fit_until``: the earliest training cutoff; ``score_until``: the cutoff the scored
    samples sit at (validation for the study, test for the refit); see the module docstring.
    """
    fit = category_profiles(events, vocab, features, fit_until, tokens)
    if fit.shape[1] == 0:
        return spec
    score = category_profiles(events, vocab, features, score_until, tokens)
    sizes = [v.size for v in (features.text, features.attrs) if v is not None]
    return dataclasses.replace(
        spec,
        n_content_tokens=int(sum(sizes)),
        content_len=int(fit.shape[1]),
        content=encode_profile(score),
        content_fit=encode_profile(fit),
    )
