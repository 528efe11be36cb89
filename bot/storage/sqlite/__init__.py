"""The sqlite backend of :mod:`bot.storage` (being written: not used by the bot yet)."""

from __future__ import annotations

from pathlib import Path

from bot.storage.base import Storage, StorageError


async def open_sqlite(path: Path) -> Storage:
    """Open the database."""
    raise StorageError("the sqlite storage backend is not built yet")
