"""The fair queue on the shared database: FIFO per guild, round-robin between guilds, limits
counted over every process, bounded length, positions. Each test runs on both backends."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import pytest

from bot.fair_line import fair_order
from bot.models import JobState
from bot.scheduler import FairScheduler, QueueFull
from bot.storage import open_storage
from bot.storage.base import Storage
from bot.storage.records import WaitingJob
from tests.polling import eventually
from tests.storage.helpers import NOW, later, new_job

A, B, C = 1, 2, 3


def ticking() -> Callable[[], datetime]:
    """A clock that moves one millisecond per reading: every start has its own instant."""
    ticks = itertools.count()
    return lambda: NOW + timedelta(milliseconds=next(ticks))


class Run:
    """Jobs stored for real that hold their slot until released, recording their start order
    by label (the database picks the ids)."""

    def __init__(self, storage: Storage, scheduler: FairScheduler, clock: Callable[[], datetime]):
        self.storage = storage
        self.scheduler = scheduler
        self.clock = clock
        self.started: list[int] = []
        self.ids: dict[int, int] = {}
        self.release: dict[int, asyncio.Event] = {}
        self.positions: dict[int, list[int]] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}

    async def submit(self, label: int, guild_id: int, *, lease: str | None = None) -> None:
        """Admit and store a job (as ``create`` does), then run it in the background."""
        async with self.storage.unit() as uow:
            await uow.lock_guild(guild_id)
            await self.scheduler.check_room(uow, guild_id)
            until = later(3600) if lease else None
            job = await uow.jobs.create(
                new_job(guild_id, lease_owner=lease, lease_until=until), self.clock()
            )
        self.ids[label] = job.id
        self.release[label] = asyncio.Event()
        self.positions[label] = []
        self.tasks[label] = asyncio.create_task(self._job(label, job.id, guild_id))

    async def _job(self, label: int, job_id: int, guild_id: int) -> None:
        async with self.scheduler.slot(job_id, guild_id, self.positions[label].append):
            self.started.append(label)
            await self.release[label].wait()
            async with self.storage.unit() as uow:  # a terminal state frees the slot
                await uow.jobs.update(job_id, {"state": JobState.DELIVERED}, self.clock())

    def position(self, label: int) -> int | None:
        return self.scheduler.position(self.ids[label])

    async def started_count(self, count: int) -> None:
        await eventually(lambda: len(self.started), count, within=10)

    async def finish(self, label: int) -> None:
        before = len(self.started)
        self.release[label].set()
        async with asyncio.timeout(10):
            await self.tasks[label]
        if self.scheduler.waiting:
            await self.started_count(before + 1)

    async def close(self) -> None:
        for event in self.release.values():
            event.set()
        async with asyncio.timeout(10):
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        await self.scheduler.close()


@pytest.fixture
async def make_run(storage: Storage) -> AsyncIterator[Callable[..., Run]]:
    runs: list[Run] = []

    def make(**limits: int) -> Run:
        clock = ticking()
        scheduler = FairScheduler(storage, poll_every=0.05, clock=clock, **limits)
        runs.append(Run(storage, scheduler, clock))
        return runs[-1]

    yield make
    for run in runs:
        await run.close()


async def test_scheduler_round_robin_between_guilds(make_run):
    """A busy guild's ten jobs do not hold back another guild's: starts alternate."""
    run = make_run(max_running=1, max_waiting=50)
    for job in range(1, 11):
        await run.submit(job, A)
    await run.started_count(1)
    await run.submit(101, B)
    await run.submit(102, B)
    await run.submit(201, C)
    await eventually(lambda: run.position(201), 2)
    assert run.started == [1]
    while len(run.started) < 13:
        await run.finish(run.started[-1])
    order = list(run.started)
    # A's 1 ran first; then a round over B, C (never served) and A, then A's remaining jobs.
    assert order[:7] == [1, 101, 201, 2, 102, 3, 4]
    assert [j for j in order if j < 100] == list(range(1, 11)), "FIFO inside a guild"


async def test_scheduler_positions_count_down_to_one(make_run):
    """A waiting job is told its place; it only gets smaller, ending at 1 before it starts."""
    run = make_run(max_running=1, max_waiting=50)
    for job in range(1, 5):
        await run.submit(job, A)
    await eventually(lambda: run.position(4), 3)
    assert run.scheduler.last_plan.order == tuple(run.ids[j] for j in (2, 3, 4))
    for job in range(1, 4):
        await run.finish(job)
    assert run.positions[4] == [3, 2, 1]
    assert run.positions[1] == []  # started at once, never waited


async def test_scheduler_new_guild_jumps_a_long_line(make_run):
    """A guild arriving behind a long line of another is first in line, not tenth."""
    run = make_run(max_running=1, max_waiting=50)
    for job in range(1, 11):
        await run.submit(job, A)
    await run.started_count(1)
    await run.submit(101, B)
    await eventually(lambda: run.position(101), 1)
    assert run.position(2) == 2


async def test_scheduler_guild_limit_leaves_slots_to_others(make_run):
    """With a per-guild limit of 1, a guild's second job waits while another guild runs."""
    run = make_run(max_running=3, per_guild_running=1, max_waiting=10)
    await run.submit(1, A)
    await run.submit(2, A)
    await run.submit(101, B)
    await run.started_count(2)
    assert sorted(run.started) == [1, 101]
    assert run.scheduler.waiting == 1
    await run.finish(1)
    assert 2 in run.started


