"""Both backends: instants are aware and come back as the same instant in UTC; a naive
``datetime`` is refused (PostgreSQL's driver would silently take it for local time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.models import JobState
from bot.storage import Storage
from bot.storage.records import LedgerKind
from tests.storage.helpers import DEFAULTS, GUILD, NOW, PERIOD, USER, new_job

NAIVE = datetime(2026, 3, 14, 12, 0, 0)
PARIS = timezone(timedelta(hours=1))


async def test_an_instant_in_another_zone_comes_back_as_the_same_instant_in_utc(
    storage: Storage,
) -> None:
    local = NOW.astimezone(PARIS)
    async with storage.unit() as uow:
        rid = await uow.ledger.hold(GUILD, USER, PERIOD, 5, 1_000, local)
        job = await uow.jobs.create(new_job(), local)
        await uow.jobs.update(job.id, {"started_at": local}, local)
    async with storage.read() as uow:
        reservation = await uow.ledger.reservation(rid)
        stored = await uow.jobs.get(job.id)
        in_window = await uow.ledger.usd_spent(NOW, NOW + timedelta(seconds=1), None)
    assert reservation is not None and stored is not None
    for value in (reservation.created_at, stored.created_at, stored.started_at):
        assert value == NOW
        assert value is not None and value.utcoffset() == timedelta(0)
    assert in_window == 1_000


@pytest.mark.parametrize("call", ["hold", "move", "guild", "job", "job_update", "usd_spent"])
async def test_a_naive_instant_is_refused(storage: Storage, call: str) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        async with storage.unit() as uow:
            if call == "hold":
                await uow.ledger.hold(GUILD, USER, PERIOD, 5, 0, NAIVE)
            elif call == "move":
                await uow.ledger.move(
                    GUILD, PERIOD, LedgerKind.GRANT, 5, actor_id=1, reason=None, now=NAIVE
                )
            elif call == "guild":
                await uow.guilds.get_or_create(GUILD, DEFAULTS, NAIVE)
            elif call == "job":
                await uow.jobs.create(new_job(), NAIVE)
            elif call == "job_update":
                job = await uow.jobs.create(new_job(), NOW)
                await uow.jobs.update(job.id, {"state": JobState.QUEUED}, NAIVE)
            else:
                await uow.ledger.usd_spent(NAIVE, NOW.replace(tzinfo=UTC), None)
    async with storage.read() as uow:
        assert await uow.ledger.page(GUILD, offset=0, limit=10) == ([], 0)
