"""MetaRepo over SQLite: the ``meta`` key/value table."""

from __future__ import annotations

from bot.storage.sqlite.connection import Connection


class SqliteMeta:
    """Installation facts inside one unit's transaction."""

    def __init__(self, db: Connection) -> None:
        self._db = db

    async def get(self, key: str) -> str | None:
        """The value stored under ``key``."""
        row = await self._db.fetch_one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    async def put(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``."""
        await self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
