"""Contract of Storage and UnitOfWork: transactions, read-only snapshots, meta, schema versions."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from bot import __version__
from bot.storage import (
    BackupFailed,
    BackupUnsupported,
    SchemaTooNew,
    Storage,
    StorageError,
    open_storage,
    sqlite_path,
    sqlite_url,
)
from bot.storage.versions import MIGRATED_BY
from tests.storage.helpers import DEFAULTS, GUILD, NOW, PERIOD, USER


class Boom(Exception):
    """Raised inside a unit to make it roll back."""


async def test_meta_get_and_put(storage: Storage) -> None:
    async with storage.unit() as uow:
        assert await uow.meta.get("commands_hash:global") is None
        await uow.meta.put("commands_hash:global", "abc")
        await uow.meta.put("commands_hash:global", "def")
        await uow.meta.put("other", "")
    async with storage.read() as uow:
        assert await uow.meta.get("commands_hash:global") == "def"
        assert await uow.meta.get("other") == ""


async def test_unit_rolls_back_on_an_exception(storage: Storage) -> None:
    with pytest.raises(Boom):
        async with storage.unit() as uow:
            await uow.meta.put("k", "v")
            await uow.guilds.get_or_create(GUILD, DEFAULTS, NOW)
            await uow.ledger.hold(GUILD, USER, PERIOD, 5, 0, NOW)
            raise Boom
    async with storage.read() as uow:
        assert await uow.meta.get("k") is None
        assert await uow.ledger.page(GUILD, offset=0, limit=10) == ([], 0)
        assert (await uow.ledger.totals(GUILD, PERIOD)).reserved == 0
    async with storage.unit() as uow:  # the storage is still usable
        await uow.meta.put("k", "after")
    async with storage.read() as uow:
        assert await uow.meta.get("k") == "after"


async def test_unit_rolls_back_when_cancelled(storage: Storage) -> None:
    started = asyncio.Event()

    async def writer() -> None:
        async with storage.unit() as uow:
            await uow.meta.put("k", "v")
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(writer())
    await asyncio.wait_for(started.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with storage.read() as uow:
        assert await uow.meta.get("k") is None


async def test_a_unit_cancelled_while_it_begins_leaves_no_transaction_open(
    storage: Storage,
) -> None:
    """A task cancelled while its unit's BEGIN is on the way (a shutdown cancelling a job
    as it writes) must not leave a transaction open that fails every later unit."""

    async def writer() -> None:
        async with storage.unit() as uow:
            await uow.meta.put("k", "never")

    for _ in range(3):
        task = asyncio.create_task(writer())
        await asyncio.sleep(0)  # the task is now waiting for its BEGIN
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    async with storage.unit() as uow:
        await uow.meta.put("k", "v")
    async with storage.read() as uow:
        assert await uow.meta.get("k") == "v"


async def test_read_sees_committed_data(storage: Storage) -> None:
    async with storage.unit() as uow:
        await uow.meta.put("k", "1")
    async with storage.read() as uow:
        assert await uow.meta.get("k") == "1"
    async with storage.unit() as uow:
        await uow.meta.put("k", "2")
    async with storage.read() as uow:
        assert await uow.meta.get("k") == "2"


@pytest.mark.parametrize("write", ["meta", "guild", "hold"])
async def test_read_refuses_writes(storage: Storage, write: str) -> None:
    with pytest.raises(StorageError):
        async with storage.read() as uow:
            if write == "meta":
                await uow.meta.put("k", "v")
            elif write == "guild":
                await uow.guilds.get_or_create(GUILD, DEFAULTS, NOW)
            else:
                await uow.ledger.hold(GUILD, USER, PERIOD, 5, 0, NOW)
    async with storage.read() as uow:
        assert await uow.meta.get("k") is None
    async with storage.unit() as uow:  # still usable afterwards
        await uow.meta.put("k", "v")


async def test_lock_guild_serialises_read_modify_write(storage: Storage) -> None:
    async def bump() -> None:
        async with storage.unit() as uow:
            await uow.lock_guild(GUILD)
            value = int(await uow.meta.get("n") or "0")
            await asyncio.sleep(0)
            await uow.meta.put("n", str(value + 1))

    await asyncio.wait_for(asyncio.gather(*(bump() for _ in range(20))), 60)
    async with storage.read() as uow:
        assert await uow.meta.get("n") == "20"


async def test_lock_bot_serialises_read_modify_write(storage: Storage) -> None:
    async def bump(guild_id: int) -> None:
        async with storage.unit() as uow:
            await uow.lock_guild(guild_id)
            await uow.lock_bot()
            value = int(await uow.meta.get("n") or "0")
            await asyncio.sleep(0)
            await uow.meta.put("n", str(value + 1))

    await asyncio.wait_for(asyncio.gather(*(bump(g) for g in range(20))), 60)
    async with storage.read() as uow:
        assert await uow.meta.get("n") == "20"


async def test_backend_and_location(storage: Storage, storage_url: str) -> None:
    scheme = urlsplit(storage_url).scheme
    assert storage.backend == scheme
    if scheme == "sqlite":
        assert storage.location == str(sqlite_path(storage_url))
    else:
        password = urlsplit(storage_url).password
        assert storage.location
        assert password is None or password not in storage.location


async def test_schema_version_is_the_last_migration_and_stable(storage_url: str) -> None:
    first = await open_storage(storage_url)
    try:
        version = await first.schema_version()
        assert first.created is True
    finally:
        await first.close()
    assert version >= 6 or urlsplit(storage_url).scheme != "sqlite"
    again = await open_storage(storage_url)
    try:
        assert await again.schema_version() == version
        assert again.created is False
    finally:
        await again.close()


async def test_data_survives_reopening(storage_url: str) -> None:
    first = await open_storage(storage_url)
    try:
        async with first.unit() as uow:
            rid = await uow.ledger.hold(GUILD, USER, PERIOD, 5, 10, NOW)
    finally:
        await first.close()
    again = await open_storage(storage_url)
    try:
        async with again.read() as uow:
            row = await uow.ledger.reservation(rid)
            assert (await uow.ledger.totals(GUILD, PERIOD)).reserved == 5
    finally:
        await again.close()
    assert row is not None and row.amount == 5


async def set_stored_version(url: str, version: int, migrated_by: str | None = None) -> None:
    """Make the database claim ``version`` as its schema, migrated by pikabot ``migrated_by``
    (as a newer pikabot would leave it; None: a newer one from before versions were kept)."""
    if urlsplit(url).scheme == "sqlite":
        with sqlite3.connect(sqlite_path(url)) as db:
            db.execute(f"PRAGMA user_version = {version:d}")
            db.execute("DELETE FROM meta WHERE key = ?", (MIGRATED_BY,))
            if migrated_by is not None:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?)", (MIGRATED_BY, migrated_by)
                )
        return
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
        await connection.execute("DELETE FROM meta WHERE key = $1", MIGRATED_BY)
        if migrated_by is not None:
            await connection.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2)", MIGRATED_BY, migrated_by
            )
    finally:
        await connection.close()


async def test_the_pikabot_that_migrated_is_recorded(storage: Storage) -> None:
    """Opening (and so migrating) a database records this pikabot's version in meta."""
    async with storage.read() as uow:
        assert await uow.meta.get(MIGRATED_BY) == __version__


