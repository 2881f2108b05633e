"""Realised performance from the prediction log equals the gate's score of the same bundle.

A tiny bundle is trained one epoch on a small synthetic log. Its predictions for every user
at one cutoff go through serving's record builder and the real log writer (rotating files),
are read back by the log reader and scored by ``monitoring.performance``; the figures must
equal ``evaluation.scoring.evaluate_bundle`` on the same events and cutoff.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import uuid  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from core.config import FeatureConfig  # noqa: E402
from core.features import build_features, feature_spec  # noqa: E402
from core.predlog import PredictionLog, read_prediction_log  # noqa: E402
from core.vocab import fit_vocabulary  # noqa: E402
from evaluation.scoring import evaluate_bundle  # noqa: E402
from modelkit.bundle import Bundle, load_bundle, save_bundle  # noqa: E402
from modelkit.model_config import ModelConfig  # noqa: E402
from monitoring.performance import evaluate_log  # noqa: E402
from serving.encode import Encoded, build_responses, log_records  # noqa: E402
from serving.schemas import ModelRef  # noqa: E402
from synthlogs.config import SynthConfig  # noqa: E402
from synthlogs.generator import generate_events  # noqa: E402
from training.fit import fit_model  # noqa: E402
from training.search import TrialPlan  # noqa: E402

FEATURES = FeatureConfig(max_events=12, n_periods=3, top_categories=4, future_periods=2)
SYNTH = SynthConfig(n_users=80, n_days=14, n_groups=3, cats_per_group=5, n_items=300, seed=3)
CUTOFF = pd.Timestamp("2024-01-10", tz="UTC")  # 4 days of horizon left in the log
GATE_METRICS = ("recall_at_10", "ndcg_at_10", "buy_auc", "churn_auc", "trajectory_js")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Bundle]:
    """The synthetic events and a bundle trained one epoch on samples before the cutoff."""
    events = generate_events(SYNTH).events
    history = events[events["timestamp"] < CUTOFF]
    vocab = fit_vocabulary(history, FEATURES)
    spec = feature_spec(vocab, FEATURES)
    train_cutoffs = [CUTOFF - pd.Timedelta(days=d) for d in (7, 6, 5)]
    train = build_features(history, train_cutoffs, vocab, FEATURES)
    small = ModelConfig(units=8, cat_embed_dim=8, attention_units=8, period_units=8, head_units=8)
    fit = fit_model(TrialPlan(small), spec, train, epochs=1, batch_size=64, seed=0)
    folder = tmp_path_factory.mktemp("bundle")
    save_bundle(folder, fit.model, vocab, FEATURES, spec, {"model_name": "m", "version": "1"})
    return events, load_bundle(folder)


def _served_log(events: pd.DataFrame, bundle: Bundle, folder) -> pd.DataFrame:
    """Serve every user with history at the cutoff, log through the writer, read back."""
    arrays = build_features(events, [CUTOFF], bundle.vocab, bundle.feature_config)
    outputs = bundle.predict(arrays.inputs())
    n = len(arrays)
    cutoff = CUTOFF.to_pydatetime()
    encoded = Encoded(arrays, [cutoff] * n, [0] * n, [uuid.uuid4().hex for _ in range(n)])
    requests = [SimpleNamespace(user_id=str(u), top_k=3) for u in arrays.user_id]
    buckets = bundle.vocab.bucket_names(bundle.spec.n_buckets)
    model = ModelRef(name="m", version="1", bento_tag="m:test")
    responses = build_responses(requests, encoded, outputs, bundle.vocab, buckets, model, "day", 3)
    records = log_records(encoded, outputs, responses, bundle.vocab, buckets, datetime.now(UTC))
    log = PredictionLog(folder, rotate_rows=17)
    log.write(records)
    log.close()
    frame = read_prediction_log(folder)
    assert len(frame) == n and len(frame.attrs["files"]) > 1
    return frame


def test_realised_scores_from_the_log_equal_the_gates(world, tmp_path) -> None:
    events, bundle = world
    frame = _served_log(events, bundle, tmp_path)
    gate = evaluate_bundle(bundle, events, CUTOFF)
    result = evaluate_log(frame, events, bundle, k=10)
    realised = result.overall()
    assert result.n_labelled == len(frame) == gate["n_samples"] and result.n_incomplete == 0
    assert gate["n_ranked"] > 10 and bundle.vocab.size - 2 > 10  # the ranking is cut at 10
    for name in GATE_METRICS:
        assert realised[name] == pytest.approx(gate[name], abs=1e-9), name

    # The comparison can fail: another user's ranking moves realised recall@10.
    swapped = frame.assign(top_categories=np.roll(frame["top_categories"].to_numpy(), 1))
    moved = evaluate_log(swapped, events, bundle, k=10).overall()["recall_at_10"]
    assert moved != pytest.approx(gate["recall_at_10"], abs=1e-3)
