"""The SQLite database: one connection in WAL mode, numbered migrations, serialised transactions.

All SQL of the bot lives in the modules that own each concern (``quotas``, ``job_store``);
this module only opens the database, migrates it and hands out transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite
import structlog

log = structlog.get_logger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (stored as ISO 8601 text)."""
    return datetime.now(UTC)


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every file in ``bot/migrations``, in order."""
    found = []
    for entry in importlib.resources.files("bot.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


class Store:
    """An open database. Use :meth:`open` and close it with :meth:`close` (or ``async with``).

    aiosqlite runs one connection on its own thread; the lock makes each ``transaction()``
    exclusive among this process's coroutines, and ``BEGIN IMMEDIATE`` with a busy timeout
    makes it exclusive against other processes (the operator CLI) too.
    """

    def __init__(self, connection: aiosqlite.Connection, path: Path | None) -> None:
        self.connection = connection
        self.path = path
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        """Open (creating it and its folder if needed) and migrate the database at ``path``."""
        path = Path(path)
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        connection = await aiosqlite.connect(path, isolation_level=None)
        connection.row_factory = aiosqlite.Row
        await connection.execute("PRAGMA journal_mode = WAL")
        await connection.execute("PRAGMA synchronous = NORMAL")
        await connection.execute("PRAGMA foreign_keys = ON")
        await connection.execute("PRAGMA busy_timeout = 5000")
        store = cls(connection, path)
        await store.migrate()
        return store

    async def migrate(self) -> None:
        """Apply every migration newer than the database's ``user_version``, each atomically."""
        async with self.connection.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        current = int(row[0]) if row else 0
        for version, name, sql in migrations():
            if version <= current:
                continue
            async with self.transaction() as db:
                await db.executescript_in_txn(sql)
                await db.execute(f"PRAGMA user_version = {version:d}")
            log.info("store.migrated", migration=name, version=version)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """An exclusive write transaction: committed on success, rolled back on error."""
        async with self._lock:
            await self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self.connection)
            except BaseException:
                await self.connection.execute("ROLLBACK")
                raise
            else:
                await self.connection.execute("COMMIT")

    async def fetch_all(self, sql: str, params: tuple[object, ...] = ()) -> list[aiosqlite.Row]:
        """Run a read-only query outside any transaction."""
        async with self._lock:
            return list(await self.connection.execute_fetchall(sql, params))

    async def fetch_one(self, sql: str, params: tuple[object, ...] = ()) -> aiosqlite.Row | None:
        """The first row of a read-only query (meant for single-row queries), or None."""
        async with self._lock:
            rows = await self.connection.execute_fetchall(sql, params)
        return next(iter(rows), None)

    async def close(self) -> None:
        """Checkpoint the WAL and close the connection."""
        with contextlib.suppress(aiosqlite.Error):
            await self.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        await self.connection.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Transaction:
    """The statements of one open transaction.

    Each method is one trip to aiosqlite's thread (two for an UPDATE's row count) instead of
    three (execute, fetch, close): a credit reservation is about ten statements, and the trips,
    not SQLite, were most of its time.
    """

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def execute(self, sql: str, params: tuple[object, ...] = ()) -> int:
        """Run a statement; return the last row id (inserts) or row count (updates)."""
        if sql.lstrip().upper().startswith("INSERT"):
            row = await self._connection.execute_insert(sql, params)
            return int(row[0] or 0) if row is not None else 0
        async with self._connection.execute(sql, params) as cursor:
            return int(cursor.rowcount)

    async def fetch_one(self, sql: str, params: tuple[object, ...] = ()) -> aiosqlite.Row | None:
        """The first row of a query inside the transaction (meant for single-row queries)."""
        return next(iter(await self._connection.execute_fetchall(sql, params)), None)

    async def fetch_all(self, sql: str, params: tuple[object, ...] = ()) -> list[aiosqlite.Row]:
        """All rows of a query inside the transaction."""
        return list(await self._connection.execute_fetchall(sql, params))

    async def executescript_in_txn(self, sql: str) -> None:
        """Run a migration script statement by statement (``executescript`` would COMMIT)."""
        for statement in _split_sql(sql):
            await self._connection.execute(statement)


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements; comments removed, no semicolons inside strings."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
