"""The SQLite schema: numbered migrations in ``bot/storage/sqlite/migrations``, applied in order
at open, each in its own transaction, the version kept in ``PRAGMA user_version`` and the
pikabot that applied them in the meta table (:data:`~bot.storage.versions.MIGRATED_BY`)."""

from __future__ import annotations

import importlib.resources
import re
import sqlite3
from dataclasses import dataclass

import structlog

from bot.storage.sqlite.connection import Connection
from bot.storage.versions import MIGRATED_BY, app_version, too_new

log = structlog.get_logger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
PACKAGE = "bot.storage.sqlite.migrations"


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered migration script."""

    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """Every migration shipped with this pikabot, in order."""
    found = []
    for entry in importlib.resources.files(PACKAGE).iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(
                Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8"))
            )
    return sorted(found, key=lambda m: m.version)


def latest_version() -> int:
    """The number of the newest migration this pikabot knows."""
    return max((m.version for m in migrations()), default=0)


async def stored_version(db: Connection) -> int:
    """The database's ``user_version``."""
    row = await db.fetch_one("PRAGMA user_version")
    return int(row[0]) if row else 0


async def migrated_by(db: Connection) -> str | None:
    """The pikabot version that last migrated the database (None: not recorded, or no meta
    table at all)."""
    try:
        row = await db.fetch_one("SELECT value FROM meta WHERE key = ?", (MIGRATED_BY,))
    except sqlite3.OperationalError:  # no meta table: an empty or foreign database
        return None
    return None if row is None else str(row["value"])


async def migrate(db: Connection, location: str) -> int:
    """Apply every migration newer than the database; the version found before (0: a new
    database). Refuses (:class:`~bot.storage.base.SchemaTooNew`, naming both versions) a
    database newer than the code. ``db`` must not be in use by anyone else yet."""
    known = migrations()
    latest = max((m.version for m in known), default=0)
    before = await stored_version(db)
    if before > latest:
        raise too_new(location, before, latest, await migrated_by(db))
    recorded = await migrated_by(db) if before else None
    for migration in known:
        if migration.version <= before:
            continue
        await db.execute("BEGIN IMMEDIATE")
        try:
            for statement in split_sql(migration.sql):
                await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {migration.version:d}")
        except BaseException:
            await db.end("ROLLBACK")
            raise
        await db.end("COMMIT")
        log.info("store.migrated", migration=migration.name, version=migration.version)
    if before < latest or recorded is None:
        await db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (MIGRATED_BY, app_version()),
        )
    return before


def split_sql(script: str) -> list[str]:
    """Split a migration into complete statements (trigger bodies stay whole); comments go.

    ``executescript`` would commit before running, so each statement is run on its own
    inside the migration's transaction.
    """
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
