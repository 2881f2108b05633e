"""Benchmark the drift check on synthetic logs with and without injected interest shifts.

For each seed and shift size, a synthetic log is generated with ``synthlogs.generator``; the
reference is the profile of samples at cutoffs before the shift date (the training period),
the current window the profile of samples after it. Both go through
``core.features.build_features`` and ``core.profile.summarize_arrays`` with one vocabulary
fitted on the training period, as training and serving do. History is capped at 3 days
(``FeatureConfig.history``): only recently active users send requests, and an uncapped
history grows with the log's age (``seq_len`` and ``category_entropy`` drift by themselves).

Rates are per window size (``full``: every current sample, ``small``: ``--small`` rows) and
shift: ``false_alarm_rate`` (no shift, and no shift but ``seq_len`` scaled by 5%, the size
of the demo's false alarm) and ``detection_rate``. ``check_s`` times the decision (best of
3, and its CPU time) on 100,000 rows (resampled from one window: timing only, its rows
repeat) with the reference's cached statistics; the Evidently report and its HTML, built
after the decision, are timed apart.

Segment tests (:mod:`monitoring.segments`) are on (``segment_min_rows`` 400);
``--segment-min-rows 0 --out benchmarks/results/drift_no_segments.json`` gives the figures
without them. ``segment_alarm_rate`` is the share of windows that only a segment raised.

Run:  .venv/bin/python -m benchmarks.drift [--seeds 10] [--users 4000] [--workers 2]
Writes benchmarks/results/drift.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
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
from monitoring.drift import check_drift, monitored_columns
from monitoring.report import save_report
from monitoring.snapshot import build_snapshot
from monitoring.stats import ReferenceStats
from synthlogs.generator import SynthConfig, generate_events

SHIFTS = (0.0, 0.05, 0.1, 0.2, 0.4)
SHIFT_AT = "2024-01-15"
REFERENCE_DAYS = (8, 10, 12, 14)
CURRENT_DAYS = (17, 19, 21)
HISTORY = "3D"
RESULTS = Path(__file__).resolve().parent / "results" / "drift.json"
# Candidate defaults for core.config.MonitoringConfig, checked by this benchmark.
TUNED = {
    "fdr": 0.05,
    "min_ks_effect": 0.1,
    "min_chi2_effect": 0.1,
    "min_share_effect": 0.1,
    "drift_share": 0.05,
    "min_rows": 1000,
    "segment_min_rows": 400,  # per-segment tests (monitoring/segments.py); 0: off
}
# A pure sequence-length fluctuation (no interest shift) of the demo's false alarm's size.
SEQ_LEN_SCALE = 1.05
REPEATS = 3  # timed decisions on 100k rows


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


def _row(seed: int, shift: float, case: str, window: pd.DataFrame, result: Any) -> dict:
    return {
        "seed": seed,
        "shift": shift,
        "case": case,
        "n_reference": result.n_reference,
        "n_current": len(window),
        "status": result.status,
        "drifted": [c.column for c in result.drifted_columns],
        "drifted_segments": result.drifted_segments,
        "p_values": {c.column: float(f"{c.p_value:.3g}") for c in result.columns},
        "effects": {c.column: round(c.effect, 4) for c in result.columns},
    }


def run_case(args: tuple[int, float, int, dict[str, Any], int]) -> list[dict[str, Any]]:
    """Check one (seed, shift) log on the full current window and a small one."""
    seed, shift, n_users, overrides, small = args
    warnings.filterwarnings("ignore")
    config = MonitoringConfig().model_copy(update=overrides)
    reference, current = build_windows(seed, shift, n_users)
    columns = monitored_columns(reference, current)
    stats = ReferenceStats.from_frame(reference, *columns, segments=config)
    rows = []
    for size in (len(current), small):
        window = current.sample(min(size, len(current)), random_state=seed)
        cases = [("shift", window)]
        if shift == 0:
            scaled = window.assign(seq_len=(window["seq_len"] * SEQ_LEN_SCALE).round())
            cases.append(("seq_len", scaled))
        for case, frame in cases:
            result = check_drift(reference, frame, config, stats=stats)
            rows.append(_row(seed, shift, case, frame, result))
    return rows


def time_check(config: MonitoringConfig, n_rows: int = 100_000) -> dict[str, float]:
    """Time the decision on ``n_rows`` resampled logged rows, then the report after it."""
    warnings.filterwarnings("ignore")
    reference, current = build_windows(0, 0.0, 4000)
    rng = np.random.default_rng(0)
    for frame in (reference, current):
        frame["p_buy"] = rng.beta(1, 12, len(frame))
        frame["p_churn"] = rng.beta(2, 5, len(frame))
        frame["top_pred"] = frame["top_category"]
    big = current.sample(n_rows, replace=True, random_state=0).reset_index(drop=True)
    start = time.perf_counter()
    stats = ReferenceStats.from_frame(
        reference, *monitored_columns(reference, big), segments=config
    )
    stats_s = time.perf_counter() - start
    walls, cpus = [], []
    for _ in range(REPEATS):
        start, cpu = time.perf_counter(), time.process_time()
        result = check_drift(reference, big, config, stats=stats)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    context = {"model_version": "0", "since": "?", "until": "?", "reference": "benchmark"}
    start = time.perf_counter()
    result.snapshot = build_snapshot(reference, big, result, config, context)
    report_s = time.perf_counter() - start
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        save_report(result, Path(folder), "timing", context)
    html_s = time.perf_counter() - start
    return {
        "rows": n_rows,
        "check_s": round(min(walls), 3),  # best of REPEATS: the machine is shared
        "check_wall_s": [round(w, 3) for w in walls],
        "check_cpu_s": round(min(cpus), 3),
        "stats_s": round(stats_s, 3),
        "report_s": round(report_s, 2),
        "html_json_s": round(html_s, 2),
    }


def summarize(rows: list[dict[str, Any]], small: int) -> dict[str, Any]:
    """False-alarm rates (no shift; seq_len fluctuation) and detection rate per shift and size."""
    frame = pd.DataFrame(rows)
    frame["alarm"] = frame["status"] == "drift"
    out: dict[str, Any] = {}
    for label, part in (
        ("full", frame[frame["n_current"] > small]),
        ("small", frame[frame["n_current"] <= small]),
    ):
        shifted = part[part["case"] == "shift"]
        by_shift = shifted.groupby("shift")["alarm"].mean()
        drivers = shifted[shifted["alarm"]].groupby("shift")["drifted"]
        out[label] = {
            "n_current_median": int(part["n_current"].median()),
            "false_alarm_rate": float(by_shift.get(0.0, float("nan"))),
            "seq_len_false_alarm_rate": float(part[part["case"] == "seq_len"]["alarm"].mean()),
            "detection_rate": {str(s): float(by_shift[s]) for s in by_shift.index if s > 0},
            "first_driver": {
                str(s): pd.Series([d[0] if d else "a segment" for d in ds]).value_counts().to_dict()
                for s, ds in drivers
            },
            "segment_alarm_rate": {  # alarms that only a segment raised
                str(s): float(g.mean())
                for s, g in shifted.assign(
                    seg_only=shifted["alarm"] & (shifted["drifted"].str.len() == 0)
                ).groupby("shift")["seg_only"]
            },
        }
    return out


def main() -> None:
    """Run the benchmark and write benchmarks/results/drift.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--users", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--small", type=int, default=TUNED["min_rows"], help="small window rows")
    parser.add_argument("--segment-min-rows", type=int, default=TUNED["segment_min_rows"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    tuned = {**TUNED, "segment_min_rows": args.segment_min_rows}
    jobs = [(s, x, args.users, tuned, args.small) for s in range(args.seeds) for x in SHIFTS]
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        rows = [r for case in pool.map(run_case, jobs) for r in case]
    sweep_s = time.perf_counter() - start
    timing = time_check(MonitoringConfig().model_copy(update=tuned))
    rates = summarize(rows, args.small)
    report = {
        "config": tuned,
        "seeds": args.seeds,
        "n_users": args.users,
        "false_alarm_rate": {k: v["false_alarm_rate"] for k, v in rates.items()},
        "detection_rate": {k: v["detection_rate"] for k, v in rates.items()},
        "check_s": timing["check_s"],
        "rates": rates,
        "timing": timing,
        "sweep_s": round(sweep_s, 1),
        "cases": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("config", "rates", "timing", "sweep_s")}, indent=1))


if __name__ == "__main__":
    main()
