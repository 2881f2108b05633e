"""Which models one server's workers should run: a small JSON file they all follow.

``bentoml serve --workers N`` runs N processes behind one port, and an admin request reaches
one of them. The worker that loads a new served or shadow model writes the wanted tags to
``<state>/serving/desired-<server pid>.json`` (atomically: a temporary file, then a rename);
every worker polls that file (``ModelSlots.follow``) and loads what it names. The server
pid is the workers' parent, so two servers sharing a state folder do not follow each other,
and a file written before this server started (a pid reused after a restart) is ignored.
A worker that BentoML restarts starts on the wanted models.

Each worker also writes what it runs to ``applied-<server pid>-<worker pid>.json`` next to
it, so the worker that took an admin request can wait until every live worker has followed
before it answers (:meth:`DesiredFile.wait_applied`): after a 200, any worker serves the new
model and shadow.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class Desired:
    """The tags the workers should serve (``shadow_tag`` ``None``: no shadow)."""

    model_tag: str
    shadow_tag: str | None
    written_at: float  # unix seconds


class DesiredFile:
    """Reader and writer of one server's desired-models file.

    Args:
        path: the JSON file.
        since: unix time; files written before it are ignored (default: never ignored).
    """

    def __init__(self, path: Path, since: float = 0.0) -> None:
        self.path = Path(path)
        self.since = since

    @classmethod
    def for_server(cls, state_dir: Path) -> DesiredFile:
        """The file of the server this worker belongs to (its parent process)."""
        parent = os.getppid()
        try:
            since = psutil.Process(parent).create_time()
        except psutil.Error:
            since = time.time()  # parent gone: follow only what is written from now on
        return cls(Path(state_dir) / "serving" / f"desired-{parent}.json", since)

    def write(self, model_tag: str, shadow_tag: str | None) -> None:
        """Replace the file's content with these tags."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"model_tag": model_tag, "shadow_tag": shadow_tag, "written_at": time.time()}
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        partial.write_text(json.dumps(data))
        os.replace(partial, self.path)

    def _applied(self, pid: int | str) -> Path:
        return self.path.with_name(f"applied-{self.path.stem.removeprefix('desired-')}-{pid}.json")

    def mark_applied(self, model_tag: str, shadow_tag: str | None) -> None:
        """Record what this worker (this process) runs now."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        path = self._applied(os.getpid())
        partial = path.with_name(f".{path.name}")
        partial.write_text(json.dumps({"model_tag": model_tag, "shadow_tag": shadow_tag}))
        os.replace(partial, path)

    def behind(self, model_tag: str, shadow_tag: str | None) -> list[int]:
        """Pids of live workers of this server whose applied models differ from these."""
        lagging = []
        for path in self.path.parent.glob(self._applied("*").name):
            pid = path.stem.rsplit("-", 1)[-1]
            if not pid.isdigit() or not psutil.pid_exists(int(pid)):
                continue  # a worker that is gone (a new one starts on the desired models)
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                data = {}
            if (data.get("model_tag"), data.get("shadow_tag")) != (model_tag, shadow_tag):
                lagging.append(int(pid))
        return lagging

    def wait_applied(
        self, model_tag: str, shadow_tag: str | None, timeout_s: float, poll_s: float = 0.1
    ) -> list[int]:
        """Wait until every live worker runs these models; return the pids still behind."""
        deadline = time.monotonic() + timeout_s
        lagging = self.behind(model_tag, shadow_tag)
        while lagging and time.monotonic() < deadline:
            time.sleep(poll_s)
            lagging = self.behind(model_tag, shadow_tag)
        return lagging

    def stamp(self) -> int | None:
        """The file's modification time in ns (``None``: no file); cheap enough to poll."""
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return None

    def read(self) -> Desired | None:
        """The wanted tags, or ``None`` when there is no valid file written since ``since``."""
        try:
            data = json.loads(self.path.read_text())
            desired = Desired(
                model_tag=str(data["model_tag"]),
                shadow_tag=None if data.get("shadow_tag") is None else str(data["shadow_tag"]),
                written_at=float(data["written_at"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return desired if desired.written_at >= self.since else None
