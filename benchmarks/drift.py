"""Benchmark the drift check on synthetic logs with and without injected interest shifts.

For each seed and shift size, a synthetic log is generated with ``synthlogs.generator``; the
reference is the profile of samples at cutoffs before the shift date (the training period),
the current window the profile of samples after it. Both go through
``core.features.build_features`` and ``core.profile.summarize_arrays`` with one vocabulary
fitted on the training period, as training and serving do. History is capped at 3 days
(``FeatureConfig.history``): only recently active users send requests, and an uncapped
history grows with the log's age (``seq_len`` and ``category_entropy`` drift by themselves).

Run:  .venv/bin/python -m benchmarks.drift [--seeds 10] [--users 4000] [--workers 2]
Writes benchmarks/results/drift.json.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.config import FeatureConfig, MonitoringConfig
from core.features import build_features, encode_events
from core.profile import summarize_arrays
from core.vocab import fit_vocabulary
from monitoring.drift import check_drift
from synthlogs.generator import SynthConfig, generate_events

SHIFTS = (0.0, 0.05, 0.1, 0.2, 0.4)
SHIFT_AT = "2024-01-15"
REFERENCE_DAYS = (8, 10, 12, 14)
CURRENT_DAYS = (17, 19, 21)
HISTORY = "3D"
RESULTS = Path(__file__).resolve().parent / "results" / "drift.json"
# Candidate defaults for core.config.MonitoringConfig, checked by this benchmark.
TUNED = {"stattest": "psi", "stattest_threshold": 0.05, "drift_share": 0.05, "min_rows": 1000}


def build_windows(seed: int, shift: float, n_users: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (reference, current) profiles for one synthetic log."""
    config = SynthConfig(
        n_users=n_users,
        n_days=28,
        seed=seed,
        shift_at=SHIFT_AT if shift > 0 else None,
        shift_fraction=shift if shift > 0 else 0.2,
    )
    events = generate_events(config).events
    features = FeatureConfig(history=HISTORY)
    first_cutoff = pd.Timestamp(f"2024-01-{REFERENCE_DAYS[0]:02d}", tz="UTC")
    vocab = fit_vocabulary(events[events["timestamp"] < first_cutoff], features)
    encoded = encode_events(events, vocab)
    frames = []
    for days in (REFERENCE_DAYS, CURRENT_DAYS):
        cutoffs = [pd.Timestamp(f"2024-01-{d:02d}") for d in days]
        arrays = build_features(encoded, cutoffs, vocab, features, with_labels=False)
        profile = summarize_arrays(arrays, vocab.decode)
        frames.append(profile)
    return frames[0], frames[1]


def run_case(args: tuple[int, float, int, dict[str, Any], int]) -> list[dict[str, Any]]:
    """Check one (seed, shift) log on the full current window and a small one."""
    seed, shift, n_users, overrides, small = args
    warnings.filterwarnings("ignore")
    config = MonitoringConfig().model_copy(update=overrides)
    reference, current = build_windows(seed, shift, n_users)
    rows = []
    for size in (len(current), small):
        window = current.sample(min(size, len(current)), random_state=seed)
        result = check_drift(reference, window, config, seed=seed, with_quality=False)
        rows.append(
            {
                "seed": seed,
                "shift": shift,
                "n_reference": result.n_reference,
                "n_current": result.n_current,
                "status": result.status,
                "share_drifted": result.share_drifted,
                "drifted": [c.column for c in result.drifted_columns],
                "scores": {c.column: round(c.score, 4) for c in result.columns},
            }
        )
    return rows


def time_check(config: MonitoringConfig, n_rows: int = 100_000) -> dict[str, float]:
    """Time one full check (with data quality) on ``n_rows`` resampled logged rows."""
    warnings.filterwarnings("ignore")
    reference, current = build_windows(0, 0.0, 4000)
    rng = np.random.default_rng(0)
    for frame in (reference, current):
        frame["p_buy"] = rng.beta(1, 12, len(frame))
        frame["p_churn"] = rng.beta(2, 5, len(frame))
        frame["top_pred"] = frame["top_category"]
    big = current.sample(n_rows, replace=True, random_state=0).reset_index(drop=True)
    start = time.perf_counter()
    result = check_drift(reference, big, config)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    result.snapshot.json()
    json_s = time.perf_counter() - start
    return {"rows": n_rows, "check_s": round(seconds, 2), "json_s": round(json_s, 2)}


def summarize(rows: list[dict[str, Any]], small: int) -> dict[str, Any]:
    """False-alarm rate (no shift) and detection rate per shift, per window size."""
    frame = pd.DataFrame(rows)
    frame["alarm"] = frame["status"] == "drift"
    out: dict[str, Any] = {}
    for label, part in (
        ("full", frame[frame["n_current"] > small]),
        ("small", frame[frame["n_current"] <= small]),
    ):
        by_shift = part.groupby("shift")["alarm"].mean()
        out[label] = {
            "n_current_median": int(part["n_current"].median()),
            "false_alarm_rate": float(by_shift.get(0.0, float("nan"))),
            "detection_rate": {str(s): float(by_shift[s]) for s in by_shift.index if s > 0},
        }
    return out


def main() -> None:
    """Run the benchmark and write benchmarks/results/drift.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--users", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--small", type=int, default=TUNED["min_rows"], help="small window rows")
    args = parser.parse_args()
    jobs = [(s, x, args.users, TUNED, args.small) for s in range(args.seeds) for x in SHIFTS]
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        rows = [r for case in pool.map(run_case, jobs) for r in case]
    sweep_s = time.perf_counter() - start
    timing = time_check(MonitoringConfig().model_copy(update=TUNED))
    report = {
        "config": TUNED,
        "seeds": args.seeds,
        "n_users": args.users,
        "rates": summarize(rows, args.small),
        "timing": timing,
        "sweep_s": round(sweep_s, 1),
        "cases": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("config", "rates", "timing", "sweep_s")}, indent=1))


if __name__ == "__main__":
    main()
