"""Reading whole tables out of a SQLite unit, for the copy to PostgreSQL (``migrate-db``).

Rows come as stored (ISO 8601 text for instants, 0/1 for booleans), in primary-key order, in
batches, so a large ledger is never all in memory; the caller converts them for its target.
Run inside one ``storage.unit()``: its ``BEGIN IMMEDIATE`` is one snapshot that no other
process can write to until the copy ends.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence

from bot.storage.sqlite.connection import Connection

BATCH = 5000
"""Rows read per trip to aiosqlite's thread."""

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def _name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"not a plain SQL name: {name!r}")
    return name


async def columns(db: Connection, table: str) -> list[str]:
    """The table's column names, in their order (empty: no such table)."""
    rows = await db.fetch_all(f"PRAGMA table_info({_name(table)})")
    return [str(row["name"]) for row in rows]


async def count(db: Connection, table: str) -> int:
    """How many rows the table has."""
    row = await db.fetch_one(f"SELECT COUNT(*) FROM {_name(table)}")
    return int(row[0]) if row else 0


async def rows(
    db: Connection, table: str, names: Sequence[str], order_by: Sequence[str]
) -> AsyncIterator[list[tuple[object, ...]]]:
    """Every row of ``table`` (the columns ``names``), ordered by ``order_by``, in batches."""
    select = ", ".join(_name(n) for n in names)
    order = ", ".join(_name(n) for n in order_by)
    cursor = await db.raw.execute(f"SELECT {select} FROM {_name(table)} ORDER BY {order}")
    try:
        while batch := await cursor.fetchmany(BATCH):
            yield [tuple(row) for row in batch]
    finally:
        await cursor.close()


async def query(db: Connection, sql: str) -> list[tuple[object, ...]]:
    """The rows of a read-only statement (the copy's checks), as plain tuples."""
    return [tuple(row) for row in await db.fetch_all(sql)]
