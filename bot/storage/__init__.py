"""Where pikabot keeps its data: :func:`open_storage` picks the backend from a URL.

``sqlite:///data/pikabot.sqlite3`` (relative) or ``sqlite:////var/lib/pikabot.sqlite3``
(absolute) is the embedded default, for one process; ``postgresql://user:pass@host/db`` is the
shared engine for several processes. Both apply their numbered migrations when opened and
refuse a database migrated by a newer pikabot (:class:`~bot.storage.base.SchemaTooNew`).
:func:`backup_database` copies one while it is in use (SQLite) or says how (PostgreSQL).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from bot.storage.base import (
    Backup,
    BackupFailed,
    BackupUnsupported,
    Role,
    SchemaTooNew,
    Storage,
    StorageError,
    UnitOfWork,
)

__all__ = [
    "Backup",
    "BackupFailed",
    "BackupUnsupported",
    "Role",
    "SchemaTooNew",
    "Storage",
    "StorageError",
    "UnitOfWork",
    "backup_database",
    "open_storage",
    "sqlite_url",
]

SQLITE_SCHEME = "sqlite"
POSTGRES_SCHEMES = ("postgresql", "postgres")


def sqlite_url(path: Path | str) -> str:
    """The URL of the SQLite file at ``path`` (made absolute)."""
    return f"{SQLITE_SCHEME}:///{Path(path).absolute()}"


def sqlite_path(url: str) -> Path:
    """The file a ``sqlite:///…`` URL names (three slashes: relative; four: absolute)."""
    parts = urlsplit(url)
    if parts.scheme != SQLITE_SCHEME or parts.netloc:
        raise StorageError(f"not a SQLite URL (use sqlite:///path/to/file.sqlite3): {url!r}")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path:
        raise StorageError("the SQLite URL names no file (use sqlite:///data/pikabot.sqlite3)")
    return Path(path)


async def open_storage(url: str, *, role: Role | None = None) -> Storage:
    """Open (creating and migrating where needed) the database at ``url``.

    ``role``: what this process is (the bot, a command, the copy): on SQLite, which allows one
    bot, a process that would be in another's way is refused with
    :class:`~bot.storage.sqlite.lockfile.DatabaseInUse`; PostgreSQL is shared by design.
    """
    scheme = urlsplit(url).scheme
    if scheme == SQLITE_SCHEME:
        from bot.storage.sqlite import open_sqlite

        return await open_sqlite(sqlite_path(url), role=role)
    if scheme in POSTGRES_SCHEMES:
        from bot.storage.postgres import open_postgres

        return await open_postgres(url)
    raise StorageError(
        "PIKABOT_DATABASE_URL must start with sqlite:/// or postgresql://"
        f" (got {scheme + '://' if scheme else 'no scheme'})"
    )


async def backup_database(url: str, target: Path, *, at: datetime) -> Backup:
    """``pikabot backup``: a consistent copy of the database at ``url`` into the new file (or
    the folder) ``target``, made while the bot runs, without opening (or migrating) it as a
    storage: :meth:`Storage.backup <bot.storage.base.Storage.backup>` of a closed database.
    ``at`` names a copy made into a folder. PostgreSQL raises
    :class:`~bot.storage.base.BackupUnsupported` (use ``pg_dump``), without connecting."""
    scheme = urlsplit(url).scheme
    if scheme == SQLITE_SCHEME:
        from bot.storage.sqlite.backup import backup_to
        from bot.storage.sqlite.connection import absolute

        return await asyncio.to_thread(backup_to, absolute(sqlite_path(url)), target, at)
    if scheme in POSTGRES_SCHEMES:
        from bot.storage.postgres.backup import use_pg_dump
        from bot.storage.postgres.connect import redacted

        raise use_pg_dump(redacted(url))
    raise StorageError(
        "PIKABOT_DATABASE_URL must start with sqlite:/// or postgresql://"
        f" (got {scheme + '://' if scheme else 'no scheme'})"
    )
