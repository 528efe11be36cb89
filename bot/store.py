"""The SQLite database: one connection in WAL mode, numbered migrations, serialised transactions.

All SQL of the bot lives in the modules that own each concern (``quotas``, ``job_store``);
this module only opens the database, migrates it and hands out transactions.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib.resources
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Mapping
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


class DatabaseUnavailable(Exception):
    """The database file could not be opened, created or migrated (``reason`` says why)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class Store:
    """An open database. Use :meth:`open` and close it with :meth:`close` (or ``async with``).

    aiosqlite runs one connection on its own thread; the lock makes each ``transaction()``
    exclusive among this process's coroutines, and ``BEGIN IMMEDIATE`` with a busy timeout
    makes it exclusive against other processes (the operator CLI) too.
    """

    def __init__(
        self, connection: aiosqlite.Connection, path: Path | None, *, created: bool = False
    ) -> None:
        self.connection = connection
        self.path = path
        self.created = created
        """True when :meth:`open` made a new, empty database (no file was there)."""
        self._access = SharedExclusive()

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        """Open (creating it and its folder if needed) and migrate the database at ``path``.

        A relative ``path`` is taken from the working directory and kept absolute, so logs
        say which file is in use. Any failure to open, create or migrate it is raised as
        :class:`DatabaseUnavailable`, naming the path and the reason in plain words.
        """
        path = _absolute(path)
        created = False
        connection: aiosqlite.Connection | None = None
        try:
            created = _prepare(path)
            connection = await aiosqlite.connect(path, isolation_level=None)
            connection.row_factory = aiosqlite.Row
            await connection.execute("PRAGMA journal_mode = WAL")
            await connection.execute("PRAGMA synchronous = NORMAL")
            await connection.execute("PRAGMA foreign_keys = ON")
            await connection.execute("PRAGMA busy_timeout = 5000")
            store = cls(connection, path, created=created)
            await store.migrate()
        except (OSError, sqlite3.Error) as exc:
            if connection is not None:
                with contextlib.suppress(sqlite3.Error, ValueError):
                    await connection.close()
            raise DatabaseUnavailable(path, _why(path, exc)) from exc
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
        async with self._access.exclusive():
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
        async with self._access.shared():
            return list(await self.connection.execute_fetchall(sql, params))

    async def fetch_one(self, sql: str, params: tuple[object, ...] = ()) -> aiosqlite.Row | None:
        """The first row of a read-only query (meant for single-row queries), or None."""
        async with self._access.shared():
            rows = await self.connection.execute_fetchall(sql, params)
        return next(iter(rows), None)

    async def insert_one(self, sql: str, params: Mapping[str, object]) -> int | None:
        """Run one ``INSERT … RETURNING id`` as its own atomic transaction, in one trip to the
        database thread; the new row's id, or None if it wrote no row (an ``INSERT … SELECT``
        whose guard did not match)."""
        async with self._access.shared():
            rows = list(await self.connection.execute_fetchall(sql, params))
        return int(rows[0][0]) if rows else None

    async def close(self) -> None:
        """Checkpoint the WAL and close the connection."""
        with contextlib.suppress(aiosqlite.Error):
            await self.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        await self.connection.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class SharedExclusive:
    """Single statements share the connection; a transaction has it to itself.

    aiosqlite runs one connection's calls one after another on its thread. Statements that
    are each their own transaction (reads, a guarded ``INSERT``) may be queued there together,
    so their thread trips overlap instead of waiting in line; an explicit transaction must not
    have anyone else's statement land between its ``BEGIN`` and ``COMMIT``, so it waits for the
    statements in flight and keeps the connection until it ends.

    Waiters are served first come, first served (a statement arriving behind a waiting
    transaction waits too, so neither kind starves the other), and each release wakes exactly
    the waiters it lets in: with a thousand jobs writing, a broadcast wake-up of every waiter
    would cost more than the statements themselves.
    """

    def __init__(self) -> None:
        self._sharing = 0
        self._exclusive = False
        self._waiters: collections.deque[tuple[bool, asyncio.Future[None]]] = collections.deque()

    def _free_for(self, exclusive: bool) -> bool:
        return not self._exclusive and (not exclusive or self._sharing == 0)

    def _take(self, exclusive: bool) -> None:
        if exclusive:
            self._exclusive = True
        else:
            self._sharing += 1

    def _release(self, exclusive: bool) -> None:
        if exclusive:
            self._exclusive = False
        else:
            self._sharing -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            exclusive, waiter = self._waiters[0]
            if waiter.done():  # cancelled while waiting
                self._waiters.popleft()
                continue
            if not self._free_for(exclusive):
                return
            self._waiters.popleft()
            self._take(exclusive)
            waiter.set_result(None)
            if exclusive:
                return

    async def _acquire(self, exclusive: bool) -> None:
        if not self._waiters and self._free_for(exclusive):
            self._take(exclusive)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (exclusive, waiter)
        self._waiters.append(entry)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release(exclusive)  # granted just as we were cancelled: hand it on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(entry)
                self._wake()
            raise

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        """Hold the connection together with other single statements."""
        await self._acquire(False)
        try:
            yield
        finally:
            self._release(False)

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold the connection alone."""
        await self._acquire(True)
        try:
            yield
        finally:
            self._release(True)


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


def _absolute(path: Path | str) -> Path:
    """``path`` made absolute against the working directory (``:memory:`` stays as it is)."""
    if str(path) == ":memory:":
        return Path(path)
    return Path(os.path.abspath(Path(path).expanduser()))


def _prepare(path: Path) -> bool:
    """Create the database's folder if needed; True if there is no database file yet."""
    if str(path) == ":memory:":
        return False
    created = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    return created


def _why(path: Path, exc: OSError | sqlite3.Error) -> str:
    """What stopped the database from opening, in an operator's words."""
    text = str(exc).lower()
    if isinstance(exc, PermissionError) or "readonly" in text or "read-only" in text:
        return "permission denied: the bot's user cannot write there"
    if "not a database" in text:
        return "the file is not a SQLite database"
    if "unable to open" in text:
        folder = path.parent
        if not folder.is_dir():
            return f"its folder {folder} does not exist and could not be created"
        return "permission denied: the bot's user cannot create or open the file there"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)


def _split_sql(script: str) -> list[str]:
    """Split a migration into complete statements (trigger bodies stay whole); comments go."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    statements, pending = [], ""
    for piece in "\n".join(lines).split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \n;"):
        raise ValueError(f"incomplete SQL at the end of a migration: {pending.strip()[:80]}")
    return statements
