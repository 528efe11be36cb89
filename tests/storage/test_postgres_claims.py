"""PostgreSQL only: concurrent claims never give one job to two owners.

``claim`` skips rows another unit is claiming (``FOR UPDATE SKIP LOCKED``) instead of waiting
for them or taking them twice; many owners claiming at once share the jobs out exactly once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.models import GenerationRequest, Origin
from bot.storage import Storage
from bot.storage.base import NewJob
from bot.storage.postgres import open_postgres

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
UNTIL = NOW + timedelta(seconds=30)
BOUND = 10.0


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[Storage]:
    """A migrated PostgreSQL storage with room for 12 connections."""
    opened = await open_postgres(postgres_url, pool_size=12)
    try:
        yield opened
    finally:
        await opened.close()


async def _jobs(storage: Storage, count: int) -> list[int]:
    async with storage.unit() as uow:
        created = [
            await uow.jobs.create(
                NewJob(
                    origin=Origin(guild_id=7, channel_id=8, user_id=n, user_name=f"u{n}"),
                    request=GenerationRequest(prompt=f"clip {n}", seed=n + 1),
                    provider="fal",
                    cost=10,
                    reservation_id=None,
                ),
                NOW,
            )
            for n in range(count)
        ]
    return [job.id for job in created]


async def test_many_owners_claiming_at_once_share_the_jobs_exactly_once(pg: Storage) -> None:
    ids = await _jobs(pg, 60)

    async def owner(name: str) -> list[int]:
        mine: list[int] = []
        for _ in range(60):  # bounded: each round claims at least one job or ends the loop
            async with pg.unit() as uow:
                claimed = await uow.jobs.claim(name, NOW, UNTIL, 4)
            if not claimed:
                return mine
            mine += [job.id for job in claimed]
        return mine

    per_owner = await asyncio.wait_for(
        asyncio.gather(*(owner(f"process-{n}") for n in range(8))), BOUND * 3
    )

    counts = Counter(job_id for claimed in per_owner for job_id in claimed)
    assert sorted(counts) == ids
    assert set(counts.values()) == {1}
    async with pg.unit() as uow:
        assert await uow.jobs.claim("late", NOW, UNTIL, 100) == []


async def test_a_claim_skips_jobs_another_unit_is_claiming_instead_of_waiting(
    pg: Storage,
) -> None:
    ids = await _jobs(pg, 3)
    first_claimed = asyncio.Event()
    second_done = asyncio.Event()

    async def first() -> list[int]:
        async with pg.unit() as uow:
            claimed = await uow.jobs.claim("a", NOW, UNTIL, 1)
            first_claimed.set()
            await asyncio.wait_for(second_done.wait(), BOUND)  # still uncommitted meanwhile
        return [job.id for job in claimed]

    async def second() -> list[int]:
        await asyncio.wait_for(first_claimed.wait(), BOUND)
        async with pg.unit() as uow:
            claimed = await uow.jobs.claim("b", NOW, UNTIL, 10)
        second_done.set()
        return [job.id for job in claimed]

    got_a, got_b = await asyncio.wait_for(asyncio.gather(first(), second()), BOUND * 2)
    assert got_a == ids[:1]
    assert got_b == ids[1:]


async def test_a_rolled_back_claim_leaves_the_job_free(pg: Storage) -> None:
    ids = await _jobs(pg, 1)
    with pytest.raises(RuntimeError):
        async with pg.unit() as uow:
            assert [j.id for j in await uow.jobs.claim("a", NOW, UNTIL, 1)] == ids
            raise RuntimeError("the process failed before committing")
    async with pg.unit() as uow:
        assert [j.id for j in await uow.jobs.claim("b", NOW, UNTIL, 1)] == ids
