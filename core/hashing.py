"""Pseudonymous user keys shared by serving (writes them) and monitoring (joins on them)."""

from __future__ import annotations

import hashlib

USER_HASH_CHARS = 16


def hash_user(user_id: str | None) -> str | None:
    """Return the first 16 hex digits of sha256(user id), or ``None`` for anonymous calls."""
    if user_id is None:
        return None
    return hashlib.sha256(str(user_id).encode()).hexdigest()[:USER_HASH_CHARS]
