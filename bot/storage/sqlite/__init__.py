"""The SQLite backend of :mod:`bot.storage`: the embedded default, for one process.

Modules: ``connection`` (pragmas, one trip per statement, FIFO access), ``schema``
(numbered scripts and ``PRAGMA user_version``), ``guilds``, ``ledger``, ``jobs`` and ``meta``
(the repositories), ``backend`` (the Storage and its units).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import structlog

from bot.clock import utcnow
from bot.storage.base import BackupFailed, Role, SchemaTooNew
from bot.storage.sqlite.backend import SqliteStorage
from bot.storage.sqlite.backup import before_migrating
from bot.storage.sqlite.connection import (
    MEMORY,
    Connection,
    SqliteUnavailable,
    absolute,
    connect,
    prepare,
    why,
)
from bot.storage.sqlite.lockfile import DatabaseInUse, WriterLock
from bot.storage.sqlite.meta import SqliteMeta
from bot.storage.sqlite.moved import DatabaseMoved, refuse_if_moved
from bot.storage.sqlite.schema import latest_version, migrate, stored_version

_RAISED_AS_THEY_ARE = (SchemaTooNew, DatabaseInUse, DatabaseMoved, BackupFailed)
"""Refusals that already say, in one line, why the file cannot be used."""

__all__ = ["READERS", "DatabaseInUse", "SqliteStorage", "SqliteUnavailable", "open_sqlite"]

log = structlog.get_logger(__name__)

READERS = 2
"""Read-only connections for :meth:`SqliteStorage.read` (each is a thread of aiosqlite's)."""


async def open_sqlite(path: Path | str, *, role: Role | None = None) -> SqliteStorage:
    """Open (creating it and its folder if needed) and migrate the database at ``path``.

    A relative ``path`` is taken from the working directory and kept absolute, so logs say
    which file is in use. A failure to open, create or migrate it is raised as
    :class:`SqliteUnavailable` naming the path and the reason in plain words; a database
    migrated by a newer pikabot as :class:`~bot.storage.base.SchemaTooNew`.

    ``role``: take that role's :class:`~bot.storage.sqlite.lockfile.WriterLock` until the
    storage is closed (one bot per file, no command during a copy); raises
    :class:`~bot.storage.sqlite.lockfile.DatabaseInUse` when another process is in the way.

    Before migrations are applied to an existing database, a checked copy of it is kept in
    ``backups/`` beside it (:func:`~bot.storage.sqlite.backup.before_migrating`); if that
    copy cannot be written, nothing is migrated (:class:`~bot.storage.base.BackupFailed`).
    """
    path = absolute(path)
    opened: list[Connection] = []
    lock: WriterLock | None = None
    try:
        prepare(path)
        if role is not None and str(path) != MEMORY:
            lock = WriterLock.acquire(path, role)
        writer = await connect(path)
        opened.append(writer)
        await _backup_before_migrating(writer, path)
        before = await migrate(writer, str(path))
        if role is not None:
            await refuse_if_moved(SqliteMeta(writer), str(path))
        if str(path) != MEMORY:
            for _ in range(READERS):
                opened.append(await connect(path, read_only=True))
    except (
        OSError,
        sqlite3.Error,
        SchemaTooNew,
        DatabaseInUse,
        DatabaseMoved,
        BackupFailed,
    ) as exc:
        if lock is not None:
            lock.release()
        for connection in opened:
            with contextlib.suppress(sqlite3.Error, ValueError):
                await connection.raw.close()
        if isinstance(exc, _RAISED_AS_THEY_ARE):
            raise
        raise SqliteUnavailable(path, why(path, exc)) from exc
    storage = SqliteStorage(path, writer, opened[1:], created=before == 0, lock=lock)
    log.debug("storage.opened", path=str(path), created=storage.created)
    return storage


async def _backup_before_migrating(writer: Connection, path: Path) -> None:
    """Keep a copy of an existing database that is about to be migrated (not of a new one,
    nor of one newer than this code, which :func:`migrate` refuses)."""
    if str(path) == MEMORY:
        return
    version = await stored_version(writer)
    if not 0 < version < latest_version():
        return
    try:
        made = await asyncio.to_thread(before_migrating, path, version, utcnow())
    except BackupFailed as failed:
        raise BackupFailed(
            f"not migrating {path} from schema version {version}: {failed} (free some space,"
            " or make the backups folder beside it writable, then start again)"
        ) from None
    log.info("store.backed_up", path=str(made.path), schema_version=version, before="migrating")
