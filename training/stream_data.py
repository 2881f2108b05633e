"""Stream-mode data for ``interest tune``: out-of-core shards, bounded samples in memory.

With ``train.input = "stream"`` nothing holds the whole log or its arrays:

1. :func:`eventlogs.stream.prepare_streaming` writes the selection shards (vocabulary
   fitted before the validation cutoff) and, for the refit, a second set with the
   vocabulary fitted before the test cutoff (as ``core.dataset.prepare_refit_data``);
2. a share of users, chosen by a hash of the id, is sized so that about
   ``train.eval_samples`` validation and test samples fall in it; their raw events are read
   in one bounded pass (:func:`eventlogs.subset.load_user_events`) for the baselines and
   the gate's re-scoring of the champion;
3. each :class:`core.dataset.PreparedData` points at its shards (``shards``) and holds
   that share's validation and test samples (plus up to ``train.eval_samples`` training
   samples): trials and the refit stream the shards, validation is scored shard by shard,
   and the test figures, the baselines, the model card and the gate use the test samples.

On a log with at most ``train.eval_samples`` validation and test samples the share is every
user, so the vocabulary, splits, fingerprint, baselines and test samples equal the
in-memory path's (only the training shuffle differs). Above it, the test metrics and the
baselines are those of the user share, and popularity is counted over its events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.arrays import FeatureSpec, SequenceArrays
from core.config import ProjectConfig
from core.dataset import DataFingerprint, PreparedData
from core.progress import Say
from core.splits import Splits
from core.vocab import Vocabulary
from eventlogs.loaders import LoadResult
from eventlogs.stream import StreamReport, prepare_streaming
from eventlogs.subset import in_user_share, load_user_events
from eventlogs.validation import ValidationReport
from training.stream_input import FIELDS, count_rows, iter_blocks, shard_paths

#: Default validation and test samples held in memory in stream mode (``train.eval_samples``:
#: test figures, baselines, card, gate); their users' raw events are loaded too.
SAMPLE_ROWS = 100_000


@dataclass
class StreamData:
    """What a stream-mode job trains on: shards, samples, and the sampled users' events."""

    loaded: LoadResult  # the sampled users' events; ``report`` counts the whole log
    data: PreparedData  # selection (trials): vocabulary fitted before the validation cutoff
    refit: PreparedData | None  # refit: vocabulary fitted before the test cutoff
    reports: list[StreamReport]


def read_sample(folder: Path, share: float = 1.0, max_rows: int | None = None) -> SequenceArrays:
    """The samples of one split folder's users in ``share``, with user ids and cutoffs.

    Args:
        folder: a split folder of ``part-*.npz`` shards.
        share: keep the samples of users :func:`eventlogs.subset.in_user_share` keeps.
        max_rows: stop after this many samples (the first shards').
    """
    names = ("user_id", "cutoff", *FIELDS)
    parts, rows = [], 0
    for path in shard_paths(folder):
        for block in iter_blocks(path, 16_384, names):
            keep = in_user_share(block["user_id"], share)
            parts.append({k: v[keep] for k, v in block.items()})
            rows += int(keep.sum())
            if max_rows is not None and rows >= max_rows:
                break
        if max_rows is not None and rows >= max_rows:
            break
    merged = {k: np.concatenate([p[k] for p in parts]) for k in names}
    return SequenceArrays(**{k: v[:max_rows] for k, v in merged.items()})


def splits_from(cutoffs: dict) -> Splits:
    """:class:`core.splits.Splits` back from ``Splits.to_dict`` (a fingerprint's cutoffs)."""
    return Splits(
        train=[pd.Timestamp(t) for t in cutoffs["train"]],
        val=pd.Timestamp(cutoffs["val"]),
        test=pd.Timestamp(cutoffs["test"]),
        horizon=pd.Timedelta(cutoffs["horizon"]),
    )


def data_from_shards(folder: Path, share: float, max_rows: int = SAMPLE_ROWS) -> PreparedData:
    """A shard folder of ``prepare_streaming`` as ``PreparedData`` holding bounded samples.

    Validation and test: the samples of the users in ``share``; train: the first
    ``max_rows``.
    """
    fingerprint = DataFingerprint(**json.loads((folder / "fingerprint.json").read_text()))
    return PreparedData(
        vocab=Vocabulary.load(folder / "vocab.json"),
        spec=FeatureSpec.from_json((folder / "feature_spec.json").read_text()),
        splits=splits_from(fingerprint.cutoffs),
        train=read_sample(folder / "train", max_rows=max_rows),
        val=read_sample(folder / "val", share),
        test=read_sample(folder / "test", share),
        fingerprint=fingerprint,
        shards=folder,
    )


def sample_share(folder: Path, max_rows: int = SAMPLE_ROWS) -> float:
    """The user share holding about ``max_rows`` validation and test samples of ``folder``."""
    largest = max(count_rows(shard_paths(folder, (split,))) for split in ("val", "test"))
    return min(1.0, max_rows / max(largest, 1))


def whole_log_report(report: StreamReport, data_format: str) -> ValidationReport:
    """The streaming pass's counts as the load report ``interest tune`` prints."""
    return ValidationReport(
        source=report.source,
        format=data_format,
        rows_read=report.rows_read,
        rows_kept=report.rows_kept,
        dropped=dict(report.dropped),
        notes=[*report.notes, f"streamed out of core in {report.buckets} bucket(s)"],
    )


def prepare_stream_data(
    config: ProjectConfig,
    source: Path,
    work: Path,
    *,
    name: str,
    vocab: Vocabulary | None = None,
    max_rows: int | None = None,
    say: Say | None = None,
) -> StreamData:
    """Build the selection (and refit) shards of ``source`` under ``work``, out of core.

    Args:
        config: the project configuration (``data``, ``features``, ``split``).
        source: canonical CSV or Parquet event log.
        work: folder for ``select/`` and ``refit/`` shards (about 3 kB per sample each).
        name: dataset name recorded in the fingerprint.
        vocab: the champion's vocabulary (warm start): reused, and no refit shards.
        max_rows: about how many validation and test samples to hold (sizes the share;
            default ``train.eval_samples``).
        say: progress of the streaming passes.

    Raises:
        DataValidationError: unusable log (see ``prepare_streaming``).
        ValueError: leaky or history-less splits, a split without samples.
    """
    if config.data.format != "canonical":
        raise ValueError(
            f"{source}: train.input = 'stream' reads only the canonical format, not "
            f"{config.data.format!r}; convert it first with interest data convert"
        )
    reports = [prepare_streaming(source, config, name, work / "select", vocab=vocab, say=say)]
    max_rows = max_rows or config.train.eval_samples
    share = sample_share(work / "select", max_rows)
    data = data_from_shards(work / "select", share, max_rows)
    refit = None
    if vocab is None:
        reports.append(
            prepare_streaming(source, config, name, work / "refit", vocab_until="test", say=say)
        )
        refit = data_from_shards(work / "refit", share, max_rows)
    if say is not None:
        say(f"loading the events of {share:.1%} of users (baselines, gate)")
    subset = load_user_events(source, config.data, share, work_dir=work)
    report = whole_log_report(reports[0], config.data.format)
    if share < 1.0:
        report.notes.append(
            f"test figures, baselines and the gate use a {share:.1%} user share "
            f"({len(data.test):,} test samples)"
        )
    if config.train.trial_share < 1.0:
        report.notes.append(
            f"Optuna trials train and select on a {config.train.trial_share:.1%} user share "
            "(train.trial_share); the refit trains on every user"
        )
    return StreamData(LoadResult(subset.events, report), data, refit, reports)
