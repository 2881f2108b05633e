"""``train.input = "stream"``: trials and refit train on shards through ``tf.data``.

The in-memory path hands ``fit_model`` whole arrays; the streamed one writes (or finds)
``part-*.npz`` shards and hands it a :func:`training.stream_input.shard_dataset`, with a
bounded sample of the shards for the prior initialisation, and scores validation shard by
shard (:func:`training.stream_input.evaluate_shards`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras

from core.arrays import SequenceArrays
from core.config import ProjectConfig
from core.dataset import PreparedData
from training.fit import predict_inputs
from training.stream_input import (
    evaluate_shards,
    sample_shards,
    shard_dataset,
    shard_paths,
    write_shards,
)

if TYPE_CHECKING:
    import tensorflow as tf

#: Samples read into memory for the priors (popularity, repeat share, buy/churn fits) and
#: pre-training; a log with fewer samples gives the in-memory path's initialisation exactly.
PRIOR_ROWS = 200_000


@dataclass
class StreamedSplits:
    """Shards of the splits a job trains and selects on, and the priors' sample."""

    train: list[Path]
    val: list[Path]
    prior: SequenceArrays
    share: float = 1.0  # the hash-chosen user share streamed (``train.trial_share``)


def write_streamed(
    config: ProjectConfig, data: PreparedData, folder: Path, *, refit: bool = False
) -> StreamedSplits:
    """Write ``data``'s train (with ``refit``: train + validation) and validation shards.

    Data prepared out of core (``data.shards``, :mod:`training.stream_data`) already has
    its full splits' shards there: they are used as they are and nothing is written.
    Trials (not ``refit``) stream only the ``train.trial_share`` of users.
    """
    if data.shards is not None:
        train, val = shard_paths(data.shards, ("train",)), shard_paths(data.shards, ("val",))
    else:
        rows = config.train.shard_rows
        train = write_shards(data.train, folder / "train", rows)
        val = write_shards(data.val, folder / "val", rows)
    if refit:
        train = train + val
    share = 1.0 if refit else config.train.trial_share
    return StreamedSplits(train, val, sample_shards(train, PRIOR_ROWS), share)


def stream_for(
    config: ProjectConfig, paths: list[Path], seed: int, share: float = 1.0
) -> tf.data.Dataset:
    """The training batches of ``paths`` with ``train``'s batch size and shuffle buffer."""
    return shard_dataset(
        paths,
        batch_size=config.train.batch_size,
        shuffle_buffer=config.train.shuffle_buffer,
        seed=seed,
        share=share,
    )


def fit_inputs(
    config: ProjectConfig, data: PreparedData, streamed: StreamedSplits | None, seed: int
) -> dict[str, Any]:
    """``fit_model``'s ``train`` and ``stream`` arguments for either input mode."""
    if streamed is None:
        return {"train": data.train}
    stream = stream_for(config, streamed.train, seed, streamed.share)
    return {"train": streamed.prior, "stream": stream}


def evaluate_val(
    model: keras.Model, data: PreparedData, streamed: StreamedSplits | None
) -> dict[str, float]:
    """Validation metrics: whole arrays in memory, or accumulated shard by shard."""
    if streamed is None:
        from evaluation.metrics import evaluate_predictions
        from training.fit import predict_arrays

        return evaluate_predictions(predict_arrays(model, data.val), data.val)
    return evaluate_shards(
        lambda inputs: predict_inputs(model, inputs), streamed.val, share=streamed.share
    )
