"""Text history bags: only events strictly before the cutoff, newest first, per user."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.textbag import history_tokens

DAY = 86_400 * 10**9


def _events() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # user a: day 0 (token 2), day 1 (token 3), day 2 twice (tokens 4 and 5, a same-day
    # burst), day 3 (token 6); user b: day 1 (token 7) and one event without text.
    users = np.array(["a", "a", "a", "a", "a", "b", "b"], dtype=object)
    time = np.array([0, DAY, 2 * DAY, 2 * DAY, 3 * DAY, DAY, 2 * DAY], dtype=np.int64)
    tokens = np.array([[2, 0], [3, 0], [4, 0], [5, 0], [6, 0], [7, 7], [0, 0]], dtype=np.int32)
    return users, time, tokens


def test_only_texts_strictly_before_the_cutoff():
    users, time, tokens = _events()
    cutoff = np.array([np.datetime64(2 * DAY, "ns")] * 2)
    out = history_tokens(users, time, tokens, np.array(["a", "b"]), cutoff, max_texts=8, length=6)
    # The day-2 burst (tokens 4, 5) is at the cutoff: it is the label window, never input.
    assert out[0].tolist() == [3, 2, 0, 0, 0, 0]
    assert out[1].tolist() == [7, 7, 0, 0, 0, 0]
    later = history_tokens(
        users, time, tokens, np.array(["a"]), np.array([3 * DAY]), max_texts=8, length=6
    )
    assert later[0].tolist() == [5, 4, 3, 2, 0, 0]  # the whole burst once the day is past


def test_no_text_at_or_after_the_cutoff_for_any_cutoff():
    rng = np.random.default_rng(0)
    n = 200
    users = rng.choice(np.array(["u1", "u2", "u3"], dtype=object), n)
    time = rng.integers(0, 20, n) * DAY
    tokens = np.zeros((n, 1), np.int32)
    tokens[:, 0] = 10 + time // DAY  # the token names the event's day
    for day in range(21):
        out = history_tokens(
            users, time, tokens, np.array(["u1", "u2", "u3"]), np.full(3, day * DAY),
            max_texts=50, length=60,
        )  # fmt: skip
        assert (out[out > 0] < 10 + day).all()


def test_max_texts_length_window_and_unknown_users():
    users, time, tokens = _events()
    out = history_tokens(
        users, time, tokens, np.array(["a", "zz"]), np.array([4 * DAY] * 2), max_texts=2, length=1
    )
    assert out.tolist() == [[6], [0]]  # newest text first, cut to length; unknown user empty
    window = history_tokens(
        users, time, tokens, np.array(["a"]), np.array([4 * DAY]),
        max_texts=8, length=8, history_ns=2 * DAY,
    )  # fmt: skip
    assert window[0].tolist() == [6, 5, 4, 0, 0, 0, 0, 0]
    stamps = pd.to_datetime([4 * DAY], utc=True).tz_localize(None).to_numpy()
    again = history_tokens(
        users, time, tokens, np.array(["a"]), stamps, max_texts=8, length=8, history_ns=2 * DAY
    )
    assert (again == window).all()
