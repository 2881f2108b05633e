"""Text vectorisation for the model: one Keras ``TextVectorization`` per text channel.

Fitted on the training window only and saved in the bundle (``text.json``), so training,
serving and batch scoring turn text into the same token ids. Token id 0 is padding and 1
is out-of-vocabulary (Keras' ``""`` and ``"[UNK]"``), the same convention as the category
vocabulary. Standardisation is done here, in Python, before the layer (lower case, every
run of non-word characters one space) so that dotted category paths such as
``appliances.kitchen`` split into words instead of being glued together.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

_NON_WORD = re.compile(r"\W+", re.UNICODE)
#: Up to this many texts, look words up in a dict: the Keras layer's eager call costs about
#: 6 ms whatever the batch (a serving request), the dict a few microseconds per text. Both
#: give the same ids (after ``normalize_text`` words are separated by single spaces).
SMALL_TEXTS = 64


def normalize_text(value: object) -> str:
    """Lower-case ``value`` and replace every run of non-word characters by one space."""
    return _NON_WORD.sub(" ", str(value).lower()).strip()


def _clean(values: Iterable[object]) -> list[str]:
    out = []
    for value in values:
        try:
            missing = value is None or bool(value != value)  # NaN / pd.NA
        except TypeError:
            missing = True
        out.append("" if missing else normalize_text(value))
    return out


@dataclass
class TextVectorizer:
    """Words to token ids with a fixed vocabulary (see module docstring).

    Attributes:
        vocabulary: the words, most frequent first; word ``vocabulary[i]`` has id ``i + 2``.
        tokens_per_text: ids kept per text (the first ones); shorter texts are 0-padded.
    """

    vocabulary: list[str]
    tokens_per_text: int

    def __post_init__(self) -> None:
        self._layer: keras.layers.TextVectorization | None = None
        self._ids: dict[str, int] | None = None

    @property
    def size(self) -> int:
        """Number of ids, padding and OOV included."""
        return len(self.vocabulary) + 2

    @classmethod
    def fit(cls, texts: Iterable[object], max_tokens: int, tokens_per_text: int) -> TextVectorizer:
        """Adapt a vocabulary of at most ``max_tokens`` ids (padding and OOV included)."""
        if max_tokens < 3:
            raise ValueError(f"max_tokens must be >= 3, got {max_tokens}")
        cleaned = [t for t in _clean(texts) if t]
        layer = keras.layers.TextVectorization(
            max_tokens=max_tokens, standardize=None, split="whitespace", output_mode="int"
        )
        if cleaned:
            layer.adapt(np.array(cleaned, dtype=object), batch_size=1024)
        words = [str(w) for w in layer.get_vocabulary()[2:]] if cleaned else []
        return cls(vocabulary=words, tokens_per_text=tokens_per_text)

    def layer(self) -> keras.layers.TextVectorization:
        """The Keras layer with this vocabulary (built once)."""
        if self._layer is None:
            self._layer = keras.layers.TextVectorization(
                standardize=None,
                split="whitespace",
                output_mode="int",
                output_sequence_length=self.tokens_per_text,
                vocabulary=self.vocabulary or ["<none>"],
            )
        return self._layer

    def encode(self, texts: Sequence[object] | np.ndarray) -> np.ndarray:
        """``(E, tokens_per_text)`` int32 token ids; missing or empty text is all 0."""
        cleaned = _clean(texts)
        if len(cleaned) <= SMALL_TEXTS:
            return self.encode_small(cleaned)
        return self.encode_keras(cleaned)

    def encode_keras(self, cleaned: list[str]) -> np.ndarray:
        """Token ids of normalised texts through the Keras ``TextVectorization`` layer."""
        if not cleaned:
            return np.zeros((0, self.tokens_per_text), np.int32)
        ids = np.asarray(self.layer()(np.array(cleaned, dtype=object)), dtype=np.int32)
        if not self.vocabulary:  # the placeholder word must not count as known
            ids = np.where(ids > 0, 1, 0).astype(np.int32)
        return ids

    def encode_small(self, cleaned: list[str]) -> np.ndarray:
        """Token ids of normalised texts by dict lookup (the same ids as :meth:`encode_keras`)."""
        if self._ids is None:
            self._ids = {w: i + 2 for i, w in enumerate(self.vocabulary)}
        out = np.zeros((len(cleaned), self.tokens_per_text), np.int32)
        for row, text in enumerate(cleaned):
            words = text.split(" ")[: self.tokens_per_text] if text else []
            out[row, : len(words)] = [self._ids.get(w, 1) for w in words]
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the bundle's ``text.json`` holds one per channel)."""
        return {"vocabulary": list(self.vocabulary), "tokens_per_text": self.tokens_per_text}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextVectorizer:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            vocabulary=list(data["vocabulary"]), tokens_per_text=int(data["tokens_per_text"])
        )


def token_stats(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per text: number of tokens and the share of them out of vocabulary (NaN if none)."""
    count = (ids > 0).sum(axis=1)
    oov = (ids == 1).sum(axis=1)
    share = np.where(count > 0, oov / np.maximum(count, 1), np.nan)
    return count.astype(np.int64), share.astype(np.float64)
