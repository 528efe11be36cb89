"""The mark ``pikabot migrate-db`` leaves in an SQLite file it copied to PostgreSQL.

After the copy the bot's credits and jobs live in PostgreSQL; a bot or command started on the
old file by mistake (a forgotten ``PIKABOT_DATABASE_URL``) would spend from a stale balance
beside the real one. So the copy writes where the data went into the file's ``meta``, and
every later open of the file as the bot, a command or a copy is refused naming it. The file
itself stays as it was, a backup of the moment of the move.
"""

from __future__ import annotations

import json
from datetime import datetime

from bot.storage.base import MetaRepo, StorageError

MOVED_KEY = "moved_to"
"""The ``meta`` key: ``{"to": location without password, "at": ISO 8601 instant}``."""


class DatabaseMoved(StorageError):
    """The SQLite file was copied to PostgreSQL by ``migrate-db``; its data live there now."""


async def mark_moved(meta: MetaRepo, location: str, at: datetime) -> None:
    """Record that the file's data were copied to ``location`` (never with a password)."""
    await meta.put(MOVED_KEY, json.dumps({"to": location, "at": at.isoformat()}))


async def refuse_if_moved(meta: MetaRepo, path: str) -> None:
    """Raise :class:`DatabaseMoved` if ``migrate-db`` copied this file away."""
    stored = await meta.get(MOVED_KEY)
    if stored is None:
        return
    moved = json.loads(stored)
    raise DatabaseMoved(
        f"the database at {path} was copied to {moved['to']} by pikabot migrate-db on"
        f" {moved['at'][:10]}: set PIKABOT_DATABASE_URL to that database (the file is kept"
        " only as a backup of the moment it was copied)"
    )