async def test_scheduler_queue_length_is_bounded_per_bot_and_guild(make_run):
    """Beyond the line's length new jobs are refused before they exist; per guild too."""
    run = make_run(max_running=1, max_waiting=3, per_guild_waiting=2)
    await run.submit(1, A)  # runs
    await run.submit(2, A)
    await run.submit(3, A)  # A: 1 running + 2 waiting = its limit
    with pytest.raises(QueueFull) as full:
        await run.submit(4, A)
    assert "server's" in full.value.user_message
    await run.submit(101, B)  # the bot's line: 3 waiting
    with pytest.raises(QueueFull) as full:
        await run.submit(201, C)
    assert "bot's" in full.value.user_message
    await run.started_count(1)
    await run.finish(1)
    await run.submit(201, C)  # a place freed up


async def test_scheduler_cancelled_waiter_leaves_the_line(make_run, storage: Storage):
    """A job cancelled while waiting gives its place up and never takes a slot."""
    run = make_run(max_running=1, max_waiting=10)
    await run.submit(1, A)
    await run.submit(2, A)
    await run.submit(3, A)
    await eventually(lambda: run.position(3), 2)
    run.tasks[2].cancel()
    async with storage.unit() as uow:  # the job service settles a cancelled job
        await uow.jobs.update(run.ids[2], {"state": JobState.CANCELLED}, later(1))
    await eventually(lambda: run.positions[3][-1], 1)
    await run.finish(1)
    assert run.started == [1, 3]
    async with storage.read() as uow:
        cancelled = await uow.jobs.get(run.ids[2])
    assert cancelled is not None and cancelled.state is JobState.CANCELLED


async def test_scheduler_never_exceeds_limits_under_load(make_run):
    """Sixty jobs over five guilds: never more than the limits run at once."""
    run = make_run(max_running=4, per_guild_running=2, max_waiting=500)
    peak = {"all": 0}
    guild_of = {label: label % 5 for label in range(60)}

    async def watch() -> None:
        while True:  # the slots in the database never pass the limits; let the jobs go
            async with run.storage.read() as uow:
                line = await uow.jobs.line(run.clock())
            assert all(n <= 2 for n in line.running.values()), line.running
            peak["all"] = max(peak["all"], sum(line.running.values()))
            for label in list(run.started):
                run.release[label].set()
            await asyncio.sleep(0.01)

    for label, guild in guild_of.items():
        await run.submit(label, guild)
    watcher = asyncio.create_task(watch())
    try:
        await eventually(lambda: len(run.started), 60, within=30)
    finally:
        watcher.cancel()
    assert 1 <= peak["all"] <= 4
    await eventually(lambda: run.scheduler.waiting, 0)


async def test_scheduler_limits_and_order_hold_across_processes(storage_url: str):
    """Two processes (two schedulers, each its own connection) share one line: the bot-wide
    limit counts both, and a job of one process waits its turn behind the other's."""
    first, second = await open_storage(storage_url), await open_storage(storage_url)
    clock = ticking()
    runs = [
        Run(s, FairScheduler(s, max_running=2, max_waiting=10, poll_every=0.05, clock=clock), clock)
        for s in (first, second)
    ]
    try:
        one, two = runs
        await one.submit(1, A, lease="one")
        await one.submit(2, A, lease="one")
        await one.started_count(2)
        await two.submit(101, B, lease="two")  # the bot's two slots are taken by the other
        await one.submit(3, A, lease="one")
        await eventually(lambda: two.position(101), 1)
        await eventually(lambda: one.position(3), 2)
        assert two.started == []
        one.release[1].set()  # a slot frees in process one: B's job (first in line) takes it
        await two.started_count(1)
        await eventually(lambda: one.position(3), 1)
        assert one.started == [1, 2]
        one.release[2].set()
        await one.started_count(3)
    finally:
        for run in runs:
            await run.close()
        await first.close()
        await second.close()


async def test_scheduler_skips_an_orphaned_job_until_it_is_taken_over(storage: Storage):
    """A waiting job whose process died (lease run out) does not hold the line's head: the
    next job starts; once taken over it is back at its old place."""
    clock = ticking()
    run = Run(storage, FairScheduler(storage, max_running=1, poll_every=0.05, clock=clock), clock)
    try:
        async with storage.unit() as uow:  # a dead process's waiting job, lease run out
            orphan = await uow.jobs.create(
                new_job(A, lease_owner="dead", lease_until=NOW - timedelta(seconds=1)), NOW
            )
        await run.submit(1, B, lease="live")
        await run.started_count(1)
        async with storage.read() as uow:
            line = await uow.jobs.line(clock())
        assert [w.job_id for w in line.waiting] == []
        async with storage.unit() as uow:  # taken over: a live lease again
            taken = await uow.jobs.claim("live", clock(), later(3600), 10)
        assert [j.id for j in taken] == [orphan.id]
        async with storage.read() as uow:
            line = await uow.jobs.line(clock())
        assert [w.job_id for w in line.waiting] == [orphan.id]
        assert line.running == {B: 1}
    finally:
        await run.close()


def test_fair_order_serves_the_guild_served_longest_ago_first():
    """Round-robin without memory: rounds go least recently served first, FIFO per guild."""
    at = [NOW + timedelta(seconds=s) for s in range(10)]
    waiting = (
        WaitingJob(1, A, at[0]),
        WaitingJob(2, A, at[1]),
        WaitingJob(3, B, at[2]),
        WaitingJob(4, C, at[3]),
        WaitingJob(5, B, at[4]),
    )
    # A was served a moment ago, B long ago, C never: C, B, A in every round.
    assert fair_order(waiting, {A: at[9], B: at[5]}) == [4, 3, 1, 5, 2]
    # Nobody served yet: the guild waiting longest goes first.
    assert fair_order(waiting, {}) == [1, 3, 4, 2, 5]
