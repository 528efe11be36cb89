"""Two processes' job services on one database (SQLite and PostgreSQL): each job is run by the
owner of its lease; a lease that runs out is taken over and the job carried on from its stored
provider handle, posted once and charged once. The clock is injected: no test waits for a
lease to run out, it moves the clock past it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from bot.clock import utcnow
from bot.jobs import STILL_SENDING, CannotCancel, JobLimits, JobService
from bot.models import Job, JobState, Origin
from bot.ownership import HEARTBEAT, LEASE_TTL, TAKEOVER_BATCH, new_owner
from bot.storage import Storage
from bot.storage.records import LedgerKind, ReservationState
from tests.fakes.fal import FakeFal
from tests.test_jobs import ORIGIN, RecordingFrontEnd, make_world, request
from tests.units import ledger_rows, reservation_states

PAST_TTL = LEASE_TTL + timedelta(seconds=1)


class Clock:
    """A clock both services read; only the test moves it."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


@dataclass
class Pair:
    fal: FakeFal
    storage: Storage
    clock: Clock
    a: JobService
    b: JobService


@pytest.fixture
async def pair(
    storage: Storage, storage_url: str, tmp_path: Path, session: aiohttp.ClientSession
) -> AsyncIterator[Pair]:
    """Processes A and B on one database; fal holds every job until the test lets it go."""
    clock = Clock()
    async with FakeFal(ready_after=600, stream_interval=0.02) as fal:
        a, b = (
            make_world(
                fal, storage, storage_url, tmp_path, session, clock=clock, owner=name
            ).service
            for name in ("host:1:a", "host:2:b")
        )
        try:
            yield Pair(fal, storage, clock, a, b)
        finally:
            await a.close()
            await b.close()


def let_fal_finish(fal: FakeFal) -> None:
    """Every held job turns done at its next status event."""
    for job in fal.jobs.values():
        job.ready_at = None


async def started_at_fal(service: JobService, front: RecordingFrontEnd) -> Job:
    """A job created and run by ``service``, once fal has queued it."""
    job = await service.create(request(), ORIGIN)
    service.start(job, front)
    async with asyncio.timeout(10):
        await front.queued.wait()
    return job


async def charged_once(storage: Storage) -> bool:
    charges = [
        r for r in await ledger_rows(storage, ORIGIN.guild_id) if r.kind is LedgerKind.CHARGE
    ]
    states = await reservation_states(storage, ORIGIN.guild_id)
    return len(charges) == 1 and states == [ReservationState.CHARGED]


async def test_a_held_lease_is_left_alone_and_an_expired_one_taken_over(pair: Pair):
    """B takes nothing while A's lease lasts; once it ran out, B claims the job and carries it
    on from the stored handle (no second submit); A's heartbeat finds it lost and stops it
    without settling or telling the member; B posts it once and charges it once."""
    front_a, front_b = RecordingFrontEnd(), RecordingFrontEnd()
    job = await started_at_fal(pair.a, front_a)
    assert await pair.b.resume(lambda _job: front_b) == []
    pair.clock.advance(PAST_TTL)
    assert [j.id for j in await pair.b.resume(lambda _job: front_b)] == [job.id]
    assert await pair.a.renew_leases() == [job.id]
    assert await pair.a.wait_idle(10)
    assert await pair.b.renew_leases() == []  # B holds it
    let_fal_finish(pair.fal)
    assert await pair.b.wait_idle(10)
    done = await pair.b.get(job.id)
    assert done is not None and done.state is JobState.DELIVERED
    assert (front_a.deliveries, front_a.failures, front_b.deliveries) == (0, [], 1)
    assert pair.fal.count("submit") == 1
    assert await charged_once(pair.storage)


async def test_a_process_that_lost_its_lease_never_posts_nor_charges(pair: Pair):
    """Without its heartbeat noticing, A follows the clip to the end alongside B: A's next
    write (renew-or-stop) finds the lease gone and A stops before posting; only B posts and
    charges."""
    front_a, front_b = RecordingFrontEnd(), RecordingFrontEnd()
    job = await started_at_fal(pair.a, front_a)
    pair.clock.advance(PAST_TTL)
    assert [j.id for j in await pair.b.resume(lambda _job: front_b)] == [job.id]
    let_fal_finish(pair.fal)
    assert await pair.a.wait_idle(10)
    assert await pair.b.wait_idle(10)
    assert (front_a.deliveries, front_a.failures, front_b.deliveries) == (0, [], 1)
    assert await charged_once(pair.storage)


