"""Text summaries for monitoring: what serving logs per request and the reference holds.

Per sample, over the texts its text channel reads (:mod:`core.textbag`): mean characters,
the share of non-ASCII characters (a language or encoding shift), the number of token ids
and the share of them out of the vectoriser's vocabulary (vocabulary coverage). NaN where a
sample read no text; the columns exist only for models with an event-text channel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.arrays import SequenceArrays

TEXT_FEATURES: tuple[str, ...] = (
    "text_chars",
    "text_non_ascii_share",
    "text_tokens",
    "text_oov_share",
)
#: Per-sample means kept in ``SequenceArrays.extra`` by ``modelkit.text_features.attach_text``.
CHAR_EXTRAS: tuple[str, ...] = ("text_chars", "text_non_ascii_share")


def char_stats(texts: Sequence[object]) -> tuple[np.ndarray, np.ndarray]:
    """Per event: ``(E, 2)`` characters and non-ASCII share, and ``(E,)`` has-text flags."""
    out = np.zeros((len(texts), 2), np.float64)
    present = np.zeros(len(texts), bool)
    for i, text in enumerate(texts):
        if isinstance(text, str) and text:
            present[i] = True
            out[i, 0] = len(text)
            out[i, 1] = (len(text) - len(text.encode("ascii", "ignore"))) / len(text)
    return out, present


def text_profile(arrays: SequenceArrays) -> pd.DataFrame | None:
    """:data:`TEXT_FEATURES` per sample; ``None`` for arrays without the text channel."""
    tokens = arrays.text_tokens
    if tokens is None:
        return None
    n = len(arrays)
    count = (tokens > 0).sum(axis=1)
    oov = (tokens == 1).sum(axis=1)
    nan = np.full(n, np.nan)
    return pd.DataFrame(
        {
            "text_chars": arrays.extra.get("text_chars", nan),
            "text_non_ascii_share": arrays.extra.get("text_non_ascii_share", nan),
            "text_tokens": count.astype(np.float64),
            "text_oov_share": np.where(count > 0, oov / np.maximum(count, 1), np.nan),
        },
        columns=list(TEXT_FEATURES),
    )
