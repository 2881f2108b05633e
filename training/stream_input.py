"""Streamed training input: sharded feature arrays read through ``tf.data`` in bounded memory.

Shards are the ``part-*.npz`` files of ``interest data features --streaming`` (or
:func:`write_shards`). Each shard is read **block by block** straight from its uncompressed
``.npz`` members (never a whole shard), blocks of several shards are interleaved, then
shuffled through a bounded buffer, batched and prefetched. Memory is about
``(shuffle_buffer + cycle * block_rows + prefetch * batch) * bytes per sample``, not the log.

Validation and test metrics are accumulated shard by shard (:class:`StreamingMetrics`)
and equal :func:`evaluation.metrics.evaluate_predictions` on the concatenated arrays.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.arrays import INPUT_NAMES, LABEL_NAMES, SequenceArrays
from evaluation.metrics import auc, f1_at, js_divergence, per_sample_ranking, trajectory_mse
from eventlogs.subset import in_user_share

if TYPE_CHECKING:  # TensorFlow loads when a dataset is built
    import tensorflow as tf

FIELDS = INPUT_NAMES + LABEL_NAMES
_HEADERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def write_shards(arrays: SequenceArrays, folder: Path, shard_rows: int) -> list[Path]:
    """Write ``arrays`` as uncompressed ``part-NNNNN.npz`` shards of ``shard_rows`` samples."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, begin in enumerate(range(0, len(arrays), shard_rows)):
        path = folder / f"part-{index:05d}.npz"
        arrays.select(np.arange(begin, min(begin + shard_rows, len(arrays)))).save(
            path, compress=False
        )
        paths.append(path)
    return paths


def shard_paths(folder: Path, splits: Sequence[str] = ()) -> list[Path]:
    """The shards of ``folder/<split>`` for each split (or of ``folder`` itself), sorted.

    Raises:
        FileNotFoundError: when no shard is found.
    """
    folders = [Path(folder) / s for s in splits] or [Path(folder)]
    paths = [p for f in folders for p in sorted(f.glob("part-*.npz"))]
    if not paths:
        raise FileNotFoundError(f"{', '.join(map(str, folders))}: no part-*.npz shards")
    return paths


def count_rows(paths: Sequence[Path], name: str = "cat") -> int:
    """Samples in ``paths``, from each shard's ``name`` array header (no data read)."""
    total = 0
    for path in paths:
        with zipfile.ZipFile(path) as z, z.open(f"{name}.npy") as stream:
            version = np.lib.format.read_magic(stream)
            total += _HEADERS[version](stream)[0][0]
    return total


def iter_blocks(path: Path, block_rows: int, names: Sequence[str] = FIELDS) -> Iterator[dict]:
    """Yield ``names`` of one shard in blocks of ``block_rows`` rows, reading only each block.

    Raises:
        ValueError: a member is compressed or its rows disagree (not a ``write_shards``
            / streaming shard).
    """
    with zipfile.ZipFile(path) as z:
        streams, meta = {}, {}
        try:
            for name in names:
                info = z.getinfo(f"{name}.npy")
                if info.compress_type != zipfile.ZIP_STORED:
                    raise ValueError(f"{path}: {name} is compressed; write shards uncompressed")
                stream = streams[name] = z.open(info)
                version = np.lib.format.read_magic(stream)
                shape, fortran, dtype = _HEADERS[version](stream)
                if fortran or dtype.hasobject:
                    raise ValueError(f"{path}: {name} is not a C-ordered numeric array")
                meta[name] = (shape, dtype)
            rows = {shape[0] for shape, _ in meta.values()}
            if len(rows) != 1:
                raise ValueError(f"{path}: fields have different row counts {sorted(rows)}")
            n = rows.pop()
            for begin in range(0, n, block_rows):
                take = min(block_rows, n - begin)
                block = {}
                for name, (shape, dtype) in meta.items():
                    count = take * int(np.prod(shape[1:], dtype=np.int64))
                    raw = streams[name].read(count * dtype.itemsize)
                    block[name] = np.frombuffer(raw, dtype).reshape((take, *shape[1:]))
                yield block
        finally:
            for stream in streams.values():
                stream.close()


def iter_share(
    path: Path, block_rows: int, share: float = 1.0, names: Sequence[str] = FIELDS
) -> Iterator[dict]:
    """:func:`iter_blocks`, keeping only the rows of users ``in_user_share(..., share)`` keeps."""
    if share >= 1.0:
        yield from iter_blocks(path, block_rows, names)
        return
    for block in iter_blocks(path, block_rows, (*names, "user_id")):
        keep = in_user_share(block.pop("user_id"), share)
        if keep.any():
            yield {k: v[keep] for k, v in block.items()}


def _signature(path: Path) -> dict:
    import tensorflow as tf

    block = next(iter_blocks(path, 1))
    return {k: tf.TensorSpec((None, *v.shape[1:]), tf.as_dtype(v.dtype)) for k, v in block.items()}


