"""Stop the database, then the tracking server, during one study; ``--resume`` finishes it.

Real components only: the test starts its own throwaway PostgreSQL cluster (free port,
fsync off) and ``mlflow server`` on it, so it never touches the shared CI services. Each
outage must end ``interest tune`` with exit status 75 and one paragraph naming the lost
service, with nothing registered and no alias moved; after the restart ``interest tune
--resume`` keeps the finished trials and completes the study (refit, register, gate).

Needs PostgreSQL's binaries (/usr/lib/postgresql/*/bin; ``scripts/ci_services.sh start``
installs them). Without them the test skips, unless ``INTEREST_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import glob
import json
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest
import yaml

pytestmark = [pytest.mark.fault, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TRIALS = 2
STUDY = "outage"
MODEL = "outage-model"
EXIT_OUTAGE = 75
CHILD_ENV = {
    "INTEREST_OPTUNA_HEARTBEAT_S": "1",
    "INTEREST_OPTUNA_GRACE_S": "3",
    # MLflow's client retries a refused request for minutes by default: fail within seconds.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "PYTHONPATH": str(REPO),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bin() -> Path:
    """PostgreSQL's newest server binaries, or skip (fail under INTEREST_REQUIRE_SERVICES=1)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    reason = None
    if not found:
        reason = (
            "PostgreSQL binaries not found under /usr/lib/postgresql/*/bin: apt-get install "
            "postgresql (scripts/ci_services.sh start does it)"
        )
    elif os.getuid() == 0 and not _has_user("postgres"):
        reason = "running as root without a 'postgres' user to run initdb and postgres as"
    if reason is None:
        return Path(found[-1]).parent
    if os.environ.get("INTEREST_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class Postgres:
    """A throwaway cluster on a free loopback port; initdb and postgres refuse root."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.port = _free_port()
        self.base = Path(tempfile.mkdtemp(prefix="interest-outage-pg-"))
        self.data = self.base / "data"
        if os.getuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.base, user.pw_uid, user.pw_gid)
        self._pg(
            [self.bin / "initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "--no-sync"]
        )

    def _pg(self, args: list) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        done = subprocess.run(prefix + [str(a) for a in args], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.base} -F"  # -F: fsync off
        log = self.base / "postgres.log"
        self._pg([self.bin / "pg_ctl", "-D", self.data, "-l", log, "-w", "-o", options, "start"])

    def stop(self, mode: str = "fast") -> None:
        self._pg([self.bin / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop"])

    def url(self, db: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def create_databases(self, *names: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            for name in names:
                conn.execute(f"CREATE DATABASE {name}")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


class MlflowServer:
    """``mlflow server`` on the cluster, serving artifacts; killed with its workers."""

    def __init__(self, backend: str, artifacts: Path, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", backend,
            "--serve-artifacts", "--artifacts-destination", str(artifacts),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]  # fmt: skip
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 400) -> None:
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                self.args, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=2)
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.5)
        self.kill()
        tail = self.log.read_text()[-3000:]
        raise RuntimeError(f"mlflow server did not answer on {self.url}; its log:\n{tail}")

    def kill(self) -> None:
        """SIGKILL the server and its uvicorn workers: a crash, not a clean shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)


@pytest.fixture()
def services(tmp_path: Path) -> Iterator[tuple[Postgres, MlflowServer]]:
    pg = Postgres(_pg_bin())
    server = MlflowServer(pg.url("mlflow"), tmp_path / "artifacts", tmp_path / "mlflow.log")
    try:
        pg.start()
        pg.create_databases("optuna", "mlflow")
        server.start()
        yield pg, server
    finally:
        server.kill()
        pg.remove()


