"""PostgreSQL only: its schema has the SQLite schema's tables, columns and indexes (so a copy
from one to the other loses nothing), in PostgreSQL's own types."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg

from bot.storage import open_storage, sqlite_url

OWN_TABLES = {"schema_version"}  # PostgreSQL keeps its schema version in a table


async def _postgres_layout(url: str) -> tuple[dict[str, set[str]], dict[str, str], set[str]]:
    connection = await asyncpg.connect(url)
    try:
        columns = await connection.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public'"
        )
        indexes = await connection.fetch(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
            " AND indexname NOT LIKE '%_pkey'"
        )
    finally:
        await connection.close()
    tables: dict[str, set[str]] = {}
    types: dict[str, str] = {}
    for row in columns:
        tables.setdefault(row["table_name"], set()).add(row["column_name"])
        types[f"{row['table_name']}.{row['column_name']}"] = row["data_type"]
    return tables, types, {row["indexname"] for row in indexes}


def _sqlite_layout(path: Path) -> tuple[dict[str, set[str]], set[str]]:
    with sqlite3.connect(path) as db:
        names = [
            r[0]
            for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        tables = {name: {r[1] for r in db.execute(f"PRAGMA table_info({name})")} for name in names}
        indexes = {
            r[0]
            for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index'"
                " AND name NOT LIKE 'sqlite_autoindex_%'"
            )
        }
    return tables, indexes


async def test_postgres_has_every_table_column_and_index_of_sqlite(
    postgres_url: str, tmp_path: Path
) -> None:
    for url in (postgres_url, sqlite_url(tmp_path / "pikabot.sqlite3")):
        await (await open_storage(url)).close()
    pg_tables, pg_types, pg_indexes = await _postgres_layout(postgres_url)
    lite_tables, lite_indexes = _sqlite_layout(tmp_path / "pikabot.sqlite3")

    assert {name: pg_tables[name] for name in pg_tables if name not in OWN_TABLES} == lite_tables
    assert pg_indexes == lite_indexes
    ids = [name for name in pg_types if name.endswith(("_id", ".id", "_micros"))]
    assert ids and {pg_types[name] for name in ids} == {"bigint"}
    instants = [name for name in pg_types if name.endswith(("_at", "_until"))]
    assert {pg_types[name] for name in instants} == {"timestamp with time zone"}
    # 64-bit like SQLite's INTEGER everywhere but the schema version's own number
    assert {name for name, t in pg_types.items() if t == "integer"} == {"schema_version.version"}
    assert {name for name, t in pg_types.items() if t == "boolean"} == {
        "guilds.rollover",
        "guilds.nsfw_only",
    }