async def test_the_heartbeat_keeps_a_job_from_being_taken_over(pair: Pair):
    """A renews every HEARTBEAT: however long the job takes, B never gets it."""
    front_a, front_b = RecordingFrontEnd(), RecordingFrontEnd()
    job = await started_at_fal(pair.a, front_a)
    for _ in range(6):  # two TTLs' worth of beats
        pair.clock.advance(HEARTBEAT)
        assert await pair.a.renew_leases() == []
        assert await pair.b.resume(lambda _job: front_b) == []
    let_fal_finish(pair.fal)
    assert await pair.a.wait_idle(10)
    assert (await pair.a.get(job.id)).state is JobState.DELIVERED  # type: ignore[union-attr]
    assert (front_a.deliveries, front_b.deliveries) == (1, 0)
    assert await charged_once(pair.storage)


async def test_a_clean_shutdown_releases_its_jobs_for_at_once_takeover(pair: Pair):
    """A stops cleanly (a deploy): its suspended job is free at once, and B carries it on
    without waiting for the lease to run out."""
    front_a, front_b = RecordingFrontEnd(), RecordingFrontEnd()
    job = await started_at_fal(pair.a, front_a)
    await pair.a.close()
    assert [j.id for j in await pair.b.resume(lambda _job: front_b)] == [job.id]
    let_fal_finish(pair.fal)
    assert await pair.b.wait_idle(10)
    assert (front_a.deliveries, front_b.deliveries) == (0, 1)
    assert pair.fal.count("submit") == 1
    assert await charged_once(pair.storage)


async def test_takeover_claims_only_as_many_jobs_as_there_are_free_slots(
    storage: Storage, storage_url: str, tmp_path: Path, session: aiohttp.ClientSession
):
    """A process with room for two jobs takes two of three expired ones; the third is left
    for another process (or its next round)."""
    clock = Clock()
    async with FakeFal(ready_after=600, stream_interval=0.02) as fal:
        a = make_world(fal, storage, storage_url, tmp_path, session, clock=clock).service
        two = JobLimits(status_interval=0.0, max_concurrent=2)
        b = make_world(fal, storage, storage_url, tmp_path, session, clock=clock, limits=two)
        b = b.service
        try:
            jobs = [
                await a.create(request(), Origin(ORIGIN.guild_id, 43, u, "u")) for u in (1, 2, 3)
            ]
            clock.advance(PAST_TTL)
            taken = await b.resume(lambda _job: RecordingFrontEnd())
            assert [j.id for j in taken] == [jobs[0].id, jobs[1].id]
            other = make_world(fal, storage, storage_url, tmp_path, session, clock=clock)
            try:
                left = await other.service.resume(lambda _job: RecordingFrontEnd())
                assert [j.id for j in left] == [jobs[2].id]
            finally:
                await other.service.close()
        finally:
            await a.close()
            await b.close()


async def test_a_cancel_elsewhere_never_refunds_a_submit_in_flight(pair: Pair):
    """The Cancel button reaches the process of the guild's shard (B) while the job's owner
    (A) is sending it to the provider: B refuses ("try again") instead of refunding a clip
    the provider is about to make and bill."""
    job = await pair.a.create(request(), ORIGIN)
    await pair.a.update(job, state=JobState.SUBMITTING)  # A's submit is on the way
    with pytest.raises(CannotCancel) as refused:
        await pair.b.cancel(job.id, reason="cancelled")
    assert refused.value.user_message == STILL_SENDING
    assert await reservation_states(pair.storage, ORIGIN.guild_id) == [ReservationState.HELD]


async def test_a_job_cancelled_elsewhere_is_stopped_by_its_owner_before_it_submits(pair: Pair):
    """B cancels (and refunds) a job A has not sent yet: A's next write finds the job ended
    (renew-or-stop) and A never submits it nor tells the member it failed."""
    front_a = RecordingFrontEnd()
    job = await pair.a.create(request(), ORIGIN)
    await pair.b.cancel(job.id, reason="cancelled")
    await pair.a.run(job, front_a)
    assert pair.fal.count("submit") == 0 and front_a.failures == []
    assert await reservation_states(pair.storage, ORIGIN.guild_id) == [ReservationState.REFUNDED]


def test_owner_ids_differ_per_process_start():
    """Two services in one process (or a pid reused) never share an owner id."""
    assert new_owner() != new_owner()


async def test_a_takeover_round_claims_one_batch_and_leaves_the_rest_to_others(pair: Pair):
    """With more orphaned jobs than one batch, a round takes a batch; the next process to
    look takes the next batch, so a dead process's jobs are shared, not all taken by one."""
    count = TAKEOVER_BATCH + 3
    jobs = [
        await pair.a.create(request(), Origin(5000 + u, 43, u, "u"))  # a guild each
        for u in range(1, count + 1)
    ]
    pair.clock.advance(PAST_TTL)  # A died: every lease has run out
    first = await pair.b.resume(lambda _job: RecordingFrontEnd(), batch=TAKEOVER_BATCH)
    assert [j.id for j in first] == [j.id for j in jobs[:TAKEOVER_BATCH]]
    second = await pair.a.resume(lambda _job: RecordingFrontEnd(), batch=TAKEOVER_BATCH)
    assert [j.id for j in second] == [j.id for j in jobs[TAKEOVER_BATCH:]]
