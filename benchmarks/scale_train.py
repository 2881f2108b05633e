"""Out-of-core training: one epoch over streamed shards, peak memory, and stream vs memory speed.

    .venv/bin/python benchmarks/scale_train.py [--events 100000000] [--source FILE]

1. a canonical log (``--source``, or ``--events`` synthetic events) -> feature shards with
   ``prepare_streaming`` (skipped when ``--work`` already holds them);
2. ``stream_epoch``: one epoch of the reference model over every train shard through
   ``tf.data`` (``train.input = "stream"``): samples/s and peak RSS of that process;
3. on a subset that fits in memory (the first ``--subset-samples`` train samples, same run):
   one epoch from in-memory arrays (the reference) and one streamed from the same subset's
   shards; ``stream_over_memory_throughput`` = streamed samples/s / in-memory samples/s.

Every stage runs in its own subprocess so its peak RSS (``ru_maxrss``) is its own. Prints a
table and writes benchmarks/results/scale_train.json with ``peak_rss_mb`` (the full streamed
epoch) and ``stream_over_memory_throughput``.
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
LIMIT_MB = 8 * 1024


def _config(batch_size: int):  # -> ProjectConfig
    from core.config import ProjectConfig

    return ProjectConfig.model_validate(
        {"data": {"format": "canonical"}, "train": {"batch_size": batch_size, "seed": 0}}
    )


def build_shards(source: Path, out: Path) -> dict:
    """``prepare_streaming`` on ``source``; returns its samples and seconds."""
    from eventlogs.stream import prepare_streaming

    report = prepare_streaming(source, _config(256), "bench", out)
    return {"samples": report.samples, "seconds": report.seconds, "rows": report.rows_kept}


def run_epoch(stage: str, shards: Path, batch_size: int, subset: int, buffer: int) -> dict:
    """One epoch of the default plan; ``stage`` is stream, memory or stream_subset."""
    from core.arrays import FeatureSpec
    from training.fit import fit_model
    from training.search import TrialPlan
    from training.stream_input import sample_shards, shard_dataset, shard_paths, write_shards

    spec = FeatureSpec.from_json((shards / "feature_spec.json").read_text())
    paths = shard_paths(shards, ("train",))
    plan = TrialPlan.from_params({})
    kwargs = {"epochs": 1, "batch_size": batch_size, "seed": 0, "pretrain_epochs": 0}
    start = time.perf_counter()
    if stage == "memory":
        arrays = sample_shards(paths, subset)
        n = len(arrays)
        result = fit_model(plan, spec, arrays, **kwargs)
    else:
        if stage == "stream_subset":  # the same subset, written as shards and streamed
            folder = Path(tempfile.mkdtemp(prefix="subset-", dir=shards))
            paths = write_shards(sample_shards(paths, subset), folder, 50_000)
        n = count_rows(paths)
        stream = shard_dataset(paths, batch_size=batch_size, shuffle_buffer=buffer, seed=0)
        result = fit_model(plan, spec, sample_shards(paths, 200_000), stream=stream, **kwargs)
    seconds = time.perf_counter() - start
    return {
        "stage": stage,
        "samples": n,
        "seconds": seconds,
        "fit_seconds": result.seconds,
        "samples_per_s": n / result.seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "loss": result.history[-1].get("loss") if result.history else None,
    }


def count_rows(paths: list[Path]) -> int:
    """Samples in ``paths``, from each shard's ``cat`` header (no array is read)."""
    import zipfile

    import numpy as np

    total = 0
    for path in paths:
        with zipfile.ZipFile(path) as z, z.open("cat.npy") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape = np.lib.format.read_array_header_1_0(f)[0]
            else:
                shape = np.lib.format.read_array_header_2_0(f)[0]
            total += shape[0]
    return total


def _child(args: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Parse arguments, run every stage in a subprocess, print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000_000, help="synthetic log size")
    parser.add_argument("--source", type=Path, help="existing canonical Parquet/CSV log")
    parser.add_argument("--work", type=Path, help="folder for the log and shards (default: temp)")
    parser.add_argument("--subset-samples", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--shuffle-buffer", type=int, default=10_000)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--shards", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage == "shards":
        print(json.dumps(build_shards(args.path, args.shards)))
        return
    if args.stage:
        figures = run_epoch(
            args.stage, args.shards, args.batch_size, args.subset_samples, args.shuffle_buffer
        )
        print(json.dumps(figures))
        return
    work = Path(args.work or tempfile.mkdtemp(prefix="scale-train-"))
    work.mkdir(parents=True, exist_ok=True)
    source, generated = args.source, None
    if source is None:
        source = work / f"synth_{args.events}.parquet"
        if not source.exists():
            sys.path.insert(0, str(ROOT / "benchmarks"))
            from scale_features import generate

            generated = generate(args.events, source, seed=0)
    shards = work / f"shards_{source.stem}"
    built = None
    if not (shards / "fingerprint.json").exists():
        print(f"building shards of {source} ...", file=sys.stderr, flush=True)
        built = _child(["--stage", "shards", "--path", str(source), "--shards", str(shards)])
    common = ["--shards", str(shards), "--batch-size", str(args.batch_size)]
    common += ["--subset-samples", str(args.subset_samples)]
    common += ["--shuffle-buffer", str(args.shuffle_buffer)]
    rows = {}
    for stage in ("memory", "stream_subset", "stream"):
        print(f"running {stage} ...", file=sys.stderr, flush=True)
        rows[stage] = _child(["--stage", stage, *common])
    ratio = rows["stream_subset"]["samples_per_s"] / rows["memory"]["samples_per_s"]
    head = (
        f"{'stage':<16}{'samples':>12}{'fit s':>9}{'samples/s':>11}{'peak MB':>9}{'x memory':>10}"
    )
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        print(
            f"{name:<16}{r['samples']:>12,}{r['fit_seconds']:>9.1f}{r['samples_per_s']:>11,.0f}"
            f"{r['peak_rss_mb']:>9,.0f}{r['samples_per_s'] / rows['memory']['samples_per_s']:>10.2f}"
        )
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    result = {
        "reference": "in-memory fit_model on the same subset, same run",
        "peak_rss_mb": rows["stream"]["peak_rss_mb"],
        "stream_over_memory_throughput": ratio,
        "within_8gb": rows["stream"]["peak_rss_mb"] < LIMIT_MB,
        "source": str(source),
        "shards": built,
        "generated": generated,
        "stages": rows,
        "loadavg": load,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    print(f"peak_rss_mb {result['peak_rss_mb']:,.0f}  stream_over_memory_throughput {ratio:.2f}")
    target = ROOT / "benchmarks" / "results" / "scale_train.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=1))
    print(f"written {target}")


if __name__ == "__main__":
    main()
