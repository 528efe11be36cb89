"""Numbered migrations of the PostgreSQL schema, applied once however many processes start.

The applied versions are rows of ``schema_version``. Opening takes a session advisory lock
(:data:`MIGRATION_LOCK`) before it reads them, so two processes starting together migrate
one after the other: the second finds the work done. Each migration runs in its own
transaction with its ``schema_version`` row, so a failure leaves the previous version intact.
The pikabot version that applied them is kept in the meta table
(:data:`~bot.storage.versions.MIGRATED_BY`), so an older pikabot's refusal can name it.
"""

from __future__ import annotations

import importlib.resources
import re
from dataclasses import dataclass

import structlog
from asyncpg import Record
from asyncpg.pool import PoolConnectionProxy

from bot.storage.postgres.locks import MIGRATION_LOCK
from bot.storage.versions import MIGRATED_BY, app_version, too_new

log = structlog.get_logger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

_CREATE_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER     PRIMARY KEY,
    name       TEXT        NOT NULL DEFAULT '',
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One ``NNNN_name.sql`` file of ``bot/storage/postgres/migrations``."""

    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """Every migration of this pikabot, in order."""
    found = []
    for entry in importlib.resources.files("bot.storage.postgres.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(
                Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8"))
            )
    return sorted(found, key=lambda m: m.version)


def latest() -> int:
    """The version this pikabot knows up to."""
    return max((m.version for m in migrations()), default=0)


async def current_version(connection: PoolConnectionProxy[Record]) -> int:
    """The last version applied (0: an empty database)."""
    exists = await connection.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    version = await connection.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
    return int(version)


async def migrated_by(connection: PoolConnectionProxy[Record]) -> str | None:
    """The pikabot version that last migrated the database (None: not recorded, or no meta
    table yet)."""
    exists = await connection.fetchval("SELECT to_regclass('meta') IS NOT NULL")
    if not exists:
        return None
    value: str | None = await connection.fetchval(
        "SELECT value FROM meta WHERE key = $1", MIGRATED_BY
    )
    return value


async def migrate(connection: PoolConnectionProxy[Record], location: str) -> tuple[int, int]:
    """Apply every migration newer than the database's, each in its own transaction, under
    the migration lock; the versions before and after. Raises
    :class:`~bot.storage.base.SchemaTooNew` (naming both versions) for a database migrated by
    a newer pikabot."""
    known = migrations()
    newest = max((m.version for m in known), default=0)
    await connection.execute("SELECT pg_advisory_lock($1, $2)", *MIGRATION_LOCK)
    try:
        await connection.execute(_CREATE_VERSION_TABLE)
        stored = found = await current_version(connection)
        if stored > newest:
            raise too_new(location, stored, newest, await migrated_by(connection))
        recorded = await migrated_by(connection) if stored else None
        if 0 < stored < newest:
            log.warning(
                "store.migrating",
                location=location,
                schema_version=stored,
                to=newest,
                hint="pikabot keeps no copy of a PostgreSQL database: take a pg_dump before"
                " upgrading",
            )
        for migration in known:
            if migration.version <= stored:
                continue
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            log.info("store.migrated", migration=migration.name, version=migration.version)
            stored = migration.version
        if found < newest or recorded is None:
            await connection.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                MIGRATED_BY,
                app_version(),
            )
        return found, stored
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1, $2)", *MIGRATION_LOCK)