def _write_inputs(tmp_path: Path, pg: Postgres, server: MlflowServer) -> tuple[Path, Path]:
    from eventlogs.loaders import write_events
    from synthlogs.generator import SynthConfig, generate_events

    events = tmp_path / "events.parquet"
    write_events(generate_events(SynthConfig(n_users=100, n_days=14, seed=7)).events, events)
    config = {
        "data": {"format": "canonical"},
        "paths": {
            "state_dir": str(tmp_path / "state"),
            "optuna_storage": pg.url("optuna"),
            "tracking_uri": server.url,
            "artifact_root": "mlflow-artifacts:/outage",
        },
        "train": {
            "trials": TRIALS,
            "epochs": 1,
            "batch_size": 128,
            "pretrain_epochs": 0,
            "experiment": STUDY,
        },
        "registry": {"model_name": MODEL},
        "features": {"max_events": 20, "top_categories": 8, "n_periods": 5},
        "split": {"n_train_cutoffs": 2},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, events


def _tune(config: Path, events: Path, log: Path, *, resume: bool) -> subprocess.Popen:
    """Start ``interest tune``: stderr to ``log``, stdout (the JSON outcome) next to it."""
    args = [sys.executable, "-m", "interest.cli", "--config", str(config), "tune"]
    args += ["--data", str(events), "--study-name", STUDY, "--no-progress", "--json"]
    args += ["--resume"] if resume else []
    with log.open("w") as err, log.with_suffix(".json").open("w") as out:
        return subprocess.Popen(
            args, cwd=REPO, env={**os.environ, **CHILD_ENV}, stdout=out, stderr=err
        )


def _trials(storage: optuna.storages.BaseStorage) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=STUDY, storage=storage).trials
    except KeyError:  # the job has not created the study yet
        return []


