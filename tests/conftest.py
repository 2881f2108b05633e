"""Shared fixtures: the real samples in ../shared/data, tiny seeded frames and a toy model task."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is first imported

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from core.arrays import FeatureSpec, SequenceArrays  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("INTEREST_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real e-commerce samples; tests that need them skip where the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real samples not found at {SHARED_DATA} (set INTEREST_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture()
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated project state folder for one test."""
    state = tmp_path / "state"
    monkeypatch.setenv("INTEREST_STATE_DIR", str(state))
    return state


@pytest.fixture(scope="session")
def empty_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised MLflow SQLite file; tests copy it (migrations take seconds)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


V, N, P, C1, K, B = 12, 6, 3, 4, 2, 4


@pytest.fixture(scope="session")
def tiny_spec() -> FeatureSpec:
    """V=12 categories, N=6 events, P=3 periods, C1=4 buckets, K=2 future periods."""
    return FeatureSpec(
        max_events=N,
        n_periods=P,
        n_buckets=C1,
        n_behaviors=5,
        n_core_behaviors=B,
        n_categories=V,
        future_periods=K,
        period="day",
        horizon="3D",
        vocab_hash="tiny",
    )


def make_toy_arrays(n: int = 32, seed: int = 0) -> SequenceArrays:
    """Left-padded random histories with labels that are functions of the history.

    next_cats = categories seen; buy = a buy event seen; churn = fewer than 3 events;
    trajectory = history bucket shares in period 1, period 2 empty (all zeros).
    """
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, N + 1, n)
    real = np.arange(N)[None, :] >= (N - lengths)[:, None]
    cat = np.where(real, rng.integers(2, V, (n, N)), 0).astype(np.int32)
    beh = np.where(real, rng.integers(1, 5, (n, N)), 0).astype(np.int32)
    hour = np.where(real, rng.integers(1, 25, (n, N)), 0).astype(np.int32)
    gap = np.where(real, rng.random((n, N)), 0).astype(np.float32)
    age = np.where(real, np.linspace(3, 0, N)[None, :], 0).astype(np.float32)
    next_cats = np.zeros((n, V), np.float32)
    np.put_along_axis(next_cats, cat, 1.0, axis=1)
    next_cats[:, 0] = 0.0
    bucket = np.minimum(cat, C1 - 1)
    trajectory = np.zeros((n, K, C1), np.float32)
    for row in range(n):
        counts = np.bincount(bucket[row][real[row]], minlength=C1)
        trajectory[row, 0] = counts / counts.sum()
    return SequenceArrays(
        user_id=np.array([f"u{i}" for i in range(n)], dtype=object),
        cutoff=np.full(n, np.datetime64("2024-01-01"), dtype="datetime64[ns]"),
        cat=cat,
        beh=beh,
        hour=hour,
        gap=gap,
        age=age,
        period_dist=rng.dirichlet(np.ones(C1), (n, P)).astype(np.float32),
        period_counts=rng.random((n, P, B)).astype(np.float32),
        next_cats=next_cats,
        buy=(beh == 4).any(axis=1).astype(np.float32),
        churn=(lengths < 3).astype(np.float32),
        trajectory=trajectory,
    )


@pytest.fixture(scope="session")
def toy_arrays() -> SequenceArrays:
    """32 seeded toy samples."""
    return make_toy_arrays()
