"""Out-of-core feature building at scale: time and peak memory against the in-memory path.

    .venv/bin/python benchmarks/scale_features.py [--events 100000000] [--source FILE]
    .venv/bin/python benchmarks/scale_features.py --dask [--events 10000000]

With ``--dask``: ``prepare_dask`` on a LocalCluster of 2 worker processes against
``prepare_streaming`` on the same log in the same run; writes ``distributed_over_single_time``
and ``identical`` (fingerprint, vocabulary and every shard array equal).

Reference, measured in the same run: ``load_events`` + ``prepare_dataset`` on a smaller log
(``--reference-events``, default 5M). Then ``prepare_streaming`` on that same log and on the
big one (``--source``, or generated with ``synthlogs.stream.write_synthetic_parquet``).
Every stage runs in its own subprocess so its peak RSS (``ru_maxrss``, self + children) is
its own. Prints a table of ratios and writes benchmarks/results/scale_features.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LIMIT_MB = 8 * 1024
DASK_WORKERS = 2


def generate(n_events: int, path: Path, seed: int) -> dict:
    """Write about ``n_events`` synthetic canonical events to ``path`` (Parquet)."""
    from synthlogs.generator import config_for_events

    config = config_for_events(n_events, seed=seed)
    start = time.perf_counter()
    try:
        from synthlogs.stream import write_synthetic_parquet
    except ImportError:  # the streaming generator is not there: small logs only
        from eventlogs.loaders import write_events
        from synthlogs.generator import generate_events

        write_events(generate_events(config).events, path)
        how = "generate_events"
    else:
        write_synthetic_parquet(config, path, truth=False)
        how = "write_synthetic_parquet"
    return {"generator": how, "seconds": time.perf_counter() - start}


def run_stage(stage: str, path: Path, out: Path) -> dict:
    """Run one stage in this process; return its figures."""
    from core.config import ProjectConfig

    config = ProjectConfig.model_validate({"data": {"format": "canonical"}})
    start = time.perf_counter()
    if stage == "in_memory":
        from core.dataset import prepare_dataset
        from eventlogs.loaders import load_events

        events = load_events(path, config.data).events
        data = prepare_dataset(events, config, "bench")
        rows, samples = len(events), len(data.train) + len(data.val) + len(data.test)
        fingerprint, extra = data.fingerprint.to_dict(), {}
    elif stage == "dask":
        from eventlogs.dask_features import dask_client, prepare_dask

        with dask_client(workers=DASK_WORKERS) as client:
            start = time.perf_counter()  # the cluster's start-up is not the engine's work
            report = prepare_dask(path, config, "bench", out, client)
        rows, samples = report.rows_kept, sum(report.samples.values())
        fingerprint = report.fingerprint.to_dict()
        extra = {"buckets": report.buckets, "stage_seconds": report.stage_seconds}
    else:
        from eventlogs.stream import prepare_streaming

        report = prepare_streaming(path, config, "bench", out)
        rows, samples = report.rows_kept, sum(report.samples.values())
        fingerprint = report.fingerprint.to_dict()
        extra = {"buckets": report.buckets, "stage_seconds": report.stage_seconds}
    seconds = time.perf_counter() - start
    peak_kib = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    return {
        "stage": stage,
        "events": rows,
        "samples": samples,
        "seconds": seconds,
        "peak_rss_mb": peak_kib / 1024,  # Linux: KiB
        "fingerprint": fingerprint,
        **extra,
    }


def _child(args: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _table(rows: list[dict], ref: dict) -> str:
    ref_per_event = ref["seconds"] / ref["events"]
    head = f"{'stage':<22}{'events':>13}{'seconds':>10}{'events/s':>12}{'peak MB':>10}"
    head += f"{'time/ev x':>11}{'peak x':>8}  within 8 GB"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['name']:<22}{r['events']:>13,}{r['seconds']:>10.1f}"
            f"{r['events'] / r['seconds']:>12,.0f}{r['peak_rss_mb']:>10,.0f}"
            f"{r['seconds'] / r['events'] / ref_per_event:>11.2f}"
            f"{r['peak_rss_mb'] / ref['peak_rss_mb']:>8.2f}  "
            f"{'yes' if r['peak_rss_mb'] < LIMIT_MB else 'no'}"
        )
    return "\n".join(lines)


def same_shards(a: Path, b: Path) -> bool:
    """True when two output folders hold the same fingerprint and equal arrays, shard by shard."""
    from dataclasses import fields

    import numpy as np

    from core.arrays import SequenceArrays

    if (a / "fingerprint.json").read_text() != (b / "fingerprint.json").read_text():
        return False
    if (a / "vocab.json").read_text() != (b / "vocab.json").read_text():
        return False
    for split in ("train", "val", "test"):
        names = sorted(p.name for p in (a / split).glob("part-*.npz"))
        if names != sorted(p.name for p in (b / split).glob("part-*.npz")):
            return False
        for name in names:
            x, y = SequenceArrays.load(a / split / name), SequenceArrays.load(b / split / name)
            for f in fields(SequenceArrays):
                if f.name != "extra" and not np.array_equal(getattr(x, f.name), getattr(y, f.name)):
                    return False
    return True


def compare_dask(args: argparse.Namespace, work: Path) -> None:
    """Dask on 2 local worker processes vs the single-machine streaming pass, same log."""
    events = args.events or 10_000_000
    path = args.source or work / f"synth_{events}.parquet"
    generated = {}
    if not path.exists():
        gen = ["--stage", "generate", "--events", str(events), "--path", str(path)]
        generated = _child([*gen, "--seed", str(args.seed)])
    rows, outs = [], []
    for name, stage in (("streaming (reference)", "streaming"), ("dask, 2 workers", "dask")):
        out = work / f"out-{stage}"
        print(f"running {name} on {path} ...", file=sys.stderr, flush=True)
        rows.append(
            {
                "name": name,
                "source": str(path),
                **_child(["--stage", stage, "--path", str(path), "--out", str(out)]),
            }
        )
        outs.append(out)
    identical = same_shards(*outs)
    for out in outs:
        shutil.rmtree(out, ignore_errors=True)
    ratio = rows[1]["seconds"] / rows[0]["seconds"]
    print(_table(rows, rows[0]))
    print(f"distributed_over_single_time {ratio:.2f}  identical {identical}")
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    result = {
        "reference": "prepare_streaming (single-machine partition pass), same log, same run",
        "distributed_over_single_time": ratio,
        "identical": identical,
        "workers": DASK_WORKERS,
        "events": rows[0]["events"],
        "stages": rows,
        "generated": generated,
        "loadavg": load,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    target = ROOT / "benchmarks" / "results" / "scale_features.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(target.read_text()) if target.exists() else {}
    target.write_text(json.dumps(old | result, indent=1))
    print(f"written {target}")


def main() -> None:
    """Parse arguments, run every stage in a subprocess, print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, help="big log size (default 100M; 10M with --dask)")
    parser.add_argument(
        "--dask",
        action="store_true",
        help="compare Dask (2 local workers) with the streaming pass instead",
    )
    parser.add_argument("--source", type=Path, help="existing canonical file for the big log")
    parser.add_argument("--reference-events", type=int, default=5_000_000)
    parser.add_argument("--work", type=Path, help="folder for logs and shards (default: temp)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--wait", type=float, default=0, help="seconds to wait for --source to appear"
    )
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage == "generate":
        print(json.dumps(generate(args.events, args.path, args.seed)))
        return
    if args.stage:
        print(json.dumps(run_stage(args.stage, args.path, args.out)))
        return
    work = Path(args.work or tempfile.mkdtemp(prefix="scale-features-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.dask:
        compare_dask(args, work)
        return
    args.events = args.events or 100_000_000
    small = work / f"synth_{args.reference_events}.parquet"
    generated = {}
    if not small.exists():
        gen = ["--stage", "generate", "--events", str(args.reference_events)]
        generated["reference"] = _child([*gen, "--path", str(small), "--seed", str(args.seed)])
    big = args.source
    if big is None:
        big = work / f"synth_{args.events}.parquet"
        if not big.exists():
            gen = ["--stage", "generate", "--events", str(args.events), "--path", str(big)]
            generated["big"] = _child([*gen, "--seed", str(args.seed)])
    plan = [
        ("in_memory (reference)", "in_memory", small),
        ("streaming, same log", "streaming", small),
        ("streaming, big log", "streaming", big),
    ]
    rows = []
    for name, stage, path in plan:
        deadline = time.monotonic() + args.wait
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(10)  # another job may still be writing the big log
        out = work / f"out-{len(rows)}"
        print(f"running {name} on {path} ...", file=sys.stderr, flush=True)
        rows.append(
            {
                "name": name,
                "source": str(path),
                **_child(["--stage", stage, "--path", str(path), "--out", str(out)]),
            }
        )
        shutil.rmtree(out, ignore_errors=True)
    same = rows[0]["fingerprint"] == rows[1]["fingerprint"]
    print(_table(rows, rows[0]))
    print(f"streaming fingerprint equals in-memory on the reference log: {'yes' if same else 'no'}")
    result = {
        "reference": "in_memory (load_events + prepare_dataset)",
        "stages": rows,
        "generated": generated,
        "fingerprint_equal": same,
        "limit_mb": LIMIT_MB,
        "machine": {"python": platform.python_version(), "cpus": platform.machine()},
    }
    target = ROOT / "benchmarks" / "results" / "scale_features.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=1))
    print(f"written {target}")


if __name__ == "__main__":
    main()
