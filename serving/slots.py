"""The served model and the shadow, each swapped whole while requests keep flowing.

A request takes the served :class:`~serving.deployed.Deployed` once (:meth:`ModelSlots.acquire`)
and uses only it: its vocabulary to encode, its micro-batcher and bundle to predict, its
identity in the answer and the log record. A reload loads and warms the new model off the
request path, gives it its own micro-batcher, then swaps one reference: later requests take
the new model; requests already holding the old one finish on it (their micro-batches never
mix the two), and the old batcher is closed once the last of them is answered. Nobody sees
a half-swapped state.

With ``bentoml serve --workers N`` an admin request reaches one worker. That worker writes the
wanted tags to the server's :class:`~serving.desired.DesiredFile` and every worker's follower
thread (:meth:`ModelSlots.follow`, polling once a second) loads them, so all workers pick a
reload up within about a second plus the load time. Each worker records what it runs, and the
worker that took the request answers only once every live worker runs the new models (or after
``FOLLOW_WAIT_S``, with a warning in the log), so after a 200 any worker serves them. A worker
whose own load fails keeps its model and logs the error (only the worker that took the request
can answer with it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from serving.deployed import Deployed
from serving.desired import DesiredFile

logger = logging.getLogger("bentoml.serve.interest")
RETIRE_TIMEOUT_S = 120.0  # a request older than this is stuck; close its batcher anyway
FOLLOW_WAIT_S = 60.0  # an admin answer waits this long at most for the other workers


class ModelSlots:
    """Holds the served model and the optional shadow; loads, swaps and retires them.

    Args:
        served: the model served at start.
        shadow: the shadow at start, or ``None``.
        load: ``tag -> Deployed`` (loads and warms up; blocking).
        attach: gives a newly loaded served model its micro-batcher, before it goes live.
        on_swap: called with each new served model once it is live.
        desired: the file all workers of this server follow (``None``: this worker only).
    """

    def __init__(
        self,
        served: Deployed,
        shadow: Deployed | None,
        load: Callable[[str], Deployed],
        attach: Callable[[Deployed], None],
        on_swap: Callable[[Deployed], None] | None = None,
        desired: DesiredFile | None = None,
    ) -> None:
        self._served = served
        self._shadow = shadow
        self._load = load
        self._attach = attach
        self._on_swap = on_swap
        self._desired = desired
        self._count = threading.Lock()  # the served reference and in_use counts
        self._apply = threading.Lock()  # one load-and-swap at a time
        self._stop = threading.Event()
        self._follower: threading.Thread | None = None
        self._followed = desired.stamp() if desired is not None else None
        self.shadow_error: str | None = None  # why the wanted shadow is not running

    @property
    def served(self) -> Deployed:
        """The model new requests get."""
        return self._served

    @property
    def shadow(self) -> Deployed | None:
        """The shadow model, or ``None``."""
        return self._shadow

    @contextmanager
    def acquire(self) -> Iterator[Deployed]:
        """Hold the served model for one request (from encoding to the answer)."""
        with self._count:
            served = self._served
            served.in_use += 1
        try:
            yield served
        finally:
            with self._count:
                served.in_use -= 1

    def reload(self, tag: str, *, share: bool = True) -> tuple[Deployed, Deployed]:
        """Load ``tag``, warm it up and make it the served model; return ``(new, old)``.

        Blocking (seconds): call it off the event loop. If loading fails the old model
        stays served and the exception propagates.

        Args:
            tag: BentoML model tag.
            share: also write the file the other workers follow.
        """
        with self._apply:
            new = self._load(tag)
            self._attach(new)
            with self._count:
                old, self._served = self._served, new
            if share:
                self._share()
        logger.info("now serving %s (was %s)", new.model.bento_tag, old.model.bento_tag)
        if share:
            self._await_followers()
        threading.Thread(target=self._retire, args=(old,), name="retire", daemon=True).start()
        if self._on_swap is not None:
            try:
                self._on_swap(new)
            except Exception:  # noqa: BLE001 - the swap is done; a listener cannot undo it
                logger.exception("after the swap to %s", new.model.bento_tag)
        return new, old

    def set_shadow(
        self, tag: str | None, *, share: bool = True
    ) -> tuple[Deployed | None, Deployed | None]:
        """Load ``tag`` as the shadow (``None``: remove it); return ``(new, old)``.

        Blocking; if loading fails the old shadow stays and the exception propagates.
        """
        with self._apply:
            new = self._load(tag) if tag is not None else None
            old, self._shadow = self._shadow, new
            self.shadow_error = None
            if share:
                self._share()
        logger.info("shadow: %s", new.model.bento_tag if new is not None else "none")
        if share:
            self._await_followers()
        return new, old

    def follow(self, interval_s: float = 1.0) -> None:
        """Start the thread that applies changes of the desired-models file."""
        if self._desired is None or self._follower is not None:
            return
        self.apply_desired()  # a change written while this worker was starting
        self._mark_applied()
        self._follower = threading.Thread(
            target=self._follow, args=(interval_s,), name="follow-desired", daemon=True
        )
        self._follower.start()

    def apply_desired(self) -> None:
        """Load what the desired-models file names, where it differs from what runs here."""
        wanted = self._desired.read() if self._desired is not None else None
        if wanted is None:
            return
        if wanted.model_tag != self._served.model.bento_tag:
            try:
                self.reload(wanted.model_tag, share=False)
            except Exception:  # noqa: BLE001 - keep serving the old model
                logger.exception("cannot follow the reload to %s", wanted.model_tag)
        running = self._shadow.model.bento_tag if self._shadow is not None else None
        if wanted.shadow_tag != running:
            try:
                self.set_shadow(wanted.shadow_tag, share=False)
            except Exception as exc:  # noqa: BLE001 - the shadow never stops serving
                self.shadow_error = f"cannot load shadow {wanted.shadow_tag}: {exc}"
                logger.exception("cannot follow the shadow change to %s", wanted.shadow_tag)
        self._mark_applied()

    def close(self) -> None:
        """Stop following and close the served model's batcher."""
        self._stop.set()
        if self._served.batcher is not None:
            self._served.batcher.close()

    def _tags(self) -> tuple[str, str | None]:
        shadow = self._shadow.model.bento_tag if self._shadow is not None else None
        return self._served.model.bento_tag, shadow

    def _share(self) -> None:
        if self._desired is None:
            return
        self._desired.write(*self._tags())
        self._followed = self._desired.stamp()
        self._mark_applied()

    def _mark_applied(self) -> None:
        if self._desired is not None:
            try:
                self._desired.mark_applied(*self._tags())
            except OSError:
                logger.exception("cannot record the models this worker runs")

    def _await_followers(self) -> None:
        if self._desired is None:
            return
        tags = self._tags()
        lagging = self._desired.wait_applied(*tags, timeout_s=FOLLOW_WAIT_S)
        if lagging:
            logger.warning("workers %s do not run %s after %.0f s", lagging, tags, FOLLOW_WAIT_S)

    def _follow(self, interval_s: float) -> None:
        assert self._desired is not None
        while not self._stop.wait(interval_s):
            stamp = self._desired.stamp()
            if stamp != self._followed:
                self._followed = stamp
                self.apply_desired()

    def _retire(self, old: Deployed) -> None:
        deadline = time.monotonic() + RETIRE_TIMEOUT_S
        while time.monotonic() < deadline:
            with self._count:
                if old.in_use == 0:
                    break
            time.sleep(0.05)
        else:
            logger.warning("%d requests still on %s; closing it", old.in_use, old.model.bento_tag)
        if old.batcher is not None:
            old.batcher.close()
