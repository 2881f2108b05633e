"""Run ``bentoml serve serving.service:InterestService`` as a child process (tests, benchmarks, demo).

The server runs in its own session (process group). :func:`stop_server` sends SIGTERM to
that group and BentoML stops its workers itself; :func:`kill_server` SIGKILLs the whole
process tree (the workers run in sessions of their own, so the group alone would miss them). Startup ends when ``/readyz`` answers 200 (model loaded and warmed up); a server that
exits or is not ready in time raises :class:`ServerStartError` with the tail of its log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

REPO = Path(__file__).resolve().parents[1]
SERVICE = "serving.service:InterestService"


class ServerStartError(RuntimeError):
    """``bentoml serve`` exited or did not become ready; the message ends with its log tail."""


@dataclass
class Server:
    """A started ``bentoml serve`` child process."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    _log: IO[bytes] | None = field(default=None, repr=False)

    def stop(self) -> int | None:
        """Stop the server gracefully (see :func:`stop_server`)."""
        return stop_server(self)

    def log_tail(self, chars: int = 3000) -> str:
        """The last ``chars`` characters of the server's combined stdout/stderr."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError as exc:
            return f"(no server log at {self.log_path}: {exc})"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bentoml_executable() -> str:
    """The ``bentoml`` executable next to this interpreter (falls back to ``PATH``)."""
    local = Path(sys.executable).parent / "bentoml"
    return str(local) if local.is_file() else "bentoml"


def start_server(
    env: Mapping[str, str],
    log_path: Path,
    port: int | None = None,
    timeout: float = 180.0,
    host: str = "127.0.0.1",
    service: str = SERVICE,
) -> Server:
    """Start ``bentoml serve`` on ``host:port`` and wait until ``/readyz`` answers 200.

    Args:
        env: variables added to this process's environment (``BENTOML_HOME``,
            ``INTEREST_STATE_DIR``, ``INTEREST_BENTO_MODEL``, ``INTEREST_CONFIG``, ...);
            the repository is put on ``PYTHONPATH`` and BentoML tracking is off by default.
        log_path: file receiving the server's stdout and stderr.
        port: TCP port (default: a free one).
        timeout: seconds to wait for readiness.
        host: interface to bind.
        service: the ``module:Class`` to serve (benchmarks serve a no-op one too).

    Raises:
        ServerStartError: the server exited or was not ready within ``timeout`` (it is
            stopped first); the message holds the tail of its log.
    """
    port = port or free_port()
    full = {
        **os.environ,
        "BENTOML_DO_NOT_TRACK": "True",
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        **env,
    }
    paths = [p for p in full.get("PYTHONPATH", "").split(os.pathsep) if p]
    full["PYTHONPATH"] = os.pathsep.join([str(REPO), *(p for p in paths if p != str(REPO))])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("wb")
    argv = [bentoml_executable(), "serve", service, "--host", host, "--port", str(port)]
    process = subprocess.Popen(
        argv, cwd=REPO, env=full, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    server = Server(process, f"http://{host}:{port}", log_path, log)
    try:
        wait_ready(server, timeout)
    except BaseException:
        stop_server(server)
        raise
    return server


def wait_ready(server: Server, timeout: float) -> None:
    """Poll ``/readyz`` every 0.5 s until it answers 200.

    Raises:
        ServerStartError: the process exited, or ``timeout`` seconds passed.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = server.process.poll()
        if code is not None:
            raise ServerStartError(
                f"bentoml serve exited with {code} before it was ready; "
                f"log {server.log_path}:\n{server.log_tail()}"
            )
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(0.5)
    raise ServerStartError(
        f"bentoml serve at {server.url} not ready after {timeout:g} s; "
        f"log {server.log_path}:\n{server.log_tail()}"
    )


def stop_server(server: Server, timeout: float = 20.0) -> int | None:
    """Send SIGTERM to the server's process group (SIGKILL after ``timeout``); return its code."""
    _signal_group(server, signal.SIGTERM)
    try:
        return server.process.wait(timeout)
    except subprocess.TimeoutExpired:
        return kill_server(server)
    finally:
        _close_log(server)


def kill_server(server: Server, timeout: float = 10.0) -> int | None:
    """SIGKILL the server and every process it started (fault injection); return its code.

    BentoML's workers start their own sessions, so signalling the group would orphan them,
    still serving on the inherited socket: the whole process tree is killed instead. Returns
    once none of those processes is left, so nothing writes after it.
    """
    tree = [server.process.pid, *_descendants(server.process.pid)]
    for pid in reversed(tree):  # workers first: they hold the socket and write the log
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _signal_group(server, signal.SIGKILL)
    try:
        code = server.process.wait(timeout)
    except subprocess.TimeoutExpired:
        code = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(pid) for pid in tree[1:]):
        time.sleep(0.05)
    _close_log(server)
    return code


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # a zombie runs no code


def _descendants(root: int) -> list[int]:
    """Processes below ``root`` (from /proc), parents before children."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended while we looked
            # Fields after the parenthesised command name: state, ppid, ...
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        found.extend(frontier)
    return found


def _signal_group(server: Server, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group has already gone
        os.killpg(server.process.pid, signum)


def _close_log(server: Server) -> None:
    if server._log is not None and not server._log.closed:
        server._log.close()
