"""Benchmark the BentoML service against the framework's floor and the raw model call.

One run: a bundle of the reference size (embeddings 64+8, LSTM 128, 50 events, 2,000
categories; untrained weights cost the same as trained ones) or ``--bundle PATH`` is imported
into a temporary BentoML home and served by a real ``bentoml serve`` on 127.0.0.1; so is a
no-op BentoML service with the same request model (``benchmarks/noop_service.py``). ``wrk``
drives both with the same 100-event JSON body (POST through a Lua script): one connection
for the single-request p50, 32 for throughput; ``/predict_batch`` gets 64-user bodies.
In this process: ``Bundle.predict`` at batch 1 and 256, per-stage timings of one
request (msgspec parse, encode, model, responses, log records, msgspec JSON) and the model runtimes
(``tf.function``, XLA, TFLite; :mod:`modelkit.runtime`) at batch 1, 32 and 256. From the
server: the mean of each stage histogram (``interest_stage_seconds``) over the 1-connection
run. ``--workers N`` serves with N BentoML workers; ``--config FILE`` is the project config
the service reads (e.g. ``serving: {runtime_candidates: [tflite, xla], runtime_batches:
[1, 8, 32]}``).

Ratios written: ``ratio_p50_over_floor`` = our p50 / (no-op p50 + raw batch-1 p50);
``ratio_throughput_over_noop`` = our /predict req/s / no-op req/s at 32 connections;
``ratio_batch_over_raw256`` = /predict_batch rows/s / raw batch-256 rows/s.

Needs ``wrk`` (Debian: ``apt-get update && apt-get install -y wrk``). wrk shares the
machine's cores with the server, as any loopback benchmark does.

Run:  .venv/bin/python -m benchmarks.serving [--bundle PATH] [--seconds 10] [--workers N]
Writes benchmarks/results/serving.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from modelkit.runtime import RUNTIMES
from serving.launch import Server

RESULTS = Path(__file__).resolve().parent / "results" / "serving.json"
BODY_EVENTS = 100
BATCH_USERS = 64  # users per /predict_batch request
CONNECTIONS = 32
WRK_INSTALL = "apt-get update && apt-get install -y wrk"
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open("%s", "rb")); wrk.body = f:read("*a"); f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests": %%d, "duration_us": %%d, "errors": %%d, '
    .. '"non2xx": %%d, "p50_us": %%f, "p99_us": %%f}\\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50),
    latency:percentile(99)))
end
"""


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


def require_wrk() -> str:
    """The ``wrk`` executable; exits with the install command when it is missing."""
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(f"benchmarks/serving.py needs wrk; install it with: {WRK_INSTALL}")
    return found


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and all its descendants."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        child = int(stat.parent.name)
        parents[child] = int(fields[1])
        cpu[child] = (int(fields[11]) + int(fields[12])) / tick
    tree, grew = {pid}, True
    while grew:
        found = {c for c, p in parents.items() if p in tree} - tree
        tree |= found
        grew = bool(found)
    return sum(cpu.get(p, 0.0) for p in tree)


