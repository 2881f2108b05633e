"""Fuzzed event files: every one loads with exact row accounting or fails with a clear error.

Hypothesis (derandomized, so CI is reproducible) mutates a valid Taobao CSV: truncation,
other encodings, huge fields, NUL bytes, wrong delimiters, dropped or extra columns, byte
flips. Allowed outcomes: :class:`DataValidationError` naming the file, or a result where
``rows_read == rows_kept + dropped`` and every non-blank line was read as a row (no silent
loss). Anything else (another exception, rows vanishing) fails.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import DataConfig
from eventlogs.loaders import load_events
from eventlogs.validation import DataValidationError

pytestmark = pytest.mark.fuzz

ROWS = 30
OUTCOMES: Counter[str] = Counter()


def _valid_lines() -> list[str]:
    behaviors = ["pv", "pv", "cart", "fav", "buy"]
    return [
        f"{100 + i % 7},{2000 + i},{30 + i % 4},{behaviors[i % 5]},{1511544070 + 97 * i}"
        for i in range(ROWS)
    ]


@st.composite
def fuzzed_files(draw: st.DrawFn) -> bytes:
    """A valid file with one to three mutations applied in order."""
    lines = _valid_lines()
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(
            st.sampled_from(["huge", "nul", "delimiter", "columns", "unicode", "blank", "garbage"])
        )
        row = draw(st.integers(0, len(lines) - 1))
        if kind == "huge":
            field = draw(st.integers(0, 4))
            parts = lines[row].split(",")
            if field < len(parts):
                parts[field] = draw(st.sampled_from(["9", "x", "é"])) * 200_000
            lines[row] = ",".join(parts)
        elif kind == "nul":
            at = draw(st.integers(0, len(lines[row])))
            lines[row] = lines[row][:at] + "\x00" + lines[row][at:]
        elif kind == "delimiter":
            sep = draw(st.sampled_from([";", "\t", "|", " "]))
            every = draw(st.booleans())
            lines = [x.replace(",", sep) for x in lines] if every else lines
            lines[row] = lines[row].replace(",", sep)
        elif kind == "columns":
            parts = lines[row].split(",")
            lines[row] = ",".join(parts[:-1] if draw(st.booleans()) else [*parts, "extra"])
        elif kind == "unicode":
            lines[row] = lines[row].replace("pv", draw(st.sampled_from(["pv\u00e9", "\u2603", ""])))
        elif kind == "blank":
            lines.insert(row, draw(st.sampled_from(["", "   ", ",,,,"])))
        else:
            lines[row] = draw(st.text(max_size=40))
    text = "\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "latin-1", "cp1252"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.booleans()):  # truncated mid-file, e.g. an interrupted download
        data = data[: draw(st.integers(0, len(data)))]
    if draw(st.integers(0, 9)) == 0 and data:  # a flipped byte
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
    return data


def _data_lines(data: bytes) -> int:
    """Non-blank lines of a UTF-8 file: what the loader must account for."""
    text = data.decode("utf-8-sig")
    return sum(1 for line in text.splitlines() if line.strip())


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=fuzzed_files(), max_drop=st.sampled_from([0.05, 1.0]))
def test_fuzzed_file_loads_exactly_or_fails_clearly(data: bytes, max_drop: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzzed.csv"
        path.write_bytes(data)
        config = DataConfig(format="taobao", max_drop_share=max_drop)
        try:
            result = load_events(path, config)
        except DataValidationError as err:
            message = str(err)
            assert str(path) in message and len(message) > len(str(path)) + 10, message
            OUTCOMES["DataValidationError"] += 1
            return
    report = result.report
    assert report.rows_read == report.rows_kept + report.rows_dropped, report.to_dict()
    assert report.rows_kept == len(result.events)
    assert report.rows_read == _data_lines(data), (report.to_dict(), data[:300])
    OUTCOMES["loaded, dropped some" if report.rows_dropped else "loaded, all kept"] += 1


def test_print_fuzz_outcomes() -> None:
    """Runs after the fuzz test (file order) and shows what it held."""
    print(f"\nloader fuzz outcomes: {dict(OUTCOMES)}")
    if OUTCOMES:
        assert sum(OUTCOMES.values()) >= 100
