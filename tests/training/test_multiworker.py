"""Two MultiWorkerMirroredStrategy workers on loopback train the single-worker model."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from core.config import ProjectConfig
from eventlogs.stream import prepare_streaming
from synthlogs.generator import SynthConfig, generate_events
from training.distributed import cluster_from_env, tf_config

pytestmark = pytest.mark.slow
INTEREST = str(Path(sys.executable).parent / "interest")
SETTINGS = {
    "data": {"format": "canonical"},
    "train": {"epochs": 1, "batch_size": 64, "seed": 7, "shuffle_buffer": 128},
    "features": {"max_events": 20, "top_categories": 8, "n_periods": 5},
    "split": {"n_train_cutoffs": 2},
}
# No dropout: each replica would draw its own masks, and the runs could not be compared.
PLAN = {"units": 16, "cat_embed_dim": 8, "head_units": 16, "dropout": 0.0, "period_units": 8}


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _fit(tmp_path: Path, out: Path, env: dict[str, str]) -> subprocess.Popen:
    args = [INTEREST, "--config", str(tmp_path / "config.yaml"), "fit", str(tmp_path / "shards")]
    args += ["--out", str(out), "--params", str(tmp_path / "plan.json")]
    full = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", **env}
    if "TF_CONFIG" not in env:
        full.pop("TF_CONFIG", None)
    return subprocess.Popen(args, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_cluster_from_env_reads_tf_config():
    assert cluster_from_env({}) == (1, 0)
    assert cluster_from_env({"TF_CONFIG": tf_config(["a:1", "b:2"], 1)}) == (2, 1)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        cluster_from_env({"TF_CONFIG": "{not json"})


def test_two_workers_match_one(tmp_path, monkeypatch):
    events = generate_events(SynthConfig(n_users=150, n_days=14, seed=3)).events
    events.to_parquet(tmp_path / "events.parquet")
    config = ProjectConfig.model_validate(SETTINGS)
    prepare_streaming(tmp_path / "events.parquet", config, "mw", tmp_path / "shards")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(SETTINGS))
    (tmp_path / "plan.json").write_text(json.dumps(PLAN))
    hosts = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    workers = [
        _fit(tmp_path, tmp_path / f"worker{i}", {"TF_CONFIG": tf_config(hosts, i)})
        for i in range(2)
    ]
    # The single-worker reference is a fresh process too, as a user's run is: a process that
    # trained other models before gave results ~2e-3 apart (state of earlier fits).
    monkeypatch.delenv("TF_CONFIG", raising=False)
    single = _fit(tmp_path, tmp_path / "single", {})
    logs = [p.communicate(timeout=240)[0].decode() for p in [*workers, single]]
    for proc, log in zip([*workers, single], logs, strict=True):
        assert proc.returncode == 0, log[-3000:]
    assert "on 2 worker(s)" in logs[0] and "on 1 worker(s)" in logs[2]
    assert not (tmp_path / "worker1" / "model.keras").exists()  # only the chief writes
    one = np.load(tmp_path / "single" / "pred_sample.npz")
    two = np.load(tmp_path / "worker0" / "pred_sample.npz")
    fits = [json.loads((tmp_path / d / "fit.json").read_text()) for d in ("single", "worker0")]
    assert fits[0]["workers"] == 1 and fits[1]["workers"] == 2
    # Same global batches, seed and (synchronized) batch statistics: only the float32
    # all-reduce's summation order differs. Measured: at most 6e-8 apart after one epoch;
    # another seed, a different batch order or per-replica BatchNorm statistics give 4e-4
    # to 2e-2. The tolerance sits between.
    for head in ("next_cats", "buy", "churn", "trajectory"):
        np.testing.assert_allclose(two[head], one[head], atol=1e-5, err_msg=head)
    single_log, chief_log = fits[0]["history"][-1], fits[1]["history"][-1]
    assert abs(single_log["next_cats_loss"] - chief_log["next_cats_loss"]) < 1e-4
