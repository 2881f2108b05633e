"""From canonical events to train/validation/test arrays, with a reproducible fingerprint.

The vocabulary is fitted on events before the **validation** cutoff: those are exactly the
events the training samples (inputs and labels) can see, so neither the validation nor the
test period shapes the index space the model is selected on. The refit, trained on train +
validation, sees events up to the **test** cutoff: :func:`prepare_refit_data` rebuilds the
arrays with a vocabulary fitted there, so the served model can name categories that first
appeared in the validation period (the test horizon still never shapes it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from core.arrays import FeatureSpec, SequenceArrays
from core.config import ProjectConfig
from core.features import build_features, encode_events, feature_spec
from core.labels import OOV_TRUTH, count_oov_truth
from core.splits import Splits, make_splits
from core.vocab import Vocabulary, fit_vocabulary

#: Columns of the fingerprint content hash (see :func:`hash_events`).
HASHED_COLUMNS = ("user_id", "item_id", "category_id", "behavior", "timestamp")


@dataclass(frozen=True)
class DataFingerprint:
    """What a model was trained on: enough to tell two datasets apart."""

    dataset: str
    rows: int
    content_hash: str
    vocab_hash: str
    cutoffs: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class PreparedData:
    """Everything a training job needs, fitted on history only."""

    vocab: Vocabulary
    spec: FeatureSpec
    splits: Splits
    train: SequenceArrays
    val: SequenceArrays
    test: SequenceArrays
    fingerprint: DataFingerprint
    # Fitted text vectorisers (``modelkit.text_features.TextFeatures``) when the job reads
    # text (``training.text_data.add_text``); typed loosely: core does not import modelkit.
    text: Any = None
    # Stream mode (``train.input = "stream"``): the folder of the full splits' feature shards
    # (``<folder>/<split>/part-*.npz``); ``train``/``val``/``test`` then hold bounded samples.
    shards: Path | None = None


def hash_events(events: pd.DataFrame) -> str:
    """Order-independent content hash of the core event columns (16 hex digits).

    Each column is factorised and only its distinct values are hashed (Arrow-backed string
    columns never become Python objects row by row); row hashes are combined per row and
    summed modulo 2**64, so the same rows in another order hash the same.
    """
    columns = [c for c in HASHED_COLUMNS if c in events.columns]
    rows = np.zeros(len(events), dtype=np.uint64)
    for col in columns:
        values = events[col]
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            hashed = pd.util.hash_array(values.array.asi8)
        else:
            codes, uniques = pd.factorize(values, use_na_sentinel=True)
            hashes = pd.util.hash_array(np.asarray(uniques, dtype=object))
            hashed = np.append(hashes, np.uint64(0))[codes]  # code -1 (missing) -> last entry
        rows = rows * np.uint64(1_000_003) ^ hashed
    return digest_rows(len(events), columns, int(rows.sum(dtype=np.uint64)))


def digest_rows(n_rows: int, columns: Sequence[str], total: int) -> str:
    """Return the content hash of ``n_rows`` rows whose row hashes sum to ``total`` mod 2**64.

    Shared by :func:`hash_events` and the streaming path, which sums row hashes batch by batch.
    """
    text = f"{n_rows}:{','.join(columns)}:{total}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prepare_dataset(
    events: pd.DataFrame,
    config: ProjectConfig,
    name: str,
    vocab: Vocabulary | None = None,
    vocab_until: Literal["val", "test"] = "val",
    splits: Splits | None = None,
) -> PreparedData:
    """Split by time, fit the vocabulary on history, and build all three sample sets.

    Args:
        events: canonical events (``core.schema.conform``).
        config: the project configuration (``features`` and ``split`` are read).
        name: dataset name recorded in the fingerprint.
        vocab: reuse this vocabulary instead of fitting one (a warm start from the
            champion keeps its index space, so its embeddings stay meaningful).
        vocab_until: fit the vocabulary on events before this cutoff: ``"val"`` for model
            selection, ``"test"`` for the refit on train + validation.
        splits: use these cutoffs instead of deriving them from ``config.split`` (the refit
            keeps exactly the cutoffs its trials were selected on).

    Returns:
        Prepared arrays; train holds one sample per (user, train cutoff).

    Raises:
        ValueError: on leaky or history-less splits, or no samples in a split.
    """
    features = config.features
    splits = splits or make_splits(events, config.split, features)
    if vocab_until not in ("val", "test"):
        raise ValueError(f"vocab_until must be 'val' or 'test', got {vocab_until!r}")
    if vocab is None:
        until = splits.val if vocab_until == "val" else splits.test
        before = (pd.to_datetime(events["timestamp"], utc=True) < until).to_numpy()
        vocab = fit_vocabulary(events.loc[before, ["category_id"]], features)
    encoded = encode_events(events, vocab)
    train = build_features(encoded, splits.train, vocab, features)
    val = build_features(encoded, [splits.val], vocab, features)
    test = build_features(encoded, [splits.test], vocab, features)
    for split_name, arrays in (("train", train), ("val", val), ("test", test)):
        if len(arrays) == 0:
            raise ValueError(f"{name}: the {split_name} split has no samples")
        # Per distinct raw category: next_cats folds them all into the OOV index.
        arrays.extra[OOV_TRUTH] = count_oov_truth(events, arrays, vocab, features.horizon)
    fingerprint = DataFingerprint(
        dataset=name,
        rows=len(events),
        content_hash=hash_events(events),
        vocab_hash=vocab.hash,
        cutoffs=splits.to_dict(),
    )
    return PreparedData(
        vocab=vocab,
        spec=feature_spec(vocab, features),
        splits=splits,
        train=train,
        val=val,
        test=test,
        fingerprint=fingerprint,
    )


def prepare_refit_data(
    events: pd.DataFrame, config: ProjectConfig, data: PreparedData
) -> PreparedData:
    """``data`` rebuilt with a vocabulary fitted on every event before the test cutoff.

    For the refit on ``train + val``: same events, splits and samples as ``data``, but
    categories first seen in the validation period get their own index instead of OOV.
    Selection (the trials) keeps ``data``'s train-only vocabulary. Do not use it after a
    warm start from the champion, whose index space the refit must keep.

    Raises:
        ValueError: as :func:`prepare_dataset`.
    """
    return prepare_dataset(
        events, config, data.fingerprint.dataset, vocab_until="test", splits=data.splits
    )
