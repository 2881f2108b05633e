"""Data-parallel training on feature shards with ``tf.distribute.MultiWorkerMirroredStrategy``.

Every worker runs the same program (``interest fit SHARDS --out DIR``) with its own
``TF_CONFIG``; with two or more workers named there the model is built under the strategy's
scope and ``model.fit`` all-reduces gradients (RING collectives: CPU-only workers talk over
gRPC). Each worker reads every shard and keeps its slice of every global batch (``DATA``
auto-sharding), so the global batches, and hence the updates, are those of a single-worker
run with the same ``train.batch_size`` and seed. Only the chief (worker 0) writes ``out``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.arrays import INPUT_NAMES, FeatureSpec
from core.config import ProjectConfig
from training.fit import fit_model, predict_inputs
from training.search import TrialPlan
from training.stream_input import iter_blocks, sample_shards, shard_dataset, shard_paths
from training.streamed import PRIOR_ROWS

if TYPE_CHECKING:
    import tensorflow as tf


@dataclass
class DistributedFit:
    """What one worker of a (possibly multi-worker) fit did."""

    workers: int
    index: int
    epochs: int
    seconds: float
    history: list[dict[str, float]]
    model: Any = field(default=None, repr=False)  # the fitted keras.Model (chief and workers)

    @property
    def is_chief(self) -> bool:
        """Worker 0 writes the outputs."""
        return self.index == 0


def cluster_from_env(env: dict[str, str] | None = None) -> tuple[int, int]:
    """``(workers, this worker's index)`` from ``TF_CONFIG`` (``(1, 0)`` without one).

    Raises:
        ValueError: ``TF_CONFIG`` is not JSON or names no worker list.
    """
    text = (os.environ if env is None else env).get("TF_CONFIG", "")
    if not text.strip():
        return 1, 0
    try:
        spec = json.loads(text)
        workers = spec["cluster"]["worker"]
        index = int(spec.get("task", {}).get("index", 0))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"TF_CONFIG must be JSON with cluster.worker and task.index: {exc}"
        ) from exc
    return len(workers), index


def tf_config(workers: list[str], index: int) -> str:
    """The ``TF_CONFIG`` of worker ``index`` in a cluster of ``workers`` (``host:port``)."""
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def make_strategy(workers: int) -> tf.distribute.Strategy | None:
    """MultiWorkerMirroredStrategy with RING collectives for 2+ workers, else ``None``.

    Create it first thing in the process: collectives are configured at TF start-up.
    """
    if workers < 2:
        return None
    import tensorflow as tf

    class NestedReduceStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        """MWMS whose ``reduce`` Keras 3 ``fit`` can call (two Keras 3.15 + TF 2.21 bugs).

        ``fit`` reduces one distributed batch to build the model symbolically: with dict
        inputs that is a nested structure, which MWMS rejects ("Attempt to convert a value
        ({'cat': PerReplica...}) ... to a Tensor"), so each leaf is reduced alone. It then
        reduces the per-step logs, scalars, with ``axis=0`` ("Invalid reduction dimension 0
        for input with 0 dimensions", tensorflow#72388): scalars are reduced across
        replicas only.
        """

        def reduce(self, reduce_op: Any, value: Any, axis: Any = None) -> Any:
            parent = super()

            def leaf(v: Any) -> Any:
                rank = self.experimental_local_results(v)[0].shape.rank
                return parent.reduce(reduce_op, v, None if rank == 0 else axis)

            return tf.nest.map_structure(leaf, value)

    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING
    )
    return NestedReduceStrategy(communication_options=options)


def worker_batches(
    config: ProjectConfig, paths: list[Path], strategy: tf.distribute.Strategy | None
) -> tf.data.Dataset | tf.distribute.DistributedDataset:
    """The global batches of ``paths``; under a strategy, each worker's slice of each.

    Every worker builds the same shuffled global batches (same seed) and keeps rows
    ``[i * b, (i + 1) * b)`` of each, ``b = batch_size / workers``: step ``k`` of the
    cluster sees exactly the single-worker run's batch ``k``. The last, smaller batch is
    dropped in both cases so it can always be split evenly.
    """
    kwargs = {
        "batch_size": config.train.batch_size,
        "shuffle_buffer": config.train.shuffle_buffer,
        "seed": config.train.seed,
        "drop_remainder": True,
    }
    if strategy is None:
        data = shard_dataset(paths, **kwargs)
        # Under a strategy Keras 3 opens the dataset once before training (to build the
        # model), which moves the per-epoch reshuffle on by one; do the same here.
        next(iter(data))
        return data
    import tensorflow as tf

    def per_worker(context: tf.distribute.InputContext) -> tf.data.Dataset:
        size = context.get_per_replica_batch_size(config.train.batch_size)
        begin = context.input_pipeline_id * size

        def part(x: dict, y: dict) -> tuple[dict, dict]:
            return tf.nest.map_structure(lambda t: t[begin : begin + size], (x, y))

        return shard_dataset(paths, **kwargs).map(part)

    options = tf.distribute.InputOptions(experimental_fetch_to_device=False)
    return strategy.distribute_datasets_from_function(per_worker, options)


def fit_shards(
    config: ProjectConfig,
    shards: Path,
    plan: TrialPlan,
    out: Path,
    *,
    epochs: int | None = None,
    splits: tuple[str, ...] = ("train", "val"),
) -> DistributedFit:
    """Fit ``plan`` on the shards of ``splits`` (the refit's train + validation), streamed.

    Args:
        config: ``train`` (batch size = global batch, seed, shuffle buffer, epochs).
        shards: output of ``interest data features --streaming`` (or ``--engine dask``).
        plan: the architecture (e.g. the study's best trial).
        out: the chief writes ``model.keras``, ``fit.json`` and ``pred_sample.npz``
            (predictions on the first 256 test samples, to compare runs).
        epochs: default ``train.epochs``.
    """
    workers, index = cluster_from_env()
    strategy = make_strategy(workers)  # before any other TensorFlow work
    spec = FeatureSpec.from_json((Path(shards) / "feature_spec.json").read_text())
    paths = shard_paths(shards, splits)
    data = worker_batches(config, paths, strategy)
    start = time.perf_counter()
    result = fit_model(
        plan,
        spec,
        sample_shards(paths, PRIOR_ROWS),
        epochs=epochs or config.train.epochs,
        batch_size=config.train.batch_size,
        seed=config.train.seed,
        pretrain_epochs=0,  # pre-training reads arrays; the streamed refit starts from scratch
        stream=data,
        strategy=strategy,
    )
    seconds = time.perf_counter() - start
    fit = DistributedFit(workers, index, result.epochs, seconds, result.history, result.model)
    if fit.is_chief:
        out.mkdir(parents=True, exist_ok=True)
        result.model.save(out / "model.keras")
        sample = next(iter_blocks(shard_paths(shards, ("test",))[0], 256, INPUT_NAMES))
        pred = predict_inputs(result.model, sample)
        np.savez(out / "pred_sample.npz", **pred)
        summary: dict[str, Any] = {
            **{k: v for k, v in fit.__dict__.items() if k != "model"},
            "plan": plan.params(),
        }
        (out / "fit.json").write_text(json.dumps(summary, indent=1, default=float))
    return fit
