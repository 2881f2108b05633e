"""Alias moves with an append-only history kept on the registered model.

Every move of an alias (``challenger``, ``champion``, ``previous``) made by ``interest``
goes through :func:`move_alias`, which moves it and then appends one registered-model tag
``alias_history.<UTC nanoseconds>.<random id>`` holding one :class:`AliasMove` as JSON.

Why tags on the registered model rather than runs in an experiment: the history travels
with the model it describes and is read in one ``get_registered_model`` call (no run search,
no paging, nothing to clean up separately); one tag per move, not one growing JSON list,
keeps every value far below MLflow's 5,000-character tag limit, and a fresh key per move
makes writing append-only: no move overwrites another, even from two processes at once.
Keys sort by time, so the history reads in order.

Rollback (:func:`rollback_target`) undoes the last champion move: after ``v1 -> v2`` a
rollback restores v1, and a second rollback undoes that one and restores v2.
"""

from __future__ import annotations

import getpass
import json
import secrets
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelkit.registry import CHAMPION, PREVIOUS

if TYPE_CHECKING:
    from mlflow import MlflowClient

HISTORY_PREFIX = "alias_history."
_MAX_TEXT = 1000  # keeps one entry well inside MLflow's tag value limit


class NothingToRollBack(LookupError):
    """The champion has no earlier version to return to."""


@dataclass(frozen=True)
class AliasMove:
    """One move of one alias; ``None`` versions mean "unset"."""

    alias: str
    from_version: str | None
    to_version: str | None
    who: str
    command: str
    reason: str
    at: str  # UTC, ISO 8601

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def current_user() -> str:
    """The login name recorded with a move (``unknown`` where the OS cannot tell)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def invoked_command() -> str:
    """The command line of this process (``interest tune --data ...``), for the history."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return shlex.join([program, *sys.argv[1:]])


def move_alias(
    client: MlflowClient,
    model_name: str,
    alias: str,
    version: str | None,
    *,
    command: str,
    reason: str,
    aliases: dict[str, str] | None = None,
) -> AliasMove | None:
    """Point ``alias`` at ``version`` (``None``: remove it) and append the move to the history.

    Args:
        client: registry client.
        model_name: registered model.
        alias: the alias to move.
        version: target version, or ``None`` to delete the alias.
        command: the command that moved it, e.g. ``interest rollback``.
        reason: why, in words (a gate verdict, a user's reason).
        aliases: the current ``{alias: version}`` if the caller has it (saves a read).

    Returns:
        The recorded move, or ``None`` when the alias was already there (nothing recorded).
    """
    if aliases is None:
        model = client.get_registered_model(model_name)
        aliases = {a: str(v) for a, v in (model.aliases or {}).items()}
    before = aliases.get(alias)
    after = None if version is None else str(version)
    if before == after:
        return None
    if after is None:
        client.delete_registered_model_alias(model_name, alias)
    else:
        client.set_registered_model_alias(model_name, alias, after)
    move = AliasMove(
        alias=alias,
        from_version=before,
        to_version=after,
        who=current_user(),
        command=command[:_MAX_TEXT],
        reason=reason[:_MAX_TEXT],
        at=datetime.now(UTC).isoformat(timespec="milliseconds"),
    )
    key = f"{HISTORY_PREFIX}{time.time_ns():020d}.{secrets.token_hex(4)}"
    client.set_registered_model_tag(model_name, key, json.dumps(move.to_dict()))
    return move


def alias_history(client: MlflowClient, model_name: str) -> list[AliasMove]:
    """Every recorded move of the model's aliases, oldest first."""
    tags = client.get_registered_model(model_name).tags or {}
    entries = sorted((k, v) for k, v in tags.items() if k.startswith(HISTORY_PREFIX))
    return [AliasMove(**json.loads(value)) for _, value in entries]


def rollback_target(history: list[AliasMove], aliases: dict[str, str]) -> str:
    """The version a rollback makes champion: the one the last champion move replaced.

    Models promoted before the history existed fall back to the ``previous`` alias.

    Raises:
        NothingToRollBack: no champion, or the champion was never preceded by another.
        LookupError: the champion alias was moved outside ``interest`` (history disagrees).
    """
    champion = aliases.get(CHAMPION)
    if champion is None:
        raise NothingToRollBack("there is no champion to roll back")
    moves = [m for m in history if m.alias == CHAMPION]
    if not moves:
        if PREVIOUS in aliases:
            return aliases[PREVIOUS]
        raise NothingToRollBack(f"champion v{champion} has no previous champion to roll back to")
    last = moves[-1]
    if last.to_version != champion:
        raise LookupError(
            f"the champion is v{champion} but the alias history's last champion move is to "
            f"v{last.to_version}: the alias was moved outside interest; set the champion "
            "with `interest promote VERSION --force`"
        )
    if last.from_version is None:
        raise NothingToRollBack(f"v{champion} was the first champion: nothing to roll back to")
    return last.from_version