def shard_dataset(
    paths: Sequence[Path],
    *,
    batch_size: int,
    shuffle_buffer: int = 10_000,
    block_rows: int = 1_024,
    cycle: int = 4,
    seed: int = 0,
    shuffle: bool = True,
    drop_remainder: bool = False,
    share: float = 1.0,
) -> tf.data.Dataset:
    """``(inputs, targets)`` batches over ``paths`` for ``model.fit``, shuffled across shards.

    Args:
        paths: shard files (their order is shuffled each epoch when ``shuffle``).
        batch_size: samples per batch (the last batch may be smaller).
        shuffle_buffer: samples held for shuffling (bounds memory with ``block_rows``).
        block_rows: rows read from a shard at a time.
        cycle: shards read concurrently (interleaved block by block).
        seed: shuffling seed (epochs reshuffle from it).
        shuffle: False keeps the file and row order (evaluation).
        drop_remainder: drop the last, smaller batch (data-parallel workers split every
            batch into equal parts).
        share: stream only the samples of this hash-chosen share of users (``user_id``).
    """
    import tensorflow as tf

    signature = _signature(paths[0])

    def blocks(path: bytes) -> Iterator[dict]:
        yield from iter_share(Path(path.decode()), block_rows, share)

    files = tf.data.Dataset.from_tensor_slices([str(p) for p in paths])
    if shuffle:
        files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    data = files.interleave(
        lambda p: tf.data.Dataset.from_generator(blocks, args=(p,), output_signature=signature),
        cycle_length=min(cycle, len(paths)),
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE if shuffle else None,
        deterministic=True,
    ).unbatch()
    if shuffle:
        data = data.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)

    def split(row: dict) -> tuple[dict, dict]:
        targets = {k: row[k] for k in LABEL_NAMES}
        for head in ("buy", "churn"):
            targets[head] = tf.reshape(targets[head], (-1, 1))
        return {k: row[k] for k in INPUT_NAMES}, targets

    return data.batch(batch_size, drop_remainder).map(split).prefetch(tf.data.AUTOTUNE)


def sample_shards(paths: Sequence[Path], max_rows: int) -> SequenceArrays:
    """Up to ``max_rows`` samples from the first shards (users are hash-spread across them).

    For what needs arrays rather than a stream (prior initialisation, pre-training); on a
    log that fits in ``max_rows`` this is every sample, so both input modes start alike.
    The samples keep their cutoffs (``popularity_from="latest"`` selects by them).
    """
    names = (*FIELDS, "cutoff")
    parts, rows = [], 0
    for path in paths:
        for block in iter_blocks(path, max(1, min(65_536, max_rows - rows)), names):
            parts.append(block)
            rows += len(block["cat"])
            if rows >= max_rows:
                break
        if rows >= max_rows:
            break
    merged = {k: np.concatenate([p[k] for p in parts]) for k in names}
    return SequenceArrays(user_id=np.zeros(rows, dtype=str), **merged)


@dataclass
class StreamingMetrics:
    """Batch-wise accumulation of :func:`evaluation.metrics.evaluate_predictions`.

    Ranking and trajectory metrics keep sums; AUC and F1 keep one score and one label per
    sample (two floats, not the ``(n, V)`` predictions).
    """

    k: int = 10
    _ranked: list[np.ndarray] = field(default_factory=list)
    _traj: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])
    _probs: dict[str, list[np.ndarray]] = field(default_factory=dict)
    n: int = 0

    def update(self, pred: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> None:
        """Add one block of predictions and the labels of the same rows."""
        per = per_sample_ranking(np.asarray(pred["next_cats"]), labels["next_cats"], self.k)
        self._ranked.append(np.stack([per[f"recall_at_{self.k}"], per[f"ndcg_at_{self.k}"]], 1))
        truth = np.asarray(labels["trajectory"])
        m = int((truth.reshape(-1, truth.shape[-1]).sum(axis=1) > 0).sum())
        if m:
            js = js_divergence(np.asarray(pred["trajectory"]), truth)
            mse = trajectory_mse(np.asarray(pred["trajectory"]), truth)
            self._traj[0] += js * m
            self._traj[1] += m
            self._traj[2] += mse * m * truth.shape[-1]
            self._traj[3] += m * truth.shape[-1]
        for head in ("buy", "churn"):
            self._probs.setdefault(head, []).append(np.ravel(pred[head]))
            self._probs.setdefault(f"{head}_y", []).append(np.ravel(labels[head]))
        self.n += len(per[f"recall_at_{self.k}"])

    def result(self) -> dict[str, float]:
        """The metrics of every row seen, as :func:`evaluate_predictions` names them."""
        ranked = np.concatenate(self._ranked)
        ranked = ranked[~np.isnan(ranked[:, 0])]
        nan = float("nan")
        out = {
            f"recall_at_{self.k}": float(ranked[:, 0].mean()) if len(ranked) else nan,
            f"ndcg_at_{self.k}": float(ranked[:, 1].mean()) if len(ranked) else nan,
            "n_ranked": float(len(ranked)),
        }
        probs = {k: np.concatenate(v) for k, v in self._probs.items()}
        for head in ("buy", "churn"):
            out[f"{head}_auc"] = auc(probs[f"{head}_y"], probs[head])
        out["trajectory_js"] = self._traj[0] / self._traj[1] if self._traj[1] else nan
        out["trajectory_mse"] = self._traj[2] / self._traj[3] if self._traj[3] else nan
        for head in ("buy", "churn"):
            out[f"{head}_f1"] = f1_at(probs[f"{head}_y"], probs[head])
        out["n_samples"] = float(self.n)
        return out


def evaluate_shards(
    predict: object,
    paths: Sequence[Path],
    k: int = 10,
    block_rows: int = 4_096,
    share: float = 1.0,
) -> dict[str, float]:
    """Score ``predict(inputs) -> outputs`` over every shard (``share`` of users), by block."""
    metrics = StreamingMetrics(k)
    for path in paths:
        for block in iter_share(path, block_rows, share):
            inputs = {name: block[name] for name in INPUT_NAMES}
            metrics.update(predict(inputs), {name: block[name] for name in LABEL_NAMES})
    return metrics.result()
