"""Progress lines on stderr for long steps (refit, data generation, retraining), or nothing.

One rule for every command: progress is drawn with ``rich`` only when asked for (the CLI's
``--progress``, on by default, ``--no-progress`` to turn off, as ``interest tune`` has) and
stderr is a terminal; logs and pipes get no bars. Stages report through plain callables,
so the code doing the work never imports ``rich`` and runs the same without a display.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: ``say(text)``: the step now running (``"fitting: epoch 2/5"``).
Say = Callable[[str], None]
#: ``advance(done, total)``: units done so far of ``total``.
Advance = Callable[[int, int], None]


def progress_enabled(requested: bool = True) -> bool:
    """Draw progress only when ``requested`` and stderr is a terminal."""
    return requested and sys.stderr.isatty()


def _quiet(*_: object) -> None:
    return None


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


@contextmanager
def stage_line(title: str, enabled: bool) -> Iterator[Say]:
    """A spinner line ``title: <stage>  0:00:12`` while the block runs; yields ``say``.

    Args:
        title: what the whole step is (``"refit of trial 3"``).
        enabled: draw it (see :func:`progress_enabled`); otherwise ``say`` does nothing.
    """
    if not enabled:
        yield _quiet
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(),
        TextColumn(f"{title}: {{task.description}}"),
        TimeElapsedColumn(),
        console=_console(),
        transient=True,
    )
    task = progress.add_task("starting", total=None)
    with progress:
        yield lambda text: progress.update(task, description=text)


@contextmanager
def counter(title: str, unit: str, enabled: bool) -> Iterator[Advance]:
    """A bar ``title ━━━━ 40,000/100,000 users  0:00:12 (eta 0:00:18)``; yields ``advance``.

    Args:
        title: what is counted (``"generating"``).
        unit: the counted things (``"users"``, ``"rows"``, ``"buckets"``).
        enabled: draw it (see :func:`progress_enabled`); otherwise ``advance`` does nothing.
    """
    if not enabled:
        yield _quiet
        return
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn(title),
        BarColumn(),
        TextColumn(f"{{task.completed:,.0f}}/{{task.total:,.0f}} {unit}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=_console(),
        transient=False,
    )
    task = progress.add_task(title, total=0)  # the first advance sets it
    with progress:
        yield lambda done, total: progress.update(task, completed=done, total=total)
