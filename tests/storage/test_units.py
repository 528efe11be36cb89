"""Contract of Storage and UnitOfWork: transactions, read-only snapshots, meta, schema versions."""

from __future__ import annotations

import asyncio
import sqlite3
from urllib.parse import urlsplit

import asyncpg
import pytest

from bot.storage import SchemaTooNew, Storage, StorageError, open_storage, sqlite_path
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


async def set_stored_version(url: str, version: int) -> None:
    """Make the database claim ``version`` as its schema (as a newer pikabot would)."""
    if urlsplit(url).scheme == "sqlite":
        with sqlite3.connect(sqlite_path(url)) as db:
            db.execute(f"PRAGMA user_version = {version:d}")
        return
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
    finally:
        await connection.close()


async def test_a_newer_schema_is_refused_in_one_line(storage_url: str) -> None:
    opened = await open_storage(storage_url)
    try:
        known = await opened.schema_version()
        location = opened.location
    finally:
        await opened.close()
    await set_stored_version(storage_url, known + 1)
    with pytest.raises(SchemaTooNew) as caught:
        await open_storage(storage_url)
    assert str(caught.value) == (
        f"the database at {location} is at schema version {known + 1} but this pikabot knows"
        f" only up to {known}: upgrade pikabot (or restore the backup taken before the upgrade)"
    )


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
