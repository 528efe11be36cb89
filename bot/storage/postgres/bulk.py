"""Bulk loading of an empty PostgreSQL database, for ``migrate-db``: whole tables through
``COPY`` (asyncpg's ``copy_records_to_table``), ids kept as given, identities moved past them.

Everything here runs on one connection inside the caller's transaction, so a failure (or a
check that does not match) rolls all of it back and leaves the database empty.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, Sequence

from bot.storage.postgres.types import Connection

LOCK_TIMEOUT = "10s"
"""How long to wait for a process already using the target before giving up."""

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def _name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"not a plain SQL name: {name!r}")
    return name


async def columns(db: Connection, table: str) -> dict[str, str]:
    """The table's columns and their types (``bigint``, ``text``, ``boolean``,
    ``timestamp with time zone``), in their order (empty: no such table)."""
    found = await db.fetch(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        table,
    )
    return {str(row["column_name"]): str(row["data_type"]) for row in found}


async def lock(db: Connection, tables: Sequence[str]) -> None:
    """Keep every other session from writing these tables until the transaction ends."""
    await db.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    await db.execute(f"LOCK TABLE {', '.join(_name(t) for t in tables)} IN EXCLUSIVE MODE")


async def count(db: Connection, table: str) -> int:
    """How many rows the table has."""
    return int(await db.fetchval(f"SELECT COUNT(*) FROM {_name(table)}"))


async def load(
    db: Connection,
    table: str,
    names: Sequence[str],
    batches: AsyncIterable[list[tuple[object, ...]]],
) -> int:
    """``COPY`` every batch into ``table`` (columns ``names``); the rows written."""
    written = 0
    async for batch in batches:
        if batch:
            await db.copy_records_to_table(_name(table), records=batch, columns=list(names))
            written += len(batch)
    return written


async def reset_identity(db: Connection, table: str, column: str = "id") -> int:
    """Move the table's identity past its largest ``column`` so new rows never collide with
    copied ones; the next id it will give."""
    value = await db.fetchval(
        f"SELECT setval(pg_get_serial_sequence($1, $2), COALESCE(MAX({_name(column)}), 0) + 1,"
        f" false) FROM {_name(table)}",
        table,
        column,
    )
    return int(value)


async def query(db: Connection, sql: str) -> list[tuple[object, ...]]:
    """The rows of a read-only statement (the copy's checks), as plain tuples."""
    return [tuple(row.values()) for row in await db.fetch(sql)]


async def forget_meta(db: Connection, keys: Sequence[str]) -> None:
    """Delete the meta rows that migrating the empty target wrote itself (the pikabot that
    migrated it): the source's own rows are copied in their place."""
    await db.execute("DELETE FROM meta WHERE key = ANY($1::text[])", list(keys))