async def _known(storage_url: str) -> tuple[int, str]:
    opened = await open_storage(storage_url)
    try:
        return await opened.schema_version(), opened.location
    finally:
        await opened.close()


async def test_a_newer_schema_is_refused_naming_both_versions(storage_url: str) -> None:
    """A database migrated by pikabot 9.9.9 to a schema this one does not know is refused in
    one line naming that version, this one and both schema versions; nothing is changed."""
    known, location = await _known(storage_url)
    await set_stored_version(storage_url, known + 1, migrated_by="9.9.9")
    with pytest.raises(SchemaTooNew) as caught:
        await open_storage(storage_url)
    assert str(caught.value) == (
        f"the database at {location} is at schema version {known + 1}, migrated by pikabot"
        f" 9.9.9, but this is pikabot {__version__}, which knows schema versions up to {known}:"
        " upgrade to pikabot 9.9.9 or newer (or restore the backup taken before the upgrade)"
    )
    assert "\n" not in str(caught.value)
    with pytest.raises(SchemaTooNew):  # refused again: the refusal wrote nothing
        await open_storage(storage_url)


async def test_a_newer_schema_of_unknown_version_is_refused_in_one_line(storage_url: str) -> None:
    """A newer database that does not say which pikabot migrated it is still refused."""
    known, location = await _known(storage_url)
    await set_stored_version(storage_url, known + 1)
    with pytest.raises(SchemaTooNew) as caught:
        await open_storage(storage_url)
    assert str(caught.value) == (
        f"the database at {location} is at schema version {known + 1}, migrated by a newer"
        f" pikabot, but this is pikabot {__version__}, which knows schema versions up to"
        f" {known}: upgrade pikabot (or restore the backup taken before the upgrade)"
    )


async def test_backup_copies_sqlite_and_names_pg_dump_for_postgresql(
    storage: Storage, tmp_path: Path
) -> None:
    """SQLite: a checked, self-contained copy that opens with the same data, written while
    the database is open; PostgreSQL: refused, saying to use pg_dump (no password)."""
    async with storage.unit() as uow:
        await uow.meta.put("k", "v")
        await uow.guilds.get_or_create(GUILD, DEFAULTS, NOW)
        await uow.ledger.hold(GUILD, USER, PERIOD, 5, 0, NOW)
    target = tmp_path / "copy.sqlite3"
    if storage.backend == "postgresql":
        with pytest.raises(BackupUnsupported) as refused:
            await storage.backup(target)
        assert "pg_dump" in str(refused.value) and storage.location in str(refused.value)
        assert not target.exists()
        return
    made = await storage.backup(target)
    assert (made.path, made.schema_version) == (target, await storage.schema_version())
    assert made.size == target.stat().st_size > 0
    with sqlite3.connect(target) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    copy = await open_storage(sqlite_url(target))
    try:
        async with copy.read() as uow:
            assert await uow.meta.get("k") == "v"
            assert (await uow.ledger.totals(GUILD, PERIOD)).reserved == 5
    finally:
        await copy.close()
    with pytest.raises(BackupFailed, match="already exists"):
        await storage.backup(target)


async def test_ping_reads_the_database(storage: Storage) -> None:
    """The health check's read works on an open database."""
    await storage.ping()


async def test_lock_guild_keeps_a_balance_from_overspending(storage: Storage) -> None:
    granted: list[int] = []

    async def reserve(user_id: int) -> None:
        async with storage.unit() as uow:
            await uow.lock_guild(GUILD)
            row = await uow.guilds.get_or_create(GUILD, DEFAULTS, NOW)
            totals = await uow.ledger.totals(GUILD, PERIOD)
            await asyncio.sleep(0)
            if row.allowance + totals.net >= 20:
                granted.append(await uow.ledger.hold(GUILD, user_id, PERIOD, 20, 0, NOW))

    await asyncio.wait_for(asyncio.gather(*(reserve(u) for u in range(30))), 60)
    async with storage.read() as uow:
        totals = await uow.ledger.totals(GUILD, PERIOD)
    assert len(granted) == 5
    assert (totals.net, totals.reserved) == (-100, 100)
