"""Checks on free-text columns (``text``, ``item_text``): length limit and undecodable bytes.

A row is never dropped for its text: the event itself is valid. Over-long text is cut to
``data.max_text_chars`` and counted; text holding U+FFFD (bytes a previous step could not
decode) or control characters is kept as is and counted. Every count lands in the
validation report's notes with the file and column, so nothing changes silently.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.schema import TEXT_COLUMNS
from eventlogs.validation import ValidationReport

#: U+FFFD (a decoder's replacement) or C0 control characters other than tab/newline/return.
_BAD_CHARACTERS = "[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f]"


def check_text(frame: pd.DataFrame, report: ValidationReport, max_chars: int) -> pd.DataFrame:
    """Cut over-long text and count suspicious characters, per text column.

    Args:
        frame: canonical-named rows (after :func:`eventlogs.validation.clean_events`).
        report: gets one note per column with something to say.
        max_chars: the length limit (``data.max_text_chars``).

    Returns:
        ``frame`` with text columns cut to ``max_chars`` characters (a copy if any was cut).
    """
    for column in TEXT_COLUMNS:
        if column not in frame.columns or frame.empty:
            continue
        values = frame[column].astype("string[pyarrow]")
        arrow = pa.array(values.array)
        lengths = pc.utf8_length(arrow).fill_null(0).to_numpy(zero_copy_only=False)
        long = int((lengths > max_chars).sum())
        bad = pc.match_substring_regex(arrow, _BAD_CHARACTERS).fill_null(False)
        n_bad = int(pc.sum(bad).as_py() or 0)
        if long:
            cut = pc.utf8_slice_codeunits(arrow, 0, max_chars)
            frame = frame.copy()
            frame[column] = pd.Series(
                pd.arrays.ArrowStringArray(pa.chunked_array([cut])), index=frame.index
            )
            report.notes.append(
                f"{report.source}: column {column!r}: {long:,} rows longer than "
                f"data.max_text_chars={max_chars:,} were cut to that length (rows kept)"
            )
        if n_bad:
            report.notes.append(
                f"{report.source}: column {column!r}: {n_bad:,} rows hold undecodable (U+FFFD) "
                f"or control characters (rows kept, text as read)"
            )
    return frame
