"""The README baseline tables, reproduced from the real samples (within 0.002).

One row is the exception: Tmall's personal frequency. Its day-resolution log is full of
exact score ties and the README does not say how it broke them; the tie orders tried give
0.149-0.157 around its 0.1533 (ours, by category id string: 0.1507), so that row is held
to 0.005. The README's Tmall rows say "personal frequency", not behaviour-weighted: they
use plain counts (``WEIGHT_PRESETS["uniform"]``), which also brings the decay row within
0.001 (weighted: 0.1649).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.arrays import SequenceArrays
from core.config import DataConfig
from core.vocab import Vocabulary
from evaluation.baselines import baseline_predictions, evaluate_baselines
from evaluation.metrics import evaluate_predictions
from evaluation.tuned import WEIGHT_PRESETS
from eventlogs.loaders import load_events

pytestmark = pytest.mark.shared_data
TOL = 0.002
TIES_TOL = 0.005  # Tmall personal frequency, see the module docstring
TAOBAO_CUTOFF = "2017-11-30 16:00"  # 2017-12-01 00:00 China time
TAOBAO_START = "2017-11-24 16:00"  # 2017-11-25 00:00 China time


@pytest.fixture(scope="module")
def taobao(shared_data: Path) -> pd.DataFrame:
    path = shared_data / "taobao_userbehavior" / "user_behavior.csv"
    return load_events(path, DataConfig(format="taobao")).events


@pytest.fixture(scope="module")
def tmall(shared_data: Path) -> pd.DataFrame:
    path = shared_data / "tmall_2014_brand_log" / "t_alibaba_data.csv"
    return load_events(path, DataConfig(format="tmall", year=2014)).events


def _check(
    out: dict[str, dict[str, float]], table: dict[str, tuple[float, float]], tol: float = TOL
) -> None:
    for name, (recall, ndcg) in table.items():
        assert out[name]["recall_at_10"] == pytest.approx(recall, abs=tol), name
        assert out[name]["ndcg_at_10"] == pytest.approx(ndcg, abs=tol), name


def test_taobao_table(taobao):
    out = evaluate_baselines(taobao, TAOBAO_CUTOFF, "3D", "3D", 1.0, history_start=TAOBAO_START)
    _check(
        out,
        {
            "popularity": (0.2345, 0.2389),
            "personal_freq": (0.3809, 0.3999),
            "personal_decay": (0.3844, 0.4074),
        },
    )
    assert out["popularity"]["buy_auc"] == pytest.approx(0.551, abs=TOL)
    assert out["popularity"]["buy_rate"] == pytest.approx(0.40, abs=0.01)
    assert np.isnan(out["popularity"]["churn_auc"])  # every user is active in the horizon


def test_tmall_table(tmall):
    weights = WEIGHT_PRESETS["uniform"]
    out = evaluate_baselines(tmall, "2014-07-16", "30D", "30D", 14.0, weights=weights)
    _check(out, {"popularity": (0.0772, 0.0862), "personal_decay": (0.1655, 0.1858)})
    _check(out, {"personal_freq": (0.1533, 0.1692)}, TIES_TOL)
    assert out["popularity"]["churn_auc"] == pytest.approx(0.827, abs=TOL)
    assert out["popularity"]["churn_rate"] == pytest.approx(0.063, abs=0.001)
    assert out["popularity"]["buy_auc"] == pytest.approx(0.714, abs=TOL)


def test_model_space_matches_protocol_on_taobao(taobao):
    """Baselines in (n, V) space score the same as the protocol evaluator (no OOV here)."""
    cut = pd.Timestamp(TAOBAO_CUTOFF, tz="UTC")
    events = taobao[taobao.timestamp >= pd.Timestamp(TAOBAO_START, tz="UTC")]
    vocab = Vocabulary(sorted(events.category_id.astype(str).unique(), reverse=True), 30)
    users = np.sort(events.loc[events.timestamp < cut, "user_id"].astype(str).unique())
    future = events[(events.timestamp >= cut) & (events.timestamp < cut + pd.Timedelta("3D"))]
    truth = np.zeros((len(users), vocab.size), np.float32)
    rows = pd.Index(users).get_indexer(future.user_id.astype(str))
    truth[rows[rows >= 0], vocab.encode(future.category_id.astype(str))[rows >= 0]] = 1
    buyers = set(future.loc[future.behavior == "buy", "user_id"].astype(str))
    n = len(users)
    arrays = SequenceArrays(
        user_id=users,
        cutoff=np.full(n, cut.tz_localize(None).to_datetime64()),
        cat=np.zeros((n, 1), np.int32),
        beh=np.zeros((n, 1), np.int32),
        hour=np.zeros((n, 1), np.int32),
        gap=np.zeros((n, 1), np.float32),
        age=np.zeros((n, 1), np.float32),
        period_dist=np.zeros((n, 1, 31), np.float32),
        period_counts=np.zeros((n, 1, 4), np.float32),
        next_cats=truth,
        buy=np.array([u in buyers for u in users], dtype=float),
        churn=(truth.sum(axis=1) == 0).astype(float),
        trajectory=np.zeros((n, 3, 31), np.float32),
    )
    preds = baseline_predictions(events, arrays, vocab, pop_window="3D", half_life=1.0)
    expected = evaluate_baselines(events, cut, "3D", "3D", 1.0)
    for name, pred in preds.items():
        got = evaluate_predictions(pred, arrays)
        for key in ("recall_at_10", "ndcg_at_10", "buy_auc", "n_ranked"):
            assert got[key] == pytest.approx(expected[name][key], abs=1e-9), (name, key)
