"""Strictly temporal train/validation/test cutoffs, checked for label leakage.

A cutoff's labels look at ``[cutoff, cutoff + span)`` where ``span`` is the longer of the
horizon and the trajectory window (``future_periods`` periods). Defaults:

* test = last event time - horizon (set ``split.test_cutoff`` to override);
* val = test - span;
* ``n_train_cutoffs`` train cutoffs ``train_step`` apart (default one period), the last at
  val - span (at val - train_step with ``overlap_train_labels``: train labels may then run
  into the validation window, never into the test one).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from core.config import FeatureConfig, SplitConfig
from core.periods import duration_ns, period_ns


@dataclass(frozen=True)
class Splits:
    """Cutoffs of each split (UTC) and the label horizon."""

    train: list[pd.Timestamp]
    val: pd.Timestamp
    test: pd.Timestamp
    horizon: pd.Timedelta

    def to_dict(self) -> dict[str, object]:
        """ISO strings, for fingerprints and logs."""
        return {
            "train": [t.isoformat() for t in self.train],
            "val": self.val.isoformat(),
            "test": self.test.isoformat(),
            "horizon": str(self.horizon),
        }


def label_span(features: FeatureConfig) -> pd.Timedelta:
    """How far after a cutoff its labels look: max(horizon, future_periods periods)."""
    horizon = duration_ns(features.horizon, "features.horizon")
    trajectory = features.future_periods * period_ns(features.period)
    return pd.Timedelta(max(horizon, trajectory), unit="ns")


def _utc(text: str, field: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(text)
    except ValueError:
        raise ValueError(f"{field}={text!r} is not an ISO timestamp") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def make_splits(events: pd.DataFrame, split: SplitConfig, features: FeatureConfig) -> Splits:
    """Derive and validate the cutoffs.

    Args:
        events: canonical events (only ``timestamp`` is read).
        split: explicit cutoffs override the defaults above.
        features: horizon, period and trajectory window.

    Raises:
        ValueError: if events are empty, a train label window reaches the validation
            cutoff, the validation one reaches the test cutoff, or a cutoff has no history.
    """
    if len(events) == 0:
        raise ValueError("cannot derive split cutoffs from an empty event log")
    times = pd.to_datetime(events["timestamp"], utc=True)
    return splits_from_range(times.min(), times.max(), split, features)


def splits_from_range(
    first: pd.Timestamp, last: pd.Timestamp, split: SplitConfig, features: FeatureConfig
) -> Splits:
    """Derive and validate the cutoffs from the first and last event times alone.

    Out-of-core callers know only these two times, never the whole frame; see
    :func:`make_splits` for the rules and errors.
    """
    span = label_span(features)
    horizon = pd.Timedelta(duration_ns(features.horizon, "features.horizon"), unit="ns")
    test = _utc(split.test_cutoff, "split.test_cutoff") if split.test_cutoff else last - horizon
    val = _utc(split.val_cutoff, "split.val_cutoff") if split.val_cutoff else test - span
    step = pd.Timedelta(
        duration_ns(split.train_step, "split.train_step")
        if split.train_step
        else period_ns(features.period),
        unit="ns",
    )
    overlap = split.overlap_train_labels
    last_train = val - step if overlap else val - span
    train = [last_train - i * step for i in reversed(range(split.n_train_cutoffs))]
    splits = Splits(train=train, val=val, test=test, horizon=horizon)
    check_splits(splits, first, features, overlap_train_labels=overlap)
    return splits


def check_splits(
    splits: Splits,
    first_event: pd.Timestamp,
    features: FeatureConfig,
    *,
    overlap_train_labels: bool = False,
) -> None:
    """Raise ``ValueError`` on leakage between split label windows or history-less cutoffs.

    ``overlap_train_labels`` (``SplitConfig.overlap_train_labels``) lets train label
    windows run past the validation cutoff; train cutoffs must still precede it.
    """
    span = label_span(features)
    for cutoff in splits.train:
        if overlap_train_labels and cutoff < splits.val:
            continue
        if cutoff + span > splits.val:
            raise ValueError(
                f"leakage: train cutoff {cutoff} labels run to {cutoff + span}, past the "
                f"validation cutoff {splits.val}"
            )
    if splits.val + span > splits.test:
        raise ValueError(
            f"leakage: validation cutoff {splits.val} labels run to {splits.val + span}, "
            f"past the test cutoff {splits.test}"
        )
    for name, cutoff in [("train", min(splits.train)), ("val", splits.val), ("test", splits.test)]:
        if cutoff <= first_event:
            raise ValueError(
                f"{name} cutoff {cutoff} has no history: the first event is at {first_event} "
                "(use fewer train cutoffs, a shorter horizon or more data)"
            )
