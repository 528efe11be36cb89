"""The postgres backend of :mod:`bot.storage` (being written: not used by the bot yet)."""

from __future__ import annotations

from bot.storage.base import Storage, StorageError


async def open_postgres(url: str) -> Storage:
    """Open the database."""
    raise StorageError("the postgres storage backend is not built yet")
