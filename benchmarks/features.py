"""Feature-building throughput and memory against a plain CSV read.

    .venv/bin/python benchmarks/features.py [--events 10000000]

Generates synthetic events (synthlogs.generator), writes them to CSV, then runs each stage in a fresh
subprocess so its peak RSS (``ru_maxrss``) is its own: plain ``pandas.read_csv``,
``load_events``, ``load_events`` + ``prepare_dataset``. Also times single-request encoding
(one user, 2,000 events, ``build_features(..., with_labels=False)``). Writes
benchmarks/results/features.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def write_csv(n_events: int, path: Path, seed: int) -> dict:
    """Generate about ``n_events`` synthetic events and write them as canonical CSV."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from synthlogs.generator import config_for_events, generate_events

    start = time.perf_counter()
    events = generate_events(config_for_events(n_events, seed=seed)).events
    seconds = time.perf_counter() - start
    table = pa.Table.from_pandas(events, preserve_index=False)
    stamp = pc.strftime(table["timestamp"], format="%Y-%m-%dT%H:%M:%SZ")
    table = table.set_column(table.schema.get_field_index("timestamp"), "timestamp", stamp)
    pacsv.write_csv(table, path)
    return {
        "events": len(events),
        "users": int(events["user_id"].nunique()),
        "categories": int(events["category_id"].nunique()),
        "generate_s": round(seconds, 2),
        "csv_mb": round(path.stat().st_size / 2**20, 1),
    }


def run_stage(stage: str, path: Path) -> dict:
    """Run one stage in this process; return seconds, sub-timings and peak RSS."""
    from core.config import DataConfig, ProjectConfig

    timings: dict[str, float] = {}
    start = time.perf_counter()
    if stage == "csv_read":
        import pandas as pd

        rows = len(pd.read_csv(path))
    else:
        from eventlogs.loaders import load_events

        events = load_events(path, DataConfig(format="canonical")).events
        rows = len(events)
        timings["load_s"] = time.perf_counter() - start
        if stage == "prepare":
            from core.dataset import prepare_dataset

            mid = time.perf_counter()
            data = prepare_dataset(events, ProjectConfig(), "bench")
            timings["prepare_s"] = time.perf_counter() - mid
            timings["samples"] = len(data.train) + len(data.val) + len(data.test)
            timings["vocab_size"] = data.vocab.size
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {"stage": stage, "rows": rows, "seconds": seconds, "peak_rss_mb": peak_mb, **timings}


def time_single_request(repeats: int = 300) -> dict:
    """Median wall and CPU time of build_features on one user with 2,000 events."""
    import numpy as np
    import pandas as pd

    from core.config import FeatureConfig
    from core.features import build_features
    from core.schema import conform
    from core.vocab import Vocabulary

    rng = np.random.default_rng(0)
    n = 2000
    times = np.sort(rng.integers(0, 14 * 86400, n))
    events = conform(
        pd.DataFrame(
            {
                "user_id": "user-1",
                "item_id": rng.integers(0, 10**6, n).astype(str),
                "category_id": rng.integers(0, 400, n).astype(str),
                "behavior": rng.choice(["view", "fav", "cart", "buy"], n),
                "timestamp": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(times, "s"),
            }
        )
    )
    vocab = Vocabulary([str(i) for i in range(300)], top_categories=30)
    config = FeatureConfig()
    cutoff = [pd.Timestamp("2024-01-15", tz="UTC")]
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        build_features(events, cutoff, vocab, config, with_labels=False)
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return {
        "events": n,
        "median_ms": round(1e3 * float(np.median(wall)), 3),
        "p90_ms": round(1e3 * float(np.percentile(wall, 90)), 3),
        "median_cpu_ms": round(1e3 * float(np.median(cpu)), 3),
    }


def _child(stage: str, path: Path) -> dict:
    cmd = [sys.executable, __file__, "--stage", stage, "--csv", str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"stage {stage} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/features.json")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(run_stage(args.stage, args.csv)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.csv"
        data = write_csv(args.events, path, args.seed)
        stages = {s: _child(s, path) for s in ("csv_read", "load", "prepare")}
    single = time_single_request()
    base = stages["csv_read"]["seconds"]
    print(f"{data['events']:,} events, {data['users']:,} users, {data['csv_mb']} MB CSV")
    print(f"{'stage':<34}{'seconds':>9}{'events/s':>13}{'x csv read':>12}{'peak MB':>10}")
    labels = {
        "csv_read": "plain CSV read (pandas.read_csv)",
        "load": "load_events (canonical)",
        "prepare": "load_events + prepare_dataset",
    }
    for name, row in stages.items():
        rate = row["rows"] / row["seconds"]
        ratio = row["seconds"] / base
        print(
            f"{labels[name]:<34}{row['seconds']:>9.2f}{rate:>13,.0f}{ratio:>12.2f}"
            f"{row['peak_rss_mb']:>10,.0f}"
        )
    prep = stages["prepare"]
    print(f"prepare_dataset alone: {prep['prepare_s']:.2f} s, {prep['samples']:,} samples")
    print(f"single request (2,000 events): median {single['median_ms']} ms wall, ")
    print(f"    {single['median_cpu_ms']} ms CPU, p90 {single['p90_ms']} ms")
    result = {
        "data": data,
        "stages": stages,
        "single_request": single,
        "machine": {"cpus": platform.machine(), "python": platform.python_version()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
