"""Text vectorisation for the model: one Keras ``TextVectorization`` per text channel.

Fitted on the training window only and saved in the bundle (``text.json``), so training,
serving and batch scoring turn text into the same token ids. Token id 0 is padding and 1
is out-of-vocabulary (Keras' ``""`` and ``"[UNK]"``), the same convention as the category
vocabulary. Standardisation is done here, in Python, before the layer (lower case, every
run of non-word characters one space) so that dotted category paths such as
``appliances.kitchen`` split into words instead of being glued together.

One vectorisation definition, two implementations: :meth:`TextVectorizer.encode` (training,
batch scoring, serving) reads only as much of each text as its first ``tokens_per_text``
words need and looks them up in a dict; :meth:`TextVectorizer.encode_keras` is the Keras
``TextVectorization`` layer (``standardize=None``, ``split="whitespace"``) that defines the
ids. Tests hold the two equal on real reviews and random unicode.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

_NON_WORD = re.compile(r"\W+", re.UNICODE)
_WORDS = re.compile(r"\w+", re.UNICODE)
#: First slice of a text :func:`first_words` reads (doubled until it holds enough words).
_CHUNK = 64


def normalize_text(value: object) -> str:
    """Lower-case ``value`` and replace every run of non-word characters by one space."""
    return _NON_WORD.sub(" ", str(value).lower()).strip()


def first_words(value: str, n: int) -> list[str]:
    """The first ``n`` words of ``normalize_text(value).split(" ")`` (none for empty text).

    Reads a prefix of ``value`` cut just before an ASCII space, so a 2,000-character review
    costs what its first ``n`` words cost. Exact: the space is a non-word character that ends
    the last word of the prefix, and ``str.lower`` looks past a character only for the Greek
    final sigma, whose context stops at that space.
    """
    size = len(value)
    cut = min(size, max(_CHUNK, 8 * n))
    while True:
        if cut < size:
            space = value.find(" ", cut)
            cut = size if space < 0 else space
        words = _WORDS.findall(value[:cut].lower())
        if len(words) > n or cut >= size:
            return words[:n]
        cut *= 2


def _is_missing(value: object) -> bool:
    try:
        return value is None or bool(value != value)  # NaN / pd.NA
    except TypeError:
        return True


def _clean(values: Iterable[object]) -> list[str]:
    return ["" if _is_missing(value) else normalize_text(value) for value in values]


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
        """``(E, tokens_per_text)`` int32 token ids; missing or empty text is all 0.

        The ids of :meth:`encode_keras` (the Keras layer), by dict lookup of each text's
        first words (:func:`first_words`): no TensorFlow call, no full-text normalisation.
        """
        if self._ids is None:
            self._ids = {w: i + 2 for i, w in enumerate(self.vocabulary)}
        ids, n = self._ids, self.tokens_per_text
        out = np.zeros((len(texts), n), np.int32)
        for row, value in enumerate(texts):
            if _is_missing(value):
                continue
            words = first_words(value if isinstance(value, str) else str(value), n)
            if words:
                out[row, : len(words)] = [ids.get(w, 1) for w in words]
        return out

    def encode_keras(self, texts: Sequence[object] | np.ndarray) -> np.ndarray:
        """Token ids through the Keras ``TextVectorization`` layer (the reference ids)."""
        cleaned = _clean(texts)
        if not cleaned:
            return np.zeros((0, self.tokens_per_text), np.int32)
        ids = np.asarray(self.layer()(np.array(cleaned, dtype=object)), dtype=np.int32)
        if not self.vocabulary:  # the placeholder word must not count as known
            ids = np.where(ids > 0, 1, 0).astype(np.int32)
        return ids

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the bundle's ``text.json`` holds one per channel)."""
        return {"vocabulary": list(self.vocabulary), "tokens_per_text": self.tokens_per_text}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextVectorizer:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            vocabulary=list(data["vocabulary"]), tokens_per_text=int(data["tokens_per_text"])
        )
