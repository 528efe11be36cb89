"""The SQLite Storage: one writer connection whose units are exclusive (``BEGIN IMMEDIATE``),
and a few read-only connections for :meth:`SqliteStorage.read` snapshots (WAL lets them read
while the writer writes)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import structlog

from bot.clock import utcnow
from bot.storage.base import Backup, BackupFailed, Role
from bot.storage.sqlite.backup import backup_to
from bot.storage.sqlite.connection import MEMORY, Connection, SharedExclusive
from bot.storage.sqlite.guilds import SqliteGuilds
from bot.storage.sqlite.jobs import SqliteJobs
from bot.storage.sqlite.ledger import SqliteLedger
from bot.storage.sqlite.lockfile import WriterLock
from bot.storage.sqlite.meta import SqliteMeta
from bot.storage.sqlite.schema import stored_version

log = structlog.get_logger(__name__)


class SqliteUnit:
    """One SQLite transaction and the repositories inside it."""

    def __init__(self, db: Connection) -> None:
        self._db = db
        self._guilds = SqliteGuilds(db)
        self._ledger = SqliteLedger(db)
        self._jobs = SqliteJobs(db)
        self._meta = SqliteMeta(db)

    @property
    def guilds(self) -> SqliteGuilds:
        """Guild settings, rules and audit."""
        return self._guilds

    @property
    def ledger(self) -> SqliteLedger:
        """Credits."""
        return self._ledger

    @property
    def jobs(self) -> SqliteJobs:
        """Jobs."""
        return self._jobs

    @property
    def meta(self) -> SqliteMeta:
        """Installation facts."""
        return self._meta

    @property
    def connection(self) -> Connection:
        """The unit's connection, for bulk work inside ``bot.storage`` (the copy to
        PostgreSQL); the domain uses the repositories."""
        return self._db

    async def lock_guild(self, guild_id: int) -> None:
        """Nothing to do: a SQLite write unit already excludes every other one."""

    async def lock_bot(self) -> None:
        """Nothing to do: a SQLite write unit already excludes every other one."""


class SqliteStorage:
    """An open SQLite database (see :func:`bot.storage.sqlite.open_sqlite`).

    aiosqlite runs each connection on its own thread. Write units take the writer for
    themselves, first come first served among this process's coroutines, and ``BEGIN
    IMMEDIATE`` with a busy timeout makes them exclusive against other processes (the operator
    CLI) too. Read units each take one of the read-only connections for a deferred
    transaction: one consistent snapshot, which never waits for the writer.
    """

    def __init__(
        self,
        path: Path,
        writer: Connection,
        readers: list[Connection],
        *,
        created: bool,
        lock: WriterLock | None = None,
    ) -> None:
        self._path = path
        self._writer = writer
        self._access = SharedExclusive()
        self._readers = readers
        self._idle: asyncio.Queue[Connection] = asyncio.Queue()
        for reader in readers:
            self._idle.put_nowait(reader)
        self._created = created
        self._lock = lock

    @property
    def backend(self) -> str:
        """``sqlite``."""
        return "sqlite"

    @property
    def location(self) -> str:
        """The database file's absolute path."""
        return str(self._path)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def sole_bot(self) -> bool:
        """True when opened as the bot: the lock file admits no other on this file."""
        return self._lock is not None and self._lock.role is Role.BOT

    @property
    def created(self) -> bool:
        """True when opening made a new, empty database."""
        return self._created

    @contextlib.asynccontextmanager
    async def unit(self) -> AsyncIterator[SqliteUnit]:
        """A write transaction: committed when the block ends, rolled back on an error."""
        async with (
            self._access.exclusive(),
            _transaction(self._writer, "BEGIN IMMEDIATE", commit=True),
        ):
            yield SqliteUnit(self._writer)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[SqliteUnit]:
        """A read-only snapshot; any write in it raises :class:`~bot.storage.StorageError`."""
        if not self._readers:  # an in-memory database: only the writer can see it
            async with self._access.exclusive():
                await self._writer.execute("PRAGMA query_only = ON")
                try:
                    async with _transaction(self._writer, "BEGIN", commit=False):
                        yield SqliteUnit(self._writer)
                finally:
                    await self._writer.execute("PRAGMA query_only = OFF")
            return
        reader = await self._idle.get()
        try:
            async with _transaction(reader, "BEGIN", commit=False):
                yield SqliteUnit(reader)
        finally:
            self._idle.put_nowait(reader)

    async def schema_version(self) -> int:
        """The number of the last migration applied (``PRAGMA user_version``)."""
        async with self._access.shared():
            return await stored_version(self._writer)

    async def backup(self, target: Path) -> Backup:
        """A consistent copy through SQLite's online backup API, made on a connection of its
        own in a thread while the units go on (see :mod:`bot.storage.sqlite.backup`);
        ``target`` may be a folder (the copy is named by schema version and time)."""
        if self.in_memory():
            raise BackupFailed("an in-memory database has no file to back up")
        return await asyncio.to_thread(backup_to, self._path, target, utcnow())

    async def ping(self) -> None:
        """Read one row through a read-only connection (the writer when in memory)."""
        async with self.read() as uow:
            await uow.meta.get("ping")

    async def close(self) -> None:
        """Close the readers, checkpoint the WAL into the file and close the writer."""
        for reader in self._readers:
            with contextlib.suppress(aiosqlite.Error, sqlite3.Error, ValueError):
                await reader.raw.close()
        async with self._access.exclusive():
            with contextlib.suppress(aiosqlite.Error, sqlite3.Error, ValueError):
                await self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            await self._writer.raw.close()
        if self._lock is not None:
            self._lock.release()
        log.info("store.closed", path=str(self._path))

    def in_memory(self) -> bool:
        """Whether the database lives in memory only (tests)."""
        return str(self._path) == MEMORY


@contextlib.asynccontextmanager
async def _transaction(db: Connection, begin: str, *, commit: bool) -> AsyncIterator[None]:
    """``begin`` … ``COMMIT`` (or ``ROLLBACK`` on an error, a cancel, or a read's end).

    The closing statement is queued on the connection's thread before any await, so it runs
    even when the task is cancelled while waiting for it; the next unit's ``BEGIN`` is queued
    behind it. A cancel while waiting for ``begin`` itself rolls back too: the ``BEGIN`` runs
    on the thread all the same, and left open it would fail every later unit.
    """
    try:
        await db.execute(begin)
    except BaseException:
        await db.end("ROLLBACK")  # "no transaction" (the BEGIN failed) is not an error
        raise
    try:
        yield
    except BaseException:
        await db.end("ROLLBACK")
        raise
    if not commit:
        await db.end("ROLLBACK")
        return
    try:
        await db.end("COMMIT")
    except BaseException:
        await db.end("ROLLBACK")
        raise
