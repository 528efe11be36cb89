"""The SQLite backend's plumbing, moved here from the old ``bot/store.py`` tests: migrations on
a fresh and on a version-3 database, the migration splitter, and the connection sharing
(a statement never lands inside another unit's transaction; FIFO shared/exclusive access).
The rollback isolation holds on both backends, so that test takes the ``storage`` fixture."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.storage import Storage
from bot.storage.records import PeriodTotals
from bot.storage.sqlite import open_sqlite
from bot.storage.sqlite.connection import SharedExclusive
from bot.storage.sqlite.schema import latest_version, migrations, split_sql
from tests.units import totals_match_rows

OLD_TRIGGERS = {"ledger_totals", "reservation_held", "reservation_settled"}
WHEN = "2026-11-21T12:00:00+00:00"


async def test_sqlite_fresh_database_gets_every_migration(tmp_path: Path):
    """A new file is migrated to the newest version; no trigger writes ledger rows any more."""
    path = tmp_path / "new.sqlite3"
    storage = await open_sqlite(path)
    try:
        version = await storage.schema_version()
    finally:
        await storage.close()
    with sqlite3.connect(path) as raw:
        triggers = {
            r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='trigger'")
        }
        user_version = raw.execute("PRAGMA user_version").fetchone()[0]
    assert version == user_version == latest_version() == migrations()[-1].version
    assert not triggers & OLD_TRIGGERS


async def test_sqlite_upgrade_from_version_3_backfills_running_totals(tmp_path: Path):
    """An older database with credits in it upgrades with its balances unchanged."""
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as raw:
        for migration in migrations():
            if migration.version >= 4:
                break
            for statement in split_sql(migration.sql):
                raw.execute(statement)
        raw.execute(
            "INSERT INTO reservations (id, guild_id, user_id, period_key, amount, state,"
            f" created_at) VALUES (1, 7, 8, '2026-11-21', 30, 'charged', '{WHEN}'),"
            f" (2, 7, 8, '2026-11-21', 20, 'held', '{WHEN}')"
        )
        raw.execute(
            "INSERT INTO ledger (guild_id, period_key, kind, amount, reservation_id, created_at)"
            f" VALUES (7, '2026-11-21', 'reserve', -30, 1, '{WHEN}'),"
            f" (7, '2026-11-21', 'charge', 0, 1, '{WHEN}'),"
            f" (7, '2026-11-21', 'reserve', -20, 2, '{WHEN}'),"
            f" (7, '2026-11-21', 'grant', 15, NULL, '{WHEN}')"
        )
        raw.execute("PRAGMA user_version = 3")
    storage = await open_sqlite(path)
    try:
        async with storage.read() as uow:
            totals = await uow.ledger.totals(7, "2026-11-21")
        assert totals == PeriodTotals(net=-35, granted=15, reserved=20, spent=30)
        assert await totals_match_rows(storage, [7])
    finally:
        await storage.close()


def test_sqlite_split_keeps_trigger_bodies_whole():
    """Semicolons inside a trigger body do not split it."""
    script = """
    CREATE TABLE a (x INTEGER); -- a comment; with a semicolon
    CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO a VALUES (1); SELECT 1; END;
    """
    statements = split_sql(script)
    assert len(statements) == 2
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")


async def test_storage_writes_never_land_inside_another_units_transaction(storage: Storage):
    """A write made while another unit is open is not taken by that unit's rollback."""
    inside = asyncio.Event()

    async def doomed() -> None:
        async with storage.unit() as uow:
            await uow.meta.put("doomed", "yes")
            inside.set()
            await asyncio.sleep(0.1)
            raise RuntimeError("roll back")

    task = asyncio.create_task(doomed())
    async with asyncio.timeout(5):
        await inside.wait()
    async with storage.unit() as uow:
        await uow.meta.put("kept", "yes")
    with pytest.raises(RuntimeError):
        await task
    async with storage.read() as uow:
        assert await uow.meta.get("doomed") is None
        assert await uow.meta.get("kept") == "yes"


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
