"""What only the SQLite backend has: upgrading databases of earlier pikabots, the files it
refuses, and read snapshots that never wait for the writer."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.resources
import re
import sqlite3
from pathlib import Path

import pytest

from bot.storage import BackupFailed, open_storage, sqlite_url
from bot.storage.records import PeriodTotals, ReservationState
from bot.storage.sqlite import SqliteUnavailable, open_sqlite
from bot.storage.sqlite.backup import KEPT
from bot.storage.sqlite.schema import latest_version, migrations, split_sql
from tests.storage.helpers import GUILD, NOW, PERIOD, USER, later

RELEASED = {
    "0001_initial.sql": "2ef4a48458bf803b48fef755b9ec6bda13977be6977f17d674a5063f0bb468bb",
    "0002_moderation.sql": "a05735583055f8710c1330f76cb86ac2befaa704db0e853a15d5f44560b99122",
    "0003_rerun_policy.sql": "7cc9db1dbdc918cabadb38db82c4b8ea96adea804644a632c8445587a861f2c0",
    "0004_period_totals.sql": "9a85701e2b34ecdfb421f1a64341caebd849e617b5d916c920fcc894ce79a8dc",
    "0005_job_origin_kind.sql": "21a8613ab5f6bb1873d874e19275ea920f1bf2e0ccc99bd7b7cc57746e568aa1",
}
"""Migrations already applied to operators' databases: they must never change."""

TRIGGERS = {"ledger_totals", "reservation_held", "reservation_settled"}


def build_version_5(path: Path) -> None:
    """A database as pikabot left it before the storage boundary: migrations 0001–0005, and
    credits written the way that code wrote them (reservations whose triggers add the ledger
    rows and totals)."""
    with sqlite3.connect(path) as raw:
        for migration in migrations():
            if migration.version > 5:
                break
            for statement in split_sql(migration.sql):
                raw.execute(statement)
        raw.execute("PRAGMA user_version = 5")
        for rid, amount in ((1, 30), (2, 20)):
            raw.execute(
                "INSERT INTO reservations (id, guild_id, user_id, period_key, amount, usd_micros,"
                " state, created_at) VALUES (?, ?, ?, ?, ?, 0, 'held', ?)",
                (rid, GUILD, USER, PERIOD, amount, NOW.isoformat()),
            )
        raw.execute(
            "UPDATE reservations SET state = 'charged', settled_at = ? WHERE id = 1",
            (NOW.isoformat(),),
        )
        raw.execute(
            "INSERT INTO ledger (guild_id, period_key, kind, amount, reservation_id, created_at)"
            " VALUES (?, ?, 'charge', 0, 1, ?)",
            (GUILD, PERIOD, NOW.isoformat()),
        )
        raw.execute(
            "INSERT INTO ledger (guild_id, period_key, kind, amount, actor_id, created_at)"
            " VALUES (?, ?, 'grant', 15, 3, ?)",
            (GUILD, PERIOD, NOW.isoformat()),
        )


def derived_totals(path: Path) -> PeriodTotals:
    """The period's totals summed again from its ledger and reservation rows."""
    with sqlite3.connect(path) as raw:
        net, granted, carried, adjusted = raw.execute(
            "SELECT COALESCE(SUM(amount), 0),"
            " COALESCE(SUM(CASE WHEN kind = 'grant' THEN amount END), 0),"
            " COALESCE(SUM(CASE WHEN kind = 'rollover' THEN amount END), 0),"
            " COALESCE(SUM(CASE WHEN kind IN ('reset', 'adjust') THEN amount END), 0)"
            " FROM ledger WHERE guild_id = ? AND period_key = ?",
            (GUILD, PERIOD),
        ).fetchone()
        reserved, spent = raw.execute(
            "SELECT COALESCE(SUM(CASE WHEN state = 'held' THEN amount END), 0),"
            " COALESCE(SUM(CASE WHEN state = 'charged' THEN amount END), 0)"
            " FROM reservations WHERE guild_id = ? AND period_key = ?",
            (GUILD, PERIOD),
        ).fetchone()
    return PeriodTotals(net, granted, carried, adjusted, reserved, spent)


def test_released_migrations_are_unchanged() -> None:
    folder = importlib.resources.files("bot.storage.sqlite.migrations")
    for name, digest in RELEASED.items():
        assert hashlib.sha256(folder.joinpath(name).read_bytes()).hexdigest() == digest, name
    assert latest_version() >= 6


async def test_sqlite_upgrade_from_version_5_keeps_balances_and_drops_triggers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite3"
    build_version_5(path)
    before = derived_totals(path)
    assert before == PeriodTotals(net=-35, granted=15, reserved=20, spent=30)
    storage = await open_sqlite(path)
    try:
        assert storage.created is False
        assert await storage.schema_version() == latest_version()
        async with storage.read() as uow:
            assert await uow.ledger.totals(GUILD, PERIOD) == before
        async with storage.unit() as uow:
            rid = await uow.ledger.hold(GUILD, USER, PERIOD, 5, 0, later(1))
            await uow.ledger.settle(2, ReservationState.REFUNDED, job_id=None, reason="", now=NOW)
            await uow.ledger.settle(rid, ReservationState.CHARGED, job_id=9, reason="", now=NOW)
            totals = await uow.ledger.totals(GUILD, PERIOD)
            _, count = await uow.ledger.page(GUILD, offset=0, limit=100)
    finally:
        await storage.close()
    assert totals == PeriodTotals(net=-20, granted=15, reserved=0, spent=35)
    assert derived_totals(path) == totals  # no trigger wrote anything twice
    assert count == 4 + 3
    with sqlite3.connect(path) as raw:
        left = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
        columns = {r[1] for r in raw.execute("PRAGMA table_info(jobs)")}
    assert not left & TRIGGERS
    assert {"lease_owner", "lease_expires_at"} <= columns


