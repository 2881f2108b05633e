"""Category vocabulary: the index space of the ``cat`` input and the ``next_cats`` output.

Index 0 is padding and index 1 is out-of-vocabulary (OOV); category ``categories[i]`` has
index ``i + 2``. Categories are ordered by frequency (descending, ties by id), so the first
``top_categories`` of them are also the trajectory buckets ``0..C-1``; bucket ``C`` means
"any other category".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.config import FeatureConfig

PAD_INDEX = 0
OOV_INDEX = 1
PAD_TOKEN = "<pad>"
OOV_TOKEN = "<oov>"
#: Up to this many values, :meth:`Vocabulary.encode` looks them up in a dict (100 values:
#: about 8 us, against 60 us for pandas' hashed index, which wins on large arrays).
DICT_LOOKUP_MAX = 4096
#: Bump when the meaning of the saved fields changes.
VOCAB_VERSION = 1


class Vocabulary:
    """Maps category ids to indices and indices to trajectory buckets.

    Args:
        categories: category ids, most frequent first (index ``i + 2``).
        top_categories: number ``C`` of trajectory buckets before the "other" bucket.
    """

    def __init__(self, categories: Sequence[str], top_categories: int) -> None:
        self.categories: list[str] = [str(c) for c in categories]
        if len(set(self.categories)) != len(self.categories):
            raise ValueError("vocabulary categories must be unique")
        if top_categories < 1:
            raise ValueError(f"top_categories must be >= 1, got {top_categories}")
        self.top_categories = int(top_categories)
        # Built lazily: a pandas Index hashes string arrays far faster than a dict loop.
        self._index: pd.Index | None = None
        self._lookup: dict[str, int] | None = None
        self._hash: str | None = None

    @property
    def size(self) -> int:
        """V: number of indices, padding and OOV included."""
        return len(self.categories) + 2

    def encode(self, values: Sequence[str] | np.ndarray | pd.Series) -> np.ndarray:
        """Return int32 indices of ``values``; unknown categories map to OOV (1)."""
        if len(values) <= DICT_LOOKUP_MAX:  # same indices either way (tests/core/test_vocab.py)
            if self._lookup is None:
                self._lookup = {c: i + 2 for i, c in enumerate(self.categories)}
            get = self._lookup.get
            return np.fromiter((get(v, OOV_INDEX) for v in values), np.int32, len(values))
        if self._index is None:
            self._index = pd.Index(self.categories, dtype=object)
        found = self._index.get_indexer(np.asarray(values, dtype=object))
        return np.where(found < 0, OOV_INDEX, found + 2).astype(np.int32)

    def decode(self, indices: Sequence[int] | np.ndarray) -> list[str]:
        """Return category ids of ``indices`` (0 -> ``<pad>``, 1 -> ``<oov>``).

        Raises:
            IndexError: if an index is negative or not below :attr:`size`.
        """
        names = [PAD_TOKEN, OOV_TOKEN, *self.categories]
        out = []
        for i in np.asarray(indices, dtype=np.int64).tolist():
            if not 0 <= i < len(names):
                raise IndexError(f"category index {i} outside 0..{len(names) - 1}")
            out.append(names[i])
        return out

    def bucket(self, indices: np.ndarray) -> np.ndarray:
        """Map category indices to trajectory buckets ``0..C`` (``C`` = other, incl. OOV/pad)."""
        rank = np.asarray(indices, dtype=np.int64) - 2
        return np.where((rank >= 0) & (rank < self.top_categories), rank, self.top_categories)

    def bucket_names(self, n_buckets: int) -> list[str]:
        """Name the trajectory buckets ``0..n_buckets-1``: top categories, then ``"other"``.

        Buckets with no category (a vocabulary smaller than ``C``) are named ``<bucket b>``.
        """
        names = [f"<bucket {b}>" for b in range(n_buckets - 1)] + ["other"]
        indices = np.arange(2, self.size)
        for index, bucket in zip(indices.tolist(), self.bucket(indices).tolist(), strict=True):
            if bucket < n_buckets - 1 and names[bucket].startswith("<"):
                names[bucket] = self.categories[index - 2]
        return names

    def to_dict(self) -> dict[str, Any]:
        """Serialisable form, with ``version`` and content ``hash``."""
        return {**self._content(), "hash": self.hash}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabulary:
        """Rebuild from :meth:`to_dict`, checking version and hash.

        Raises:
            ValueError: on an unknown version or a hash that does not match the content.
        """
        version = data.get("version")
        if version != VOCAB_VERSION:
            raise ValueError(f"vocabulary version {version!r} unsupported (want {VOCAB_VERSION})")
        vocab = cls(data["categories"], data["top_categories"])
        if "hash" in data and data["hash"] != vocab.hash:
            raise ValueError(
                f"vocabulary hash mismatch: file says {data['hash']}, content gives {vocab.hash}"
            )
        return vocab

    @property
    def hash(self) -> str:
        """sha256 of the canonical JSON content (16 hex digits)."""
        if self._hash is None:  # categories are not meant to change after construction
            text = json.dumps(self._content(), sort_keys=True, separators=(",", ":"))
            self._hash = hashlib.sha256(text.encode()).hexdigest()[:16]
        return self._hash

    def save(self, path: Path) -> None:
        """Write the vocabulary as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), sort_keys=True, indent=1))

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        """Read what :meth:`save` wrote."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    def _content(self) -> dict[str, Any]:
        return {
            "version": VOCAB_VERSION,
            "categories": self.categories,
            "top_categories": self.top_categories,
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._content() == other._content()

    def __repr__(self) -> str:
        return (
            f"Vocabulary(size={self.size}, top_categories={self.top_categories}, hash={self.hash})"
        )


def fit_vocabulary(events: pd.DataFrame, config: FeatureConfig) -> Vocabulary:
    """Fit the vocabulary on ``events`` (pass history only: no label-window events).

    Args:
        events: canonical events.
        config: ``min_freq`` drops rarer categories (they encode to OOV);
            ``top_categories`` sets the trajectory buckets.

    Returns:
        Categories by frequency descending, ties broken by id.
    """
    if "category_id" not in events.columns:
        raise KeyError("events have no 'category_id' column")
    counts = events["category_id"].dropna().astype(str).value_counts()
    return vocabulary_from_counts(counts, config)


def vocabulary_from_counts(counts: pd.Series, config: FeatureConfig) -> Vocabulary:
    """Build the vocabulary from per-category event counts (index = category id)."""
    counts = counts[counts >= config.min_freq]
    frame = pd.DataFrame({"cat": counts.index.astype(str), "n": counts.to_numpy()})
    frame = frame.sort_values(["n", "cat"], ascending=[False, True], kind="stable")
    return Vocabulary(frame["cat"].tolist(), config.top_categories)
