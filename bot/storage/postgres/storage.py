"""The PostgreSQL storage: a pool of connections, one per unit of work while it runs.

``unit()`` lends a pooled connection in a READ COMMITTED transaction; ``read()`` one in a
REPEATABLE READ, READ ONLY transaction (one consistent snapshot, writes refused by the server).
Rules that must not be raced take an advisory transaction lock first (:meth:`lock_guild`,
:meth:`lock_bot`): it is held until the unit commits or rolls back, across every process that
shares the database, and every statement after it sees what the previous holder committed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import structlog
from asyncpg import Pool, Record

from bot.storage.base import (
    Backup,
    GuildRepo,
    JobRepo,
    LedgerRepo,
    MetaRepo,
    StorageError,
    UnitOfWork,
)
from bot.storage.postgres import connect, migrate
from bot.storage.postgres.backup import use_pg_dump
from bot.storage.postgres.guilds import PostgresGuilds
from bot.storage.postgres.jobs import PostgresJobs
from bot.storage.postgres.ledger import PostgresLedger
from bot.storage.postgres.locks import BOT_LOCK, guild_lock
from bot.storage.postgres.meta import PostgresMeta
from bot.storage.postgres.types import Connection

log = structlog.get_logger(__name__)

_LOST = (
    OSError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
)
"""Failures that can mean the server went away (not a refused statement)."""


def _gone(connection: Connection) -> bool:
    """Whether the unit's connection is closed, or already dropped by the pool (a server
    that ended the session makes the pool detach it: its proxy then has no connection)."""
    try:
        return connection.is_closed()
    except (AttributeError, asyncpg.InterfaceError):
        return True


class PostgresUnit:
    """One transaction on one pooled connection, and the repositories inside it."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection
        self._guilds = PostgresGuilds(connection)
        self._ledger = PostgresLedger(connection)
        self._jobs = PostgresJobs(connection)
        self._meta = PostgresMeta(connection)

    @property
    def guilds(self) -> GuildRepo:
        """Guild settings, rules and audit."""
        return self._guilds

    @property
    def ledger(self) -> LedgerRepo:
        """Credits."""
        return self._ledger

    @property
    def jobs(self) -> JobRepo:
        """Jobs."""
        return self._jobs

    @property
    def meta(self) -> MetaRepo:
        """Installation facts."""
        return self._meta

    async def lock_guild(self, guild_id: int) -> None:
        """Wait for, then hold until the unit ends, the guild's advisory lock."""
        await self._db.execute("SELECT pg_advisory_xact_lock($1, $2)", *guild_lock(guild_id))

    async def lock_bot(self) -> None:
        """Wait for, then hold until the unit ends, the bot-wide advisory lock."""
        await self._db.execute("SELECT pg_advisory_xact_lock($1, $2)", *BOT_LOCK)


class PostgresStorage:
    """An open PostgreSQL database (see :func:`bot.storage.postgres.open_postgres`)."""

    def __init__(self, pool: Pool[Record], target: connect.Target) -> None:
        self._pool = pool
        self._target = target
        self._created = False

    @property
    def backend(self) -> str:
        """``postgresql``."""
        return "postgresql"

    @property
    def location(self) -> str:
        """The URL without its password."""
        return self._target.location

    @property
    def sole_bot(self) -> bool:
        """Never: PostgreSQL is shared by as many bot processes as are started on it."""
        return False

    @property
    def created(self) -> bool:
        """True when opening found an empty database (no pikabot schema) and migrated it."""
        return self._created

    @property
    def pool_size(self) -> int:
        """The most connections this process opens."""
        return self._target.pool_size

    @contextlib.asynccontextmanager
    async def _transaction(self, *, read_only: bool) -> AsyncIterator[UnitOfWork]:
        try:
            connection = await self._pool.acquire()
        except _LOST as failed:
            raise StorageError(connect.why(self._target, failed)) from None
        try:
            if read_only:
                transaction = connection.transaction(isolation="repeatable_read", readonly=True)
            else:
                transaction = connection.transaction(isolation="read_committed")
            committing = False
            async with transaction:
                yield PostgresUnit(connection)
                committing = True
        except asyncpg.ReadOnlySQLTransactionError:
            raise StorageError(
                "a write was attempted in a read-only unit (storage.read()): use storage.unit()"
            ) from None
        except (*_LOST, asyncpg.InterfaceError) as failed:
            if not _gone(connection):
                raise  # not the database's: an error of the unit's own work
            outcome = (
                "while committing: its work may or may not have been committed"
                if committing
                else "in the middle of a unit: nothing of it was committed"
            )
            log.warning(
                "store.connection_lost", location=self.location, error=type(failed).__name__
            )
            raise StorageError(
                f"lost the connection to the PostgreSQL server of {self.location} {outcome}"
            ) from None
        finally:
            await self._pool.release(connection)

    def unit(self) -> contextlib.AbstractAsyncContextManager[UnitOfWork]:
        """A write transaction: committed when the block ends, rolled back on an error."""
        return self._transaction(read_only=False)

    def read(self) -> contextlib.AbstractAsyncContextManager[UnitOfWork]:
        """A read-only transaction (one snapshot); the server refuses writes in it."""
        return self._transaction(read_only=True)

    def connection(self) -> contextlib.AbstractAsyncContextManager[Connection]:
        """A pooled connection outside any unit, for bulk work inside ``bot.storage`` (the
        copy from SQLite opens its own transaction on it); the domain uses units."""
        return self._pool.acquire()

    async def migrate(self) -> int:
        """Apply the migrations this database lacks (serialised across processes)."""
        async with self._pool.acquire() as connection:
            before, after = await migrate.migrate(connection, self.location)
        self._created = before == 0
        return after

    async def schema_version(self) -> int:
        """The number of the last migration applied."""
        async with self._pool.acquire() as connection:
            return await migrate.current_version(connection)

    async def backup(self, target: Path) -> Backup:
        """Not pikabot's job on PostgreSQL: raises
        :class:`~bot.storage.base.BackupUnsupported` saying to use ``pg_dump``."""
        raise use_pg_dump(self.location)

    async def ping(self) -> None:
        """One read unit on a pooled connection (a server that is gone fails it)."""
        async with self.read() as uow:
            await uow.meta.get("ping")

    async def close(self) -> None:
        """Close every connection of the pool (waiting for units still running)."""
        await self._pool.close()
