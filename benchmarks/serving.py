"""Benchmark the BentoML service over loopback HTTP against the raw in-process model call.

One run: a bundle of the reference size (embeddings 64+8, LSTM 128, 50 events, 2,000
categories; untrained weights cost the same as trained ones) or ``--bundle PATH`` is imported
into a temporary BentoML home and served by a real ``bentoml serve`` on 127.0.0.1. Measured:
p50/p99 of single ``/predict`` requests, throughput under 1, 8 and 32 concurrent clients, and,
on the same encoded inputs, ``Bundle.predict`` at batch 1 and 256 in this process.
Goals: HTTP p50 <= 2x raw batch 1; concurrent throughput >= 50% of raw batch 256.

Run:  .venv/bin/python -m benchmarks.serving [--bundle PATH] [--requests 200]
Writes benchmarks/results/serving.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from serving.launch import Server

RESULTS = Path(__file__).resolve().parent / "results" / "serving.json"
CONCURRENCY = (1, 8, 32)
BATCH_USERS = 32  # users per /predict_batch request


def build_reference_bundle(directory: Path, n_categories: int = 2000) -> Path:
    """Save an untrained reference-size model bundle (vocabulary of ``n_categories``)."""
    import pandas as pd

    from core.config import FeatureConfig
    from core.features import feature_spec
    from core.vocab import fit_vocabulary
    from modelkit.builder import build_model
    from modelkit.bundle import save_bundle
    from modelkit.model_config import ModelConfig

    cats = [f"g{i // 100:02d}-c{i % 100:03d}" for i in range(n_categories)]
    features = FeatureConfig(max_events=50)
    vocab = fit_vocabulary(pd.DataFrame({"category_id": cats}), features)
    spec = feature_spec(vocab, features)
    model = build_model(ModelConfig(cell="lstm", units=128, cat_embed_dim=64), spec)
    meta = {"model_name": "interest-evolution", "version": "bench", "run_id": "benchmark"}
    return save_bundle(directory, model, vocab, features, spec, meta, None)


def make_bodies(categories: list[str], n: int, events: int = 50, seed: int = 0) -> list[dict]:
    """``n`` distinct single-user request bodies of ``events`` recent events each."""
    rng = np.random.default_rng(seed)
    end = datetime.now(UTC) - timedelta(minutes=10)
    bodies = []
    for u in range(n):
        hours = np.sort(rng.uniform(1, 6 * 24, events))[::-1]
        bodies.append(
            {
                "user_id": f"bench-{u}",
                "events": [
                    {
                        "item_id": f"i{rng.integers(10_000)}",
                        "category_id": categories[int(rng.integers(len(categories)))],
                        "behavior": str(rng.choice(["view", "view", "view", "cart", "fav", "buy"])),
                        "timestamp": (end - timedelta(hours=float(h))).isoformat(),
                    }
                    for h in hours
                ],
            }
        )
    return bodies


def start_server(home: Path, state: Path, tag: str, port: int, log: Path) -> Server:
    """Start ``bentoml serve`` for ``tag`` on loopback and wait for ``/readyz``."""
    from serving.launch import start_server as launch

    env = {"BENTOML_HOME": str(home), "INTEREST_STATE_DIR": str(state), "INTEREST_BENTO_MODEL": tag}
    return launch(env, log, port, timeout=180)


def measure_single(url: str, bodies: list[dict], n: int) -> dict[str, float]:
    """Sequential ``/predict`` latencies (ms)."""
    times = []
    with httpx.Client(timeout=30) as client:
        for i in range(n):
            start = time.perf_counter()
            resp = client.post(f"{url}/predict", json=bodies[i % len(bodies)])
            times.append((time.perf_counter() - start) * 1e3)
            resp.raise_for_status()
    return {"p50_ms": float(np.median(times)), "p99_ms": float(np.percentile(times, 99))}


async def _concurrent(
    url: str, bodies: list[dict], clients: int, total: int, limit_s: float, route: str = "/predict"
):
    done, errors, lat, failures = 0, 0, [], []
    deadline = time.perf_counter() + limit_s
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def worker(client: httpx.AsyncClient, k: int) -> None:
        nonlocal done, errors
        i = k
        while done + errors < total and time.perf_counter() < deadline:
            start = time.perf_counter()
            i += clients
            try:
                resp = await client.post(f"{url}{route}", json=bodies[(i - clients) % len(bodies)])
            except httpx.TransportError as err:  # counted, and the server log is shown
                errors += 1
                failures.append(repr(err))
                continue
            lat.append((time.perf_counter() - start) * 1e3)
            if resp.status_code == 200:
                done += 1
            else:
                errors += 1
                failures.append(f"{resp.status_code}: {resp.text[:200]}")

    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client, k) for k in range(clients)))
        elapsed = time.perf_counter() - start
    rows = len(bodies[0]["users"]) if route == "/predict_batch" else 1
    return {
        "route": route,
        "clients": clients,
        "rows_per_request": rows,
        "rows_per_s": done * rows / elapsed,
        "requests": done,
        "errors": errors,
        "first_errors": failures[:3],
        "seconds": elapsed,
        "rps": done / elapsed,
        "p50_ms": float(np.median(lat)),
        "p99_ms": float(np.percentile(lat, 99)),
    }


def measure_raw(bundle_dir: Path, bodies: list[dict], n: int) -> dict[str, float]:
    """``Bundle.predict`` at batch 1 and 256 on the service's own encoding of ``bodies``."""
    from core.config import ServingConfig
    from modelkit.bundle import load_bundle
    from serving.encode import encode_requests
    from serving.schemas import PredictRequest

    bundle = load_bundle(bundle_dir)
    bundle.warmup()
    requests = [PredictRequest.model_validate(b) for b in bodies]
    now = datetime.now(UTC)
    config = ServingConfig()
    inputs = encode_requests(requests, bundle, config, now).arrays.inputs()
    one = {k: v[:1] for k, v in inputs.items()}
    times = []
    for _ in range(n):
        start = time.perf_counter()
        bundle.predict(one)
        times.append((time.perf_counter() - start) * 1e3)
    encode_times = []
    for i in range(n):
        start = time.perf_counter()
        bundle.predict(
            encode_requests(requests[i % 8 : i % 8 + 1], bundle, config, now).arrays.inputs()
        )
        encode_times.append((time.perf_counter() - start) * 1e3)
    reps = -(-256 // len(requests))
    big = {k: np.concatenate([v] * reps)[:256] for k, v in inputs.items()}
    bundle.predict(big)
    start, rounds = time.perf_counter(), 20
    for _ in range(rounds):
        bundle.predict(big)
    batch_s = (time.perf_counter() - start) / rounds
    return {
        "batch1_p50_ms": float(np.median(times)),
        "batch1_p99_ms": float(np.percentile(times, 99)),
        "encode_plus_batch1_p50_ms": float(np.median(encode_times)),
        "batch256_ms": batch_s * 1e3,
        "batch256_rows_per_s": 256 / batch_s,
    }


def run(bundle: Path | None, n_requests: int, limit_s: float) -> dict[str, Any]:
    """The whole benchmark; returns the results written to :data:`RESULTS`."""
    from core.vocab import Vocabulary
    from serving.store import import_bundle

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        root = Path(tmp)
        bundle_dir = bundle or build_reference_bundle(root / "bundle")
        tag = import_bundle(bundle_dir, "interest-evolution", home=root / "bentoml")
        vocab = Vocabulary.load(bundle_dir / "vocab.json")
        bodies = make_bodies(vocab.categories, 64)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        server = start_server(root / "bentoml", root / "state", tag, port, root / "server.log")
        single, concurrent, batched = None, [], None
        try:
            measure_single(url, bodies, 30)  # warm-up
            single = measure_single(url, bodies, n_requests)
            concurrent = [
                asyncio.run(_concurrent(url, bodies, c, max(n_requests, 25 * c), limit_s))
                for c in CONCURRENCY
            ]
            batches = [{"users": bodies[i : i + BATCH_USERS]} for i in range(0, 64, BATCH_USERS)]
            batched = asyncio.run(_concurrent(url, batches, 4, 60, limit_s, "/predict_batch"))
        finally:
            server.stop()
            if single is None or any(c["errors"] for c in concurrent + [batched or {"errors": 0}]):
                print((root / "server.log").read_text()[-4000:])
        raw = measure_raw(bundle_dir, bodies, n_requests)
    best = max(c["rps"] for c in concurrent)
    return {
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "bundle": str(bundle) if bundle else "reference-size, untrained (LSTM 128, 2,000 cats)",
        "http_single": single,
        "http_concurrent": concurrent,
        "http_batch": batched,
        "raw": raw,
        "ratio_http_p50_over_raw_batch1": single["p50_ms"] / raw["batch1_p50_ms"],
        "ratio_best_concurrent_over_raw_batch256": best / raw["batch256_rows_per_s"],
        "ratio_predict_batch_over_raw_batch256": batched["rows_per_s"] / raw["batch256_rows_per_s"],
        "goals": {"http_p50_over_raw_batch1": "<= 2", "concurrent_over_batch256": ">= 0.5"},
    }


def print_table(res: dict[str, Any]) -> None:
    """Human-readable summary."""
    raw, single = res["raw"], res["http_single"]
    print(f"load average before/after: {res['load_average_before']} / {res['load_average_after']}")
    print(f"{'path':44s} {'p50 ms':>8s} {'p99 ms':>8s} {'rows/s':>9s}")
    print(
        f"{'raw Bundle.predict batch 1':44s} {raw['batch1_p50_ms']:8.2f} {raw['batch1_p99_ms']:8.2f}"
    )
    print(f"{'raw encode + predict batch 1':44s} {raw['encode_plus_batch1_p50_ms']:8.2f}")
    print(
        f"{'raw Bundle.predict batch 256':44s} {raw['batch256_ms']:8.2f} {'':8s} {raw['batch256_rows_per_s']:9.0f}"
    )
    print(f"{'HTTP /predict sequential':44s} {single['p50_ms']:8.2f} {single['p99_ms']:8.2f}")
    for c in res["http_concurrent"]:
        label = f"HTTP /predict, {c['clients']} clients ({c['requests']} ok, {c['errors']} err)"
        print(f"{label:44s} {c['p50_ms']:8.2f} {c['p99_ms']:8.2f} {c['rps']:9.0f}")
    b = res["http_batch"]
    label = f"HTTP /predict_batch x{b['rows_per_request']}, {b['clients']} clients"
    print(f"{label:44s} {b['p50_ms']:8.2f} {b['p99_ms']:8.2f} {b['rows_per_s']:9.0f}")
    print(f"HTTP p50 / raw batch-1 p50 = {res['ratio_http_p50_over_raw_batch1']:.1f}x (goal <= 2x)")
    print(
        "best concurrent / raw batch-256 throughput = "
        f"{res['ratio_best_concurrent_over_raw_batch256']:.0%} (goal >= 50%); "
        f"/predict_batch: {res['ratio_predict_batch_over_raw_batch256']:.0%}"
    )


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="model bundle folder (default: reference size)")
    parser.add_argument("--requests", type=int, default=200, help="sequential requests (N)")
    parser.add_argument("--limit-s", type=float, default=30.0, help="time cap per concurrency")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    res = run(args.bundle, args.requests, args.limit_s)
    print_table(res)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
