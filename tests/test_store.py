"""The database layer: migrations (also on an existing database), and the connection sharing."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.store import SharedExclusive, Store, _split_sql, migrations
from tests.test_quotas import totals_match_rows


async def test_store_fresh_database_gets_every_migration(tmp_path: Path):
    """A new file is migrated to the newest version, triggers included."""
    async with await Store.open(tmp_path / "new.sqlite3") as store:
        version = await store.fetch_one("PRAGMA user_version")
        triggers = await store.fetch_all("SELECT name FROM sqlite_master WHERE type = 'trigger'")
    assert version is not None and version[0] == migrations()[-1][0]
    assert {t[0] for t in triggers} >= {"ledger_totals", "reservation_held", "reservation_settled"}


async def test_store_upgrade_backfills_running_totals(tmp_path: Path):
    """An older database with credits in it upgrades with its balances unchanged."""
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as raw:
        for version, _, sql in migrations():
            if version >= 4:
                break
            for statement in _split_sql(sql):
                raw.execute(statement)
        raw.execute(
            "INSERT INTO reservations (id, guild_id, user_id, period_key, amount, state,"
            " created_at) VALUES (1, 7, 8, '2026-11-21', 30, 'charged', 'x'),"
            " (2, 7, 8, '2026-11-21', 20, 'held', 'x')"
        )
        raw.execute(
            "INSERT INTO ledger (guild_id, period_key, kind, amount, reservation_id, created_at)"
            " VALUES (7, '2026-11-21', 'reserve', -30, 1, 'x'), (7, '2026-11-21', 'charge', 0, 1,"
            " 'x'), (7, '2026-11-21', 'reserve', -20, 2, 'x'), (7, '2026-11-21', 'grant', 15,"
            " NULL, 'x')"
        )
        raw.execute("PRAGMA user_version = 3")
    async with await Store.open(path) as store:
        totals = await store.fetch_one(
            "SELECT net, granted, reserved, spent FROM period_totals WHERE guild_id = 7"
        )
        assert totals is not None and tuple(totals) == (-35, 15, 20, 30)
        assert await totals_match_rows(store)


def test_store_split_keeps_trigger_bodies_whole():
    """Semicolons inside a trigger body do not split it."""
    script = """
    CREATE TABLE a (x INTEGER); -- a comment; with a semicolon
    CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO a VALUES (1); SELECT 1; END;
    """
    statements = _split_sql(script)
    assert len(statements) == 2
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")


async def test_store_single_statements_never_land_inside_a_transaction(tmp_path: Path):
    """A write queued while a transaction is open waits for it, so a rollback cannot take it."""
    async with await Store.open(tmp_path / "shared.sqlite3") as store:
        async with store.transaction() as db:
            await db.execute("CREATE TABLE notes (text TEXT)")
        inside = asyncio.Event()

        async def doomed() -> None:
            async with store.transaction() as db:
                await db.execute("INSERT INTO notes VALUES ('doomed')")
                inside.set()
                await asyncio.sleep(0.1)
                raise RuntimeError("roll back")

        task = asyncio.create_task(doomed())
        await inside.wait()
        await store.insert_one("INSERT INTO notes VALUES (:t) RETURNING rowid", {"t": "kept"})
        with pytest.raises(RuntimeError):
            await task
        rows = await store.fetch_all("SELECT text FROM notes")
    assert [r[0] for r in rows] == ["kept"]


async def test_shared_exclusive_lets_statements_share_and_transactions_wait():
    """Shared holders overlap; an exclusive holder waits for them and blocks newcomers."""
    access = SharedExclusive()
    order: list[str] = []
    first, second = access.shared(), access.shared()
    await first.__aenter__()
    await second.__aenter__()  # two at once: no deadlock, no waiting

    async def transaction() -> None:
        async with access.exclusive():
            order.append("exclusive")

    async def late_statement() -> None:
        async with access.shared():
            order.append("late shared")

    waiting = asyncio.create_task(transaction())
    await asyncio.sleep(0.01)
    late = asyncio.create_task(late_statement())
    await asyncio.sleep(0.01)
    assert order == []  # the transaction waits for both holders; the newcomer waits behind it
    await first.__aexit__(None, None, None)
    await second.__aexit__(None, None, None)
    async with asyncio.timeout(2):
        await asyncio.gather(waiting, late)
    assert order == ["exclusive", "late shared"]


async def test_shared_exclusive_cancelled_waiter_does_not_block_the_line():
    """A transaction cancelled while waiting leaves the line; those behind it go on."""
    access = SharedExclusive()
    holder = access.shared()
    await holder.__aenter__()

    async def transaction() -> None:
        async with access.exclusive():
            pass

    cancelled = asyncio.create_task(transaction())
    await asyncio.sleep(0.01)
    behind = asyncio.create_task(transaction())
    await asyncio.sleep(0.01)
    cancelled.cancel()
    await holder.__aexit__(None, None, None)
    async with asyncio.timeout(2):
        await behind
    assert cancelled.cancelled()
    async with asyncio.timeout(2), access.exclusive():
        pass  # and the connection is free again
