"""Outages: the tracking server or the database stops answering in the middle of a job.

A study must then stop with one clear paragraph (which service, during which step, how to
resume), register nothing and move no alias, and leave state a ``--resume`` can continue
from: finished trials are kept in the Optuna storage, the interrupted trial is failed
(now, or by its stale heartbeat) and its MLflow run is closed on resume.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException

from core.config import ProjectConfig

_RETRIES = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
#: ``interest tune`` gives up on a refused MLflow request after about a minute (5 retries,
#: backoff doubling from 4 s) instead of MLflow's default 7 (about 4 minutes): a study can
#: resume, so a clear error soon beats a long hang. An explicit setting wins.
TUNE_HTTP_RETRIES = 5
#: Trial user attribute holding why a trial failed on an outage (closing notes quote it).
FAILURE_ATTR = "interest.failure"
_TRACKING_ERRORS = {
    "requests.exceptions.ConnectionError",
    "requests.exceptions.Timeout",
    "requests.exceptions.RetryError",
    "urllib3.exceptions.MaxRetryError",
}
_DATABASE_ERRORS = {
    "sqlalchemy.exc.OperationalError",
    "sqlalchemy.exc.InterfaceError",
    "sqlalchemy.exc.DisconnectionError",
    "psycopg.OperationalError",
}


class ServiceOutage(RuntimeError):
    """The tracking server or the database stopped answering; the job can be resumed.

    Attributes:
        failures: ``{service: one-line cause}``, e.g. ``{"MLflow tracking server http://h:5000":
            "POST /api/2.0/mlflow/runs/log-batch: Connection refused"}``.
        stage: what the job was doing, e.g. ``"running trial 3"``.
    """

    def __init__(self, message: str, failures: dict[str, str], stage: str) -> None:
        super().__init__(message)
        self.failures = failures
        self.stage = stage

    @property
    def summary(self) -> str:
        """One line: which service failed, how, and during which step."""
        return _summary(self.failures, self.stage)


def _lost(failures: dict[str, str]) -> str:
    return "; ".join(f"{service} failed ({cause})" for service, cause in failures.items())


def _summary(failures: dict[str, str], stage: str) -> str:
    return f"{_lost(failures)} while {stage}"


def _chain(err: BaseException) -> list[BaseException]:
    """``err`` and every exception it was raised from or while handling (no repeats)."""
    seen: list[BaseException] = []
    todo = [err]
    while todo and len(seen) < 50:
        exc = todo.pop(0)
        if exc is None or any(exc is s for s in seen):
            continue
        seen.append(exc)
        todo += [exc.__cause__, exc.__context__]
    return seen


def _short(text: str) -> str:
    """One line naming the request and the reason, from urllib3/SQLAlchemy's long messages."""
    url = re.search(r"API request to \S*?(/api/\S+)", text)
    reason = re.search(r"\[Errno -?\d+\] ([^'\"\)]+)|ResponseError\('([^']+)'\)|(timeout)", text)
    if url and reason:
        return f"{url.group(1)}: {next(g for g in reason.groups() if g)}"
    line = " ".join(text.strip().splitlines()[:1]) or text.strip()
    return line if len(line) <= 240 else line[:237] + "..."


def _mask(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@/]+@", r"://\1:***@", url)


def find_outage(err: BaseException, config: ProjectConfig) -> dict[str, str]:
    """Return ``{service: cause}`` for each lost connection chained to ``err`` ({} if none)."""
    paths = config.paths.resolved()
    tracking = f"MLflow tracking server {_mask(paths.tracking_uri)}"
    database = f"Optuna storage {_mask(paths.optuna_storage)}"
    if not paths.tracking_uri.startswith(("http://", "https://")):
        # Without a server MLflow talks SQL itself: a database error may be either store's.
        tracking = f"MLflow tracking store {_mask(paths.tracking_uri)}"
        database = f"database (Optuna storage {_mask(paths.optuna_storage)} or {tracking})"
    found: dict[str, str] = {}
    for exc in _chain(err):
        names = {f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__}
        if isinstance(exc, ServiceOutage):
            found.update(exc.failures)
        elif isinstance(exc, MlflowException) and str(exc).startswith("API request to"):
            cause = _short(str(exc))
            if "500 error" in cause:  # the server is up but its own database is not
                cause += " (is the server's database down?)"
            found.setdefault(tracking, cause)
        elif names & _TRACKING_ERRORS:
            found.setdefault(tracking, _short(str(exc)))
        elif names & _DATABASE_ERRORS:
            found.setdefault(database, _short(str(exc)))
    return found


