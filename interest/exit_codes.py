"""Exit statuses of ``interest``: one code, one meaning, across every command.

=====  ===============================  ==========================================
code   outcome                          returned by
=====  ===============================  ==========================================
0      done                             every command (``promote``: promoted;
                                        ``monitor drift``: no drift)
1      error: nothing moved             every command
2      bad usage (unknown option, ...)  every command (typer/click)
3      new champion: redeploy           ``monitor run`` (drift, retrained, promoted)
4      not enough data                  ``monitor drift``, ``monitor run``,
                                        ``monitor performance`` (nothing labelled)
5      refused by the promotion gate    ``promote``, ``monitor run``
6      skipped: window already handled  ``monitor run``
       or cooling down
7      another run holds the lock       ``monitor run``
8      drift, but no event log to       ``monitor run``
       retrain on
9      nothing to roll back to          ``rollback``
10     drift: retraining advised        ``monitor drift``
75     tracking server or database      ``tune`` (retry with ``--resume``)
       unreachable
=====  ===============================  ==========================================

``monitor run``'s codes are :data:`pipelines.monitor.EXIT_CODES`; a test keeps the two
tables in agreement.
"""

from __future__ import annotations

#: Outcome -> exit status (see the module docstring for who returns what).
EXIT_CODES: dict[str, int] = {
    "ok": 0,
    "error": 1,
    "usage": 2,
    "promoted": 3,
    "not_enough_data": 4,
    "refused": 5,
    "skipped": 6,
    "lock_held": 7,
    "no_data": 8,
    "nothing_to_roll_back": 9,
    "drift": 10,
    "outage": 75,
}

#: ``monitor run`` statuses that share one exit code.
ALIASES: dict[str, str] = {"already_handled": "skipped", "cooldown": "skipped"}


def exit_code(outcome: str) -> int:
    """The exit status of ``outcome`` (a key of :data:`EXIT_CODES` or :data:`ALIASES`)."""
    return EXIT_CODES[ALIASES.get(outcome, outcome)]