def run_wrk(
    wrk: str,
    url: str,
    body: Path,
    connections: int,
    seconds: float,
    rows: int = 1,
    server_pid: int | None = None,
) -> dict[str, Any]:
    """POST ``body`` to ``url`` with wrk for ``seconds``; p50/p99 (ms), req/s and rows/s.

    With ``server_pid``, also the server's CPU ms per request (all its processes): a
    figure the other jobs of a shared machine disturb far less than latency.
    """
    script = body.with_suffix(".lua")
    script.write_text(LUA % body)
    argv = [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s"]
    cpu_before = tree_cpu_s(server_pid) if server_pid else 0.0
    done = subprocess.run(
        [*argv, "-s", str(script), url], capture_output=True, text=True, check=True
    )
    cpu = tree_cpu_s(server_pid) - cpu_before if server_pid else float("nan")
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRK "))
    out = json.loads(line[4:])
    rps = out["requests"] / (out["duration_us"] / 1e6)
    return {
        "connections": connections,
        "requests": out["requests"],
        "errors": out["errors"] + out["non2xx"],
        "rps": rps,
        "rows_per_s": rps * rows,
        "p50_ms": out["p50_us"] / 1e3,
        "p99_ms": out["p99_us"] / 1e3,
        "server_cpu_ms_per_request": cpu / max(out["requests"], 1) * 1e3,
    }


def _median_ms(fn: Any, n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def measure_raw(bundle_dir: Path, body: dict, n: int, config: Any) -> dict[str, Any]:
    """``Bundle.predict`` at batch 1 and 256 on the runtimes the service chooses (same
    ``config``), per-stage timings of one request (ms) and every runtime at 1/32/256."""
    from modelkit.bundle import load_bundle
    from serving.deployed import choose_runtime
    from serving.encode import build_responses, encode_requests, log_records
    from serving.schemas import ModelRef
    from serving.wire import parse_predict

    bundle = load_bundle(bundle_dir)
    bundle.warmup()
    runtimes = compare_runtimes(bundle)
    choose_runtime(bundle, config)
    now, raw = datetime.now(UTC), json.dumps(body).encode()
    request = parse_predict(raw)  # the service's parser (msgspec, columns)
    encoded = encode_requests(request, bundle, config, now)
    one = encoded.arrays.inputs()
    out = bundle.predict(one)
    buckets = bundle.vocab.bucket_names(bundle.spec.n_buckets)
    ref = ModelRef(name="m", version="1", bento_tag="m:1")
    period = bundle.feature_config.period

    def respond() -> list[Any]:
        return build_responses(request.users, encoded, out, bundle.vocab, buckets, ref, period, 10)

    answers = respond()
    stages = {
        "parse_ms": _median_ms(lambda: parse_predict(raw), n),
        "encode_ms": _median_ms(lambda: encode_requests(request, bundle, config, now), n),
        "model_ms": _median_ms(lambda: bundle.predict(one), n),
        "responses_ms": _median_ms(respond, n),
        "log_records_ms": _median_ms(
            lambda: log_records(encoded, out, answers, bundle.vocab, buckets, now), n
        ),
        "json_ms": _median_ms(lambda: _dump(answers[0]), n),
    }
    big = {k: np.concatenate([v] * 256) for k, v in one.items()}
    bundle.predict(big)
    batch_ms = _median_ms(lambda: bundle.predict(big), 20)
    return {
        "batch1_p50_ms": stages["model_ms"],
        "batch256_ms": batch_ms,
        "batch256_rows_per_s": 256 / (batch_ms / 1e3),
        "stages": stages,
        "runtime_chosen": bundle.metadata["runtime"],
        "runtimes": runtimes,
    }


def compare_runtimes(bundle: Any) -> dict[str, Any]:
    """Median ms of the Keras graph, XLA and TFLite at batch 1, 32 and 256 (parity checked)."""
    from dataclasses import asdict

    from modelkit.runtime import measure

    return {
        str(n): asdict(measure(bundle.predictor, n, ("tflite", "xla"), 10 if n > 32 else 30)[0])
        for n in (1, 32, 256)
    }


def server_stages(url: str, before: dict[str, float] | None = None) -> dict[str, float]:
    """Per-stage (sum, count) totals from ``/metrics``; with ``before``, the mean ms since."""
    import re

    import httpx

    text = httpx.get(f"{url}/metrics", timeout=10).text
    totals: dict[str, float] = {}
    for kind, stage, value in re.findall(
        r'^interest_stage_seconds_(sum|count)\{[^}]*stage="(\w+)"[^}]*\} (\S+)$', text, re.M
    ):
        totals[f"{stage}.{kind}"] = totals.get(f"{stage}.{kind}", 0.0) + float(value)
    if before is None:
        return totals
    means = {}
    for key in totals:
        if key.endswith(".count"):
            stage = key.removesuffix(".count")
            n = totals[key] - before.get(key, 0.0)
            s = totals[f"{stage}.sum"] - before.get(f"{stage}.sum", 0.0)
            means[f"{stage}_ms"] = s / n * 1e3 if n else float("nan")
    return means


def _dump(answer: Any) -> bytes:
    import msgspec

    return msgspec.json.encode(answer)  # as the service serialises its answers


def _serving_config(config: Path | None) -> Any:
    from core.config import ServingConfig, load_config

    return load_config(config).serving if config is not None else ServingConfig()


def _serve(root: Path, name: str, env: dict[str, str], service: str | None = None) -> Server:
    from serving.launch import free_port
    from serving.launch import start_server as launch

    kwargs = {"service": service} if service else {}
    return launch(env, root / f"{name}.log", free_port(), timeout=180, **kwargs)


def run(
    bundle: Path | None, seconds: float, workers: int | None = None, config: Path | None = None
) -> dict[str, Any]:
    """The whole benchmark; returns the results written to :data:`RESULTS`."""
    from core.vocab import Vocabulary
    from serving.store import import_bundle

    wrk = require_wrk()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        root = Path(tmp)
        bundle_dir = bundle or build_reference_bundle(root / "bundle")
        tag = import_bundle(bundle_dir, "interest-evolution", home=root / "bentoml")
        vocab = Vocabulary.load(bundle_dir / "vocab.json")
        bodies = make_bodies(vocab.categories, BATCH_USERS, events=BODY_EVENTS)
        single, batch = root / "single.json", root / "batch.json"
        single.write_text(json.dumps(bodies[0]))
        batch.write_text(json.dumps({"users": bodies}))
        env = {
            "BENTOML_HOME": str(root / "bentoml"),
            "INTEREST_STATE_DIR": str(root / "state"),
            "INTEREST_BENTO_MODEL": tag,
        }
        if config is not None:
            env["INTEREST_CONFIG"] = str(config.resolve())
        if workers is not None:
            env["BENTOML_CONFIG_OPTIONS"] = f"services.interest.workers={workers}"
        ours, noop = {}, {}
        server = _serve(root, "service", env)
        try:
            run_wrk(wrk, f"{server.url}/predict", single, 4, 3)  # warm-up
            before = server_stages(server.url)
            pid = server.process.pid
            ours["sequential"] = run_wrk(wrk, f"{server.url}/predict", single, 1, seconds, 1, pid)
            ours["sequential"]["server_stages"] = server_stages(server.url, before)
            runtime = httpx.get(f"{server.url}/model", timeout=10).json()["runtime"]
            ours["concurrent"] = run_wrk(
                wrk, f"{server.url}/predict", single, CONNECTIONS, seconds, 1, pid
            )
            ours["batch"] = run_wrk(
                wrk, f"{server.url}/predict_batch", batch, 4, seconds, BATCH_USERS, pid
            )
        finally:
            server.stop()
        server = _serve(root, "noop", env, "benchmarks.noop_service:NoopService")
        try:
            run_wrk(wrk, f"{server.url}/predict", single, 4, 3)
            pid = server.process.pid
            noop["sequential"] = run_wrk(wrk, f"{server.url}/predict", single, 1, seconds, 1, pid)
            noop["concurrent"] = run_wrk(
                wrk, f"{server.url}/predict", single, CONNECTIONS, seconds, 1, pid
            )
        finally:
            server.stop()
        raw = measure_raw(bundle_dir, bodies[0], 200, _serving_config(config))
    floor = noop["sequential"]["p50_ms"] + raw["batch1_p50_ms"]
    return {
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "bundle": str(bundle) if bundle else "reference-size, untrained (LSTM 128, 2,000 cats)",
        "workers": workers or "service default",
        "config": str(config) if config else None,
        "served_runtime_batch1": runtime,
        "body_events": BODY_EVENTS,
        "service": ours,
        "noop": noop,
        "raw": raw,
        "ratio_p50_over_floor": ours["sequential"]["p50_ms"] / floor,
        "ratio_throughput_over_noop": ours["concurrent"]["rps"] / noop["concurrent"]["rps"],
        "ratio_batch_over_raw256": ours["batch"]["rows_per_s"] / raw["batch256_rows_per_s"],
    }


def print_table(res: dict[str, Any]) -> None:
    """Human-readable summary."""
    print(f"load average before/after: {res['load_average_before']} / {res['load_average_after']}")
    print(
        f"{'path':46s} {'p50 ms':>8s} {'p99 ms':>8s} {'req/s':>8s} {'rows/s':>8s} {'err':>4s} "
        f"{'cpu ms/req':>10s}"
    )
    for who in ("service", "noop"):
        for kind, r in res[who].items():
            label = f"{who} {'/predict_batch' if kind == 'batch' else '/predict'}"
            label += f", {r['connections']} conn"
            print(
                f"{label:46s} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['rps']:8.0f} "
                f"{r['rows_per_s']:8.0f} {r['errors']:4d} {r['server_cpu_ms_per_request']:10.2f}"
            )
    raw = res["raw"]
    print(f"{'raw Bundle.predict batch 1':46s} {raw['batch1_p50_ms']:8.2f}")
    print(
        f"{'raw Bundle.predict batch 256':46s} {raw['batch256_ms']:8.2f} {'':17s} "
        f"{raw['batch256_rows_per_s']:8.0f}"
    )
    print(
        "per-stage, one request in process (ms): "
        + ", ".join(f"{k.removesuffix('_ms')} {v:.2f}" for k, v in raw["stages"].items())
    )
    served = res["service"]["sequential"].get("server_stages", {})
    print(
        f"per-stage in the server, 1 conn, runtime {res['served_runtime_batch1']} (mean ms): "
        + ", ".join(f"{k.removesuffix('_ms')} {v:.2f}" for k, v in served.items())
    )
    print(f"{'model runtimes (median ms)':30s} " + " ".join(f"{r:>12s}" for r in RUNTIMES))
    for n, m in raw["runtimes"].items():
        cells = [
            f"{m['ms'][r]:12.2f}" if r in m["ms"] else f"{'(left out)':>12s}" for r in RUNTIMES
        ]
        print(f"{'batch ' + n:30s} " + " ".join(cells) + f"  -> {m['runtime']}")
    print(
        f"ratio_p50_over_floor {res['ratio_p50_over_floor']:.2f}; "
        f"ratio_throughput_over_noop {res['ratio_throughput_over_noop']:.2f}; "
        f"ratio_batch_over_raw256 {res['ratio_batch_over_raw256']:.2f}"
    )


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="model bundle folder (default: reference size)")
    parser.add_argument("--seconds", type=float, default=10.0, help="wrk duration per run")
    parser.add_argument("--workers", type=int, help="BentoML workers (default: the service's)")
    parser.add_argument("--config", type=Path, help="project config file the service reads")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    res = run(args.bundle, args.seconds, args.workers, args.config)
    print_table(res)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
