"""What text adds to one serving request: encode (+ vectorise) and predict, with and without.

One command::

    .venv/bin/python benchmarks/text_serving.py [--repeats 300]

Builds two bundles on the review log (``benchmarks.quality_text``'s amazon_reviews task,
one epoch: speed does not depend on the weights): the same model with the review-text
channel, without it, and with content-aware category embeddings (``use_content``: no text
in the request, the category profiles are in the model). Then times ``serving.encode.encode_requests`` + ``Bundle.predict``
for one request of a real user's reviews (text included) in-process, without HTTP, and
prints the p50/p90 of each and the ratio with / without. Writes
``benchmarks/results/text_serving.json``. Timing on a shared machine is noisy: the load
average is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().parent / "results" / "text_serving.json"


def _bundle(prepared: dict[str, Any], flags: dict[str, bool], directory: Path) -> Any:
    import dataclasses

    from benchmarks.quality_text import SMALL_MODEL
    from modelkit.bundle import load_bundle, save_bundle
    from modelkit.model_config import ModelConfig
    from training.fit import fit_model
    from training.search import TrialPlan

    plan = TrialPlan(model=ModelConfig(**SMALL_MODEL, **flags))
    train = prepared["fit"] if flags else dataclasses.replace(prepared["fit"], text_tokens=None)
    model = fit_model(plan, prepared["spec"], train, epochs=1, batch_size=64, seed=0,
                      pretrain_epochs=0).model  # fmt: skip
    text = prepared["text"] if flags.get("use_text") else None
    config = prepared["config"].features
    path = save_bundle(directory, model, prepared["vocab"], config, prepared["spec"], {}, text=text)
    bundle = load_bundle(path)
    bundle.warmup()
    return bundle


def _time(bundle: Any, request: Any, now: datetime, repeats: int) -> dict[str, float]:
    import numpy as np

    from core.config import ServingConfig
    from serving.encode import encode_requests

    config = ServingConfig(max_events=1000)
    for _ in range(20):
        bundle.predict(encode_requests([request], bundle, config, now).arrays.inputs())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        bundle.predict(encode_requests([request], bundle, config, now).arrays.inputs())
        times.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": float(np.percentile(times, 50)), "p90_ms": float(np.percentile(times, 90))}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Build both bundles, time one request on each, print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from benchmarks.quality_text import TEXT_TASKS, prepare_text_task
    from serving.schemas import PredictRequest

    prepared = prepare_text_task(TEXT_TASKS["amazon_reviews"])
    events = prepared["events"]
    cutoff = prepared["splits"].test
    history = events[events["timestamp"] < cutoff]
    user = history["user_id"].value_counts().index[0]  # the longest history: most text
    rows = history[history["user_id"] == user]
    request = PredictRequest.model_validate(
        {
            "user_id": str(user),
            "cutoff": cutoff.isoformat(),
            "events": [
                {"item_id": r.item_id, "category_id": r.category_id, "behavior": r.behavior,
                 "timestamp": r.timestamp.isoformat(), "text": r.text}
                for r in rows.itertuples()
            ],
        }
    )  # fmt: skip
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="text-serving-") as tmp:
        plain = _bundle(prepared, {}, Path(tmp) / "plain")
        texty = _bundle(prepared, {"use_text": True}, Path(tmp) / "text")
        content = _bundle(prepared, {"use_content": True}, Path(tmp) / "content")
        load_before = os.getloadavg()
        without = _time(plain, request, now, args.repeats)
        with_text = _time(texty, request, now, args.repeats)
        with_content = _time(content, request, now, args.repeats)
        load_after = os.getloadavg()
    out = {
        "events_in_request": len(rows),
        "text_chars_in_request": int(rows["text"].str.len().sum()),
        "repeats": args.repeats,
        "without_text": without,
        "with_text": with_text,
        "with_content": with_content,
        "p50_ratio": with_text["p50_ms"] / without["p50_ms"],
        "content_p50_ratio": with_content["p50_ms"] / without["p50_ms"],
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }
    print(f"one request, {len(rows)} events with {out['text_chars_in_request']:,} characters")
    print(f"{'':<14}{'p50 ms':>8}{'p90 ms':>8}")
    for name in ("without_text", "with_text", "with_content"):
        print(f"{name:<14}{out[name]['p50_ms']:>8.2f}{out[name]['p90_ms']:>8.2f}")
    print(f"p50 ratio with / without: text {out['p50_ratio']:.2f}, content "
          f"{out['content_p50_ratio']:.2f} (load {load_before[0]:.2f})")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
