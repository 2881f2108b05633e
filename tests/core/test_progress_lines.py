"""Progress lines: drawn on a terminal when asked for, silent otherwise; steps report them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from core import progress
from core.progress import counter, progress_enabled, stage_line
from synthlogs.generator import SynthConfig
from synthlogs.stream import write_synthetic_parquet


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not progress_enabled(True)  # a pipe or a log file: no bars
    monkeypatch.setattr("sys.stderr", _Terminal())
    assert progress_enabled(True) and not progress_enabled(False)  # --no-progress


def test_disabled_lines_write_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with stage_line("refit", False) as say, counter("generating", "users", False) as advance:
        say("fitting")
        advance(5, 10)
    assert capsys.readouterr().err == ""


def test_counter_draws_done_of_total(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(progress, "_console", lambda: Console(file=out, width=100))
    with counter("generating", "users", True) as advance:
        advance(40_000, 100_000)
    assert "generating" in out.getvalue() and "40,000/100,000 users" in out.getvalue()


def test_streamed_generation_reports_users_after_each_shard(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    config = SynthConfig(n_users=50, n_days=3, seed=0, n_items=200)
    write_synthetic_parquet(
        config,
        tmp_path / "x.parquet",
        users_per_shard=20,
        truth=False,
        advance=lambda d, t: seen.append((d, t)),
    )
    assert seen == [(20, 50), (40, 50), (50, 50)]