def _stop_mid_trial(
    proc: subprocess.Popen,
    storage: optuna.storages.BaseStorage,
    stop: Callable[[], None],
    after: int,
    timeout: float = 600,
) -> int:
    """Once a trial numbered ``after`` or later runs with its MLflow run and one trial
    finished, call ``stop``; return the running trial's number."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"tune exited ({proc.returncode}) before the outage")
        trials = _trials(storage)
        running = [
            t.number
            for t in trials
            if t.state.name == "RUNNING" and t.number >= after and "mlflow_run_id" in t.user_attrs
        ]
        if running and any(t.state.name == "COMPLETE" for t in trials):
            stop()
            return running[0]
        time.sleep(0.2)
    proc.kill()
    pytest.fail("no trial was running within the timeout")


def _expect_outage(proc: subprocess.Popen, log: Path, names: tuple[str, ...]) -> str:
    """The job exits 75 with one clear paragraph naming a lost service; return it."""
    proc.wait(300)
    text = log.read_text()
    errors = [line for line in text.splitlines() if line.startswith("error: ")]
    assert proc.returncode == EXIT_OUTAGE, text[-4000:]
    assert len(errors) == 1, text[-4000:]
    error = errors[0]
    assert error.startswith(f"error: study '{STUDY}' stopped: "), error
    assert any(name in error for name in names), (names, error)
    assert "Nothing was registered and no alias moved." in error, error
    assert f"interest tune --resume --study-name {STUDY}" in error, error
    assert len(error) < 1200, error
    assert "Traceback" not in text, text[-4000:]
    return error


def _registry(tracking: str) -> tuple[list[str], dict[str, str]]:
    from mlflow import MlflowClient

    from modelkit.registry import model_aliases

    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    versions = [v.version for v in client.search_model_versions(f"name = '{MODEL}'")]
    return sorted(versions), model_aliases(client, MODEL) or {}


def _finished(trials: list[optuna.trial.FrozenTrial]) -> dict[int, float | None]:
    return {t.number: t.value for t in trials if t.state.name in ("COMPLETE", "PRUNED")}


def test_database_and_tracking_outages_stop_cleanly_and_resume(tmp_path, services):
    from mlflow import MlflowClient

    from training.outage import FAILURE_ATTR
    from training.workers import NOTE_TAG

    pg, server = services
    config, events = _write_inputs(tmp_path, pg, server)
    # Created before the job so that the two never race to create Optuna's tables; the
    # pre-ping replaces connections the database restart closed.
    storage = optuna.storages.RDBStorage(pg.url("optuna"), engine_kwargs={"pool_pre_ping": True})

    # 1. The database goes down mid-trial: Optuna's storage and the MLflow server both fail.
    log1 = tmp_path / "tune-1.log"
    proc = _tune(config, events, log1, resume=False)
    db_trial = _stop_mid_trial(proc, storage, lambda: pg.stop("immediate"), after=0)
    db_error = _expect_outage(proc, log1, (f"127.0.0.1:{pg.port}", "database"))
    pg.start()
    kept1 = _finished(_trials(storage))
    assert kept1 and db_trial not in kept1
    assert _registry(server.url) == ([], {})

    # 2. Resume; the tracking server dies mid-trial.
    time.sleep(3.5)  # past the grace period: the interrupted trial's heartbeat is stale
    log2 = tmp_path / "tune-2.log"
    proc = _tune(config, events, log2, resume=True)
    after = max(t.number for t in _trials(storage)) + 1
    http_trial = _stop_mid_trial(proc, storage, server.kill, after=after)
    http_error = _expect_outage(proc, log2, (f"MLflow tracking server {server.url}",))
    kept2 = _finished(_trials(storage))
    assert kept2.items() >= kept1.items() and len(kept2) < TRIALS
    server.start()
    assert _registry(server.url) == ([], {})

    # 3. Resume again with both services back: the study completes and registers once.
    log3 = tmp_path / "tune-3.log"
    proc = _tune(config, events, log3, resume=True)
    assert proc.wait(900) == 0, log3.read_text()[-4000:]
    stdout = log3.with_suffix(".json").read_text()  # MLflow prints "View run" lines too
    outcome = json.loads(re.search(r"^\{$.*^\}$", stdout, re.M | re.S).group(0))

    trials = {t.number: t for t in _trials(storage)}
    for number, value in kept2.items():  # finished work survives both outages unchanged
        assert trials[number].value == value
    assert trials[db_trial].state.name == "FAIL"
    assert trials[http_trial].state.name == "FAIL"
    assert server.url in trials[http_trial].user_attrs[FAILURE_ATTR]
    assert len(_finished(trials.values())) == TRIALS
    assert outcome["complete"] + outcome["pruned"] == TRIALS
    versions, aliases = _registry(server.url)
    assert versions == [outcome["version"]] == ["1"]
    # The gate ran as normal: v1 is champion if it beat the baselines, else challenger.
    assert aliases == {"champion" if outcome["decision"]["promote"] else "challenger": "1"}

    client = MlflowClient(tracking_uri=server.url)
    exp = client.get_experiment_by_name(STUDY)
    runs = client.search_runs([exp.experiment_id], max_results=500)
    assert [r.info.run_name for r in runs if r.info.status == "RUNNING"] == []
    by_id = {r.info.run_id: r for r in runs}
    for number in (db_trial, http_trial):
        run = by_id[trials[number].user_attrs["mlflow_run_id"]]
        assert run.info.status == "KILLED" and run.data.tags[NOTE_TAG], run.data.tags
    assert client.get_run(outcome["parent_run_id"]).info.status == "FINISHED"

    states = [trials[n].state.name for n in sorted(trials)]
    print(
        f"\nfault: database stopped during trial {db_trial} -> exit 75:\n  {db_error}\n"
        f"tracking server killed during trial {http_trial} -> exit 75:\n  {http_error}\n"
        f"finished trials kept {sorted(kept1)} then {sorted(kept2)}; after resume: states "
        f"{states}, {outcome['complete']} complete + {outcome['pruned']} pruned; registry "
        f"during outages: no version, no alias; after: versions {versions}, aliases {aliases}"
    )
