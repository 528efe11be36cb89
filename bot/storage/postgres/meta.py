"""Installation facts (the synced commands' hash, say) in PostgreSQL's ``meta`` table."""

from __future__ import annotations

from bot.storage.postgres.types import Connection


class PostgresMeta:
    """:class:`~bot.storage.base.MetaRepo` on one connection inside its unit's transaction."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    async def get(self, key: str) -> str | None:
        """The value stored under ``key``."""
        value: str | None = await self._db.fetchval("SELECT value FROM meta WHERE key = $1", key)
        return value

    async def put(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``."""
        await self._db.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            key,
            value,
        )
