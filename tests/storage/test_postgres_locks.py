"""PostgreSQL only: units on separate connections keep each guild's balance rule.

``lock_guild`` must make a second unit wait until the first commits (and then see its writes),
must not make units of other guilds wait, and ``lock_bot`` is a lock of its own. The waiting is
observed in ``pg_locks`` (an advisory lock not granted), polled with a bound: no timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from bot.models import JobState
from bot.storage import Storage
from bot.storage.base import NewGuild, UnitOfWork
from bot.storage.postgres import open_postgres
from bot.storage.records import LedgerKind, ReservationState
from tests.storage.helpers import later, new_job

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY = "2026-03-01"
GUILD = 1_234_567_890_123_456_789  # a real-looking 64-bit snowflake
BOUND = 10.0  # seconds any single wait in these tests may take before it counts as a hang


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[Storage]:
    """A migrated PostgreSQL storage with room for 25 connections."""
    opened = await open_postgres(postgres_url, pool_size=25)
    try:
        yield opened
    finally:
        await opened.close()


async def _waiting_advisory_locks(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        waiting = await connection.fetchval(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        )
    finally:
        await connection.close()
    return int(waiting)


async def _until_waiting(url: str, count: int) -> None:
    """Return once ``count`` units wait for an advisory lock; fail after :data:`BOUND`."""
    for _ in range(int(BOUND / 0.02)):
        if await _waiting_advisory_locks(url) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {count} unit(s) waiting for the lock after {BOUND} s")


async def _hold_if_enough(uow: UnitOfWork, guild_id: int, user_id: int, cost: int) -> int | None:
    """The balance rule as the domain applies it: lock, read, check, hold."""
    await uow.lock_guild(guild_id)
    row = await uow.guilds.get_or_create(guild_id, NewGuild(100, "daily"), NOW)
    totals = await uow.ledger.totals(guild_id, KEY)
    if row.allowance + totals.net < cost:
        return None
    return await uow.ledger.hold(guild_id, user_id, KEY, cost, 50_000, NOW)


async def test_concurrent_holds_under_lock_guild_never_overspend(pg: Storage) -> None:
    async def attempt(user_id: int) -> int | None:
        async with pg.unit() as uow:
            return await _hold_if_enough(uow, GUILD, user_id, 15)

    results = await asyncio.wait_for(asyncio.gather(*(attempt(u) for u in range(20))), BOUND * 3)

    held = [r for r in results if r is not None]
    assert len(held) == 6  # 6 x 15 = 90 <= 100 < 105
    async with pg.read() as uow:
        totals = await uow.ledger.totals(GUILD, KEY)
        entries, count = await uow.ledger.page(GUILD, offset=0, limit=100)
    assert totals.net == -90 and totals.reserved == 90
    assert count == 6 and sum(e.amount for e in entries) == -90


async def test_a_second_unit_on_the_guild_waits_and_then_sees_the_first_units_hold(
    pg: Storage, postgres_url: str
) -> None:
    first_read = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> int | None:
        async with pg.unit() as uow:
            await uow.lock_guild(GUILD)
            await uow.guilds.get_or_create(GUILD, NewGuild(100, "daily"), NOW)
            first_read.set()
            await asyncio.wait_for(release_first.wait(), BOUND)
            return await uow.ledger.hold(GUILD, 1, KEY, 80, 0, NOW)

    async def second() -> int | None:
        await asyncio.wait_for(first_read.wait(), BOUND)
        async with pg.unit() as uow:
            return await _hold_if_enough(uow, GUILD, 2, 80)

    first_task = asyncio.create_task(first())
    second_task = asyncio.create_task(second())
    await _until_waiting(postgres_url, 1)  # the second unit is blocked on the guild's lock
    assert not second_task.done()
    release_first.set()

    assert await asyncio.wait_for(first_task, BOUND) is not None
    assert await asyncio.wait_for(second_task, BOUND) is None  # 100 - 80 < 80: refused
    async with pg.read() as uow:
        assert (await uow.ledger.totals(GUILD, KEY)).reserved == 80


async def test_units_on_different_guilds_do_not_wait_for_each_other(pg: Storage) -> None:
    holding = asyncio.Event()
    other_done = asyncio.Event()

    async def first() -> None:
        async with pg.unit() as uow:
            await uow.lock_guild(GUILD)
            holding.set()
            await asyncio.wait_for(other_done.wait(), BOUND)  # would hang if the other waited

    async def other() -> None:
        await asyncio.wait_for(holding.wait(), BOUND)
        for guild_id in (GUILD + 1, 0, -GUILD, 2**63 - 1):
            async with pg.unit() as uow:
                await uow.lock_guild(guild_id)
        async with pg.unit() as uow:
            await uow.lock_bot()
        other_done.set()

    await asyncio.wait_for(asyncio.gather(first(), other()), BOUND * 2)


async def test_lock_bot_serialises_units(pg: Storage, postgres_url: str) -> None:
    holding = asyncio.Event()
    release = asyncio.Event()
    order: list[str] = []

    async def first() -> None:
        async with pg.unit() as uow:
            await uow.lock_bot()
            holding.set()
            await asyncio.wait_for(release.wait(), BOUND)
            order.append("first")

    async def second() -> None:
        await asyncio.wait_for(holding.wait(), BOUND)
        async with pg.unit() as uow:
            await uow.lock_bot()
            order.append("second")

    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    await _until_waiting(postgres_url, 1)
    release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), BOUND)
    assert order == ["first", "second"]


async def _waiting_locks(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        waiting = await connection.fetchval("SELECT COUNT(*) FROM pg_locks WHERE NOT granted")
    finally:
        await connection.close()
    return int(waiting)


async def test_a_reservation_settled_by_two_units_at_once_ends_once(
    pg: Storage, postgres_url: str
) -> None:
    async with pg.unit() as uow:
        rid = await uow.ledger.hold(GUILD, 1, KEY, 30, 0, NOW)
    first_settled = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> object:
        async with pg.unit() as uow:
            ended = await uow.ledger.settle(
                rid, ReservationState.CHARGED, job_id=1, reason="", now=NOW
            )
            first_settled.set()
            await asyncio.wait_for(release_first.wait(), BOUND)
        return ended

    async def second() -> object:
        await asyncio.wait_for(first_settled.wait(), BOUND)
        async with pg.unit() as uow:
            return await uow.ledger.settle(
                rid, ReservationState.REFUNDED, job_id=1, reason="late", now=NOW
            )

    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    for _ in range(int(BOUND / 0.02)):  # the second waits for the first's row lock
        if await _waiting_locks(postgres_url) >= 1:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the second settle never waited for the first")
    release_first.set()
    ended_first, ended_second = await asyncio.wait_for(asyncio.gather(*tasks), BOUND)

    assert ended_first is not None and ended_second is None
    async with pg.read() as uow:
        totals = await uow.ledger.totals(GUILD, KEY)
        entries, count = await uow.ledger.page(GUILD, offset=0, limit=10)
        reservation = await uow.ledger.reservation(rid)
    assert (totals.net, totals.reserved, totals.spent) == (-30, 0, 30)
    assert [e.kind for e in entries] == [LedgerKind.CHARGE, LedgerKind.RESERVE] and count == 2
    assert reservation is not None and reservation.state is ReservationState.CHARGED


async def test_many_units_settling_one_reservation_end_it_once(pg: Storage) -> None:
    async with pg.unit() as uow:
        rid = await uow.ledger.hold(GUILD, 1, KEY, 30, 0, NOW)

    async def settle(n: int) -> bool:
        state = ReservationState.CHARGED if n % 2 else ReservationState.REFUNDED
        async with pg.unit() as uow:
            ended = await uow.ledger.settle(rid, state, job_id=n, reason="", now=NOW)
        return ended is not None

    results = await asyncio.wait_for(asyncio.gather(*(settle(n) for n in range(16))), BOUND * 3)

    assert results.count(True) == 1
    async with pg.read() as uow:
        totals = await uow.ledger.totals(GUILD, KEY)
        _, count = await uow.ledger.page(GUILD, offset=0, limit=100)
    assert totals.reserved == 0 and count == 2
    assert (totals.net, totals.spent) in ((-30, 30), (0, 0))


async def test_a_locked_job_row_makes_its_owners_renewal_wait_and_see_the_decision(
    pg: Storage, postgres_url: str
) -> None:
    """A cancel in one process locks the job's row and ends it; the owner's renew-or-stop in
    another waits for that unit and then finds the job no longer open: it stops before its
    submit instead of sending a job that was refunded."""
    async with pg.unit() as uow:
        job = await uow.jobs.create(new_job(lease_owner="owner", lease_until=later(60)), NOW)
    locked, decide = asyncio.Event(), asyncio.Event()

    async def cancel_elsewhere() -> JobState:
        async with pg.unit() as uow:
            seen = await uow.jobs.lock(job.id)
            assert seen is not None
            locked.set()
            await decide.wait()
            await uow.jobs.update(job.id, {"state": JobState.CANCELLED}, later(1))
            return seen.state

    async def owner_renews() -> list[int]:
        async with pg.unit() as uow:
            return await uow.jobs.renew("owner", [job.id], later(90))

    canceller = asyncio.create_task(cancel_elsewhere())
    async with asyncio.timeout(BOUND):
        await locked.wait()
    renewal = asyncio.create_task(owner_renews())
    await _until_row_lock_waited(postgres_url)  # the renewal waits for the locked row
    assert not renewal.done()
    decide.set()
    async with asyncio.timeout(BOUND):
        assert await canceller is JobState.PENDING
        assert await renewal == []  # the job is no longer open: the owner stops


async def _until_row_lock_waited(url: str) -> None:
    """Return once a session waits for a row (or transaction) lock; fail after BOUND."""
    connection = await asyncpg.connect(url)
    try:
        for _ in range(int(BOUND / 0.02)):
            waiting = await connection.fetchval(
                "SELECT COUNT(*) FROM pg_locks WHERE NOT granted"
                " AND locktype IN ('transactionid', 'tuple')"
            )
            if waiting:
                return
            await asyncio.sleep(0.02)
    finally:
        await connection.close()
    raise AssertionError(f"nobody waited for the row lock after {BOUND} s")
