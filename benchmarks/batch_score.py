"""Batch scoring: the out-of-core ``interest predict`` path against scoring the log in memory.

    .venv/bin/python benchmarks/batch_score.py [--events 2000000] [--chunks 8]

Generates a synthetic canonical Parquet log and a reference-size (untrained) model bundle,
then runs each stage in a fresh subprocess so its peak RSS (``ru_maxrss``) is its own:

- ``in_memory`` (reference): read the whole log with pandas and score every user with one
  :func:`modelkit.scoring.score_events` call;
- ``out_of_core``: :func:`pipelines.batch_score.score_file`, the path ``interest predict``
  runs (one read, user-hash buckets of ``events / chunks`` rows, Parquet appended per bucket).

Prints users/s and peak RSS with the ratios out-of-core / in-memory and checks both give the
same table. Writes benchmarks/results/batch_score.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FEATURES = {"max_events": 50, "top_categories": 20, "n_periods": 4}


def prepare(n_events: int, folder: Path, seed: int) -> dict:
    """Write the log, the bundle and the cutoff into ``folder``."""
    import pandas as pd

    from core.config import ProjectConfig
    from core.features import feature_spec
    from core.vocab import fit_vocabulary
    from modelkit.builder import build_model
    from modelkit.bundle import save_bundle
    from modelkit.model_config import ModelConfig
    from synthlogs.generator import config_for_events, generate_events

    events = generate_events(config_for_events(n_events, seed=seed)).events
    events.to_parquet(folder / "events.parquet", index=False)
    config = ProjectConfig.model_validate({"features": FEATURES})
    vocab = fit_vocabulary(events, config.features)
    spec = feature_spec(vocab, config.features)
    meta = {"model_name": "interest-evolution", "version": "1"}
    save_bundle(
        folder / "bundle", build_model(ModelConfig(), spec), vocab, config.features, spec, meta
    )
    cutoff = (pd.Timestamp(events["timestamp"].max()) - pd.Timedelta("2D")).floor("D")
    return {
        "events": len(events),
        "users": int(events["user_id"].nunique()),
        "categories": vocab.size - 2,
        "cutoff": cutoff.isoformat(),
    }


def run_stage(stage: str, folder: Path, cutoff: str, chunks: int) -> dict:
    """Run one stage in this process; return seconds, users scored and peak RSS."""
    import pandas as pd

    from core.config import ProjectConfig
    from modelkit.bundle import load_bundle

    bundle = load_bundle(folder / "bundle")
    config = ProjectConfig.model_validate({"features": FEATURES, "data": {"format": "canonical"}})
    log = folder / "events.parquet"
    start = time.perf_counter()
    if stage == "in_memory":
        from modelkit.scoring import score_events

        table = score_events(bundle, pd.read_parquet(log), cutoff, top_k=10)
        table.to_parquet(folder / f"{stage}.parquet", index=False)
    else:
        import pyarrow.parquet as pq

        from pipelines.batch_score import score_file

        rows = pq.ParquetFile(log).metadata.num_rows
        score_file(
            config,
            bundle,
            log,
            cutoff,
            folder / f"{stage}.parquet",
            model_version="1",
            top_k=10,
            rows_per_chunk=max(1, rows // chunks),
        )
    seconds = time.perf_counter() - start
    users = pq_rows(folder / f"{stage}.parquet")
    return {
        "seconds": round(seconds, 2),
        "users_scored": users,
        "users_per_s": round(users / seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def pq_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def same_tables(folder: Path) -> bool:
    """Both stages' tables hold the same users, rankings and probabilities (1e-6)."""
    import numpy as np
    import pandas as pd

    a = pd.read_parquet(folder / "in_memory.parquet").sort_values("user_id", ignore_index=True)
    b = pd.read_parquet(folder / "out_of_core.parquet").sort_values("user_id", ignore_index=True)
    if list(a["user_id"]) != list(b["user_id"]):
        return False
    top = [[c["category_id"] for c in row] for row in a["next_categories"]]
    if top != [[c["category_id"] for c in row] for row in b["next_categories"]]:
        return False
    return all(np.allclose(a[c], b[c], atol=1e-6) for c in ("p_buy", "p_churn"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--chunks", type=int, default=8, help="buckets of the out-of-core run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cutoff", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:  # child process
        print(json.dumps(run_stage(args.stage, args.folder, args.cutoff, args.chunks)))
        return
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    with tempfile.TemporaryDirectory(prefix="batch-score-") as tmp:
        folder = Path(tmp)
        data = prepare(args.events, folder, args.seed)
        stages = {}
        for stage in ("in_memory", "out_of_core"):
            cmd = [sys.executable, __file__, "--stage", stage, "--folder", str(folder)]
            cmd += ["--cutoff", data["cutoff"], "--chunks", str(args.chunks)]
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            stages[stage] = json.loads(done.stdout.strip().splitlines()[-1])
        identical = same_tables(folder)
    ref, ooc = stages["in_memory"], stages["out_of_core"]
    ratios = {
        "throughput_ooc_over_memory": round(ooc["users_per_s"] / ref["users_per_s"], 3),
        "peak_rss_ooc_over_memory": round(ooc["peak_rss_mb"] / ref["peak_rss_mb"], 3),
    }
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    print(f"{data['events']:,} events, {data['users']:,} users, cutoff {data['cutoff']}")
    print(f"{'stage':<12} {'seconds':>8} {'users/s':>10} {'peak RSS MB':>12}")
    for name, row in stages.items():
        print(f"{name:<12} {row['seconds']:>8} {row['users_per_s']:>10} {row['peak_rss_mb']:>12}")
    print(f"ratios out-of-core / in-memory: {ratios}; identical tables: {identical}")
    print(f"load average: {' '.join(load)}")
    result = {
        "data": data,
        "chunks": args.chunks,
        "stages": stages,
        **ratios,
        "identical": identical,
        "loadavg": load,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    out = ROOT / "benchmarks" / "results" / "batch_score.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