def outage_error(
    err: BaseException,
    config: ProjectConfig,
    *,
    study_name: str,
    stage: str,
    registering: bool = False,
) -> ServiceOutage | None:
    """Describe a lost tracking server or database in one paragraph (``None``: not an outage).

    Args:
        err: the exception the job stopped with.
        config: names the tracking URI and Optuna storage in the message.
        study_name: the study to resume.
        stage: what the job was doing; an inner :class:`ServiceOutage`'s stage wins.
        registering: the outage hit registration, so a version may exist without its gate.
    """
    failures = find_outage(err, config)
    if not failures:
        return None
    inner = [e for e in _chain(err) if isinstance(e, ServiceOutage)]
    stage = inner[-1].stage if inner else stage
    aftermath = (
        "Registration was interrupted: check the model's versions and aliases."
        if registering
        else "Nothing was registered and no alias moved."
    )
    message = (
        f"study {study_name!r} stopped: {_summary(failures, stage)}. {aftermath} Once it "
        f"is back, run `interest tune --resume --study-name {study_name}` to continue; "
        "finished trials are kept."
    )
    return ServiceOutage(message, failures, stage)


_GUARDS = threading.local()


def note_stage(stage: str) -> None:
    """Tell this thread's innermost :class:`OutageGuard` what the job is doing now."""
    stack = getattr(_GUARDS, "stack", None)
    if stack:
        stack[-1].stage = stage


class OutageGuard:
    """Context manager turning a lost tracking server or database into one ServiceOutage.

    Set ``stage`` as the job advances (it names the step in the message; code deeper down
    uses :func:`note_stage`) and ``registering`` once a model version may be created.
    """

    def __init__(self, config: ProjectConfig, study_name: str, stage: str = "starting") -> None:
        self.config = config
        self.study_name = study_name
        self.stage = stage
        self.registering = False

    def __enter__(self) -> OutageGuard:
        if not hasattr(_GUARDS, "stack"):
            _GUARDS.stack = []
        _GUARDS.stack.append(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        _GUARDS.stack.remove(self)
        if not isinstance(exc, Exception):
            return False
        outage = outage_error(
            exc,
            self.config,
            study_name=self.study_name,
            stage=self.stage,
            registering=self.registering,
        )
        if outage is None:
            return False
        raise outage from exc


def end_run_quickly(status: str = "FAILED") -> None:
    """End the active run with one try, no retries: used when the server may be gone.

    ``mlflow.end_run`` drops the run locally before telling the server, so the process
    stays usable (a resume in the same process can start runs) even when the call fails.
    """
    saved = os.environ.get(_RETRIES)
    os.environ[_RETRIES] = "0"
    try:
        mlflow.end_run(status=status)
    except Exception:  # noqa: BLE001 - best effort: a resume closes the run instead
        pass
    finally:
        if saved is None:
            os.environ.pop(_RETRIES, None)
        else:
            os.environ[_RETRIES] = saved


@contextmanager
def tracked_run(config: ProjectConfig, **start_kwargs: Any) -> Iterator[mlflow.ActiveRun]:
    """``mlflow.start_run`` whose exit does not retry for minutes against a lost server.

    Ends the run FINISHED on success, FAILED on an error, unless the body ended it already.
    """
    run = mlflow.start_run(**start_kwargs)

    def active() -> bool:
        current = mlflow.active_run()
        return current is not None and current.info.run_id == run.info.run_id

    try:
        yield run
    except BaseException as err:
        if active():
            if find_outage(err, config):
                end_run_quickly("FAILED")
            else:
                mlflow.end_run(status="FAILED")
        raise
    if active():
        mlflow.end_run()


def limit_http_retries(env: dict[str, str] | None = None) -> None:
    """Default ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` to :data:`TUNE_HTTP_RETRIES` when unset."""
    target = os.environ if env is None else env
    target.setdefault(_RETRIES, str(TUNE_HTTP_RETRIES))


_HOOK_CONFIG: list[ProjectConfig] = []


def quiet_outage_tracebacks(config: ProjectConfig) -> None:
    """Report a trial or heartbeat thread stopped by an outage in one line, not a traceback.

    The job's own :class:`ServiceOutage` says the rest. Idempotent.
    """
    logger = logging.getLogger("optuna.study._optimize")
    if not any(isinstance(f, _OutageFilter) for f in logger.filters):
        logger.addFilter(_OutageFilter())
    _HOOK_CONFIG[:] = [config]  # names the services in the hook's line
    previous = threading.excepthook
    if getattr(previous, "_interest_outage", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        exc = args.exc_value
        failures = find_outage(exc, _HOOK_CONFIG[0]) if exc and _HOOK_CONFIG else {}
        if not failures:
            previous(args)
            return
        name = args.thread.name if args.thread else "a thread"
        print(f"warning: {name} stopped: {_lost(failures)}", file=sys.stderr, flush=True)

    hook._interest_outage = True  # type: ignore[attr-defined]
    threading.excepthook = hook


class _OutageFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], ServiceOutage):
            record.exc_info = None
            record.exc_text = None
        return True