async def test_sqlite_new_file_and_folder_are_created(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "pikabot.sqlite3"
    storage = await open_storage(sqlite_url(path))
    try:
        assert storage.created is True
        assert storage.location == str(path)
    finally:
        await storage.close()
    assert path.is_file()


async def test_sqlite_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"this is not a database, just some notes " * 100)
    with pytest.raises(SqliteUnavailable) as caught:
        await open_sqlite(path)
    assert (
        str(caught.value)
        == f"the database at {path} cannot be used: the file is not a SQLite database"
    )
    assert "\n" not in str(caught.value)


async def test_sqlite_read_snapshot_does_not_wait_for_an_open_write(tmp_path: Path) -> None:
    storage = await open_sqlite(tmp_path / "pikabot.sqlite3")
    try:
        async with storage.unit() as uow:
            await uow.meta.put("k", "committed")
        writing, done = asyncio.Event(), asyncio.Event()

        async def writer() -> None:
            async with storage.unit() as uow:
                await uow.meta.put("k", "pending")
                writing.set()
                await done.wait()

        task = asyncio.create_task(writer())
        await asyncio.wait_for(writing.wait(), 10)
        async with asyncio.timeout(10), storage.read() as uow:
            seen = await uow.meta.get("k")
        done.set()
        await asyncio.wait_for(task, 10)
        async with storage.read() as uow:
            after = await uow.meta.get("k")
    finally:
        await storage.close()
    assert (seen, after) == ("committed", "pending")


async def test_sqlite_in_memory_database_works(tmp_path: Path) -> None:
    storage = await open_sqlite(":memory:")
    try:
        async with storage.unit() as uow:
            await uow.meta.put("k", "v")
        async with storage.read() as uow:
            assert await uow.meta.get("k") == "v"
        with pytest.raises(Exception, match="read-only"):
            async with storage.read() as uow:
                await uow.meta.put("k", "w")
        async with storage.unit() as uow:  # the writer is writable again
            await uow.meta.put("k", "w")
            assert await uow.meta.get("k") == "w"
    finally:
        await storage.close()


def automatic(folder: Path) -> list[str]:
    """The names of the files in a backups folder, sorted."""
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


async def test_sqlite_backs_up_an_existing_database_before_migrating(tmp_path: Path) -> None:
    """Migrating version 5 first writes a checked copy of it as it was, named by its schema
    version and the UTC time, in backups/ beside it; a new database and one already at the
    current schema are not copied."""
    path = tmp_path / "old.sqlite3"
    build_version_5(path)
    before = derived_totals(path)
    storage = await open_sqlite(path)
    await storage.close()
    (name,) = automatic(tmp_path / "backups")
    assert re.fullmatch(r"old-5-\d{8}T\d{6}Z\.sqlite3", name)
    copy = tmp_path / "backups" / name
    with sqlite3.connect(copy) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (5,)
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert derived_totals(copy) == before
    again = await open_sqlite(path)  # already current: nothing to copy
    await again.close()
    fresh = await open_sqlite(tmp_path / "new" / "fresh.sqlite3")
    await fresh.close()
    assert automatic(tmp_path / "backups") == [name]
    assert automatic(tmp_path / "new" / "backups") == []


async def test_sqlite_keeps_the_last_automatic_backups(tmp_path: Path) -> None:
    """Of the automatic backups of one database, the newest KEPT stay; other files stay."""
    folder = tmp_path / "backups"
    folder.mkdir()
    old = [f"old-4-2025010{day}T000000Z.sqlite3" for day in range(1, 8)]
    for name in [*old, "notes.txt", "other-5-20250101T000000Z.sqlite3"]:
        (folder / name).write_bytes(b"")
    path = tmp_path / "old.sqlite3"
    build_version_5(path)
    storage = await open_sqlite(path)
    await storage.close()
    names = automatic(folder)
    ours = [n for n in names if n.startswith("old-")]
    assert len(ours) == KEPT
    assert ours[: KEPT - 1] == old[-(KEPT - 1) :]
    assert ours[-1].startswith("old-5-")
    assert {"notes.txt", "other-5-20250101T000000Z.sqlite3"} <= set(names)


async def test_sqlite_does_not_migrate_without_its_backup(tmp_path: Path) -> None:
    """If the copy before migrating cannot be written, the database is left as it was and
    the start is refused in one line saying why."""
    path = tmp_path / "old.sqlite3"
    build_version_5(path)
    (tmp_path / "backups").write_text("a file where the folder should be")
    with pytest.raises(BackupFailed) as refused:
        await open_sqlite(path)
    message = str(refused.value)
    assert message.startswith(f"not migrating {path} from schema version 5: could not back up")
    assert "\n" not in message
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (5,)
