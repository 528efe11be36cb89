"""The fair queue: FIFO per guild, round-robin between guilds, limits, bounded length."""

from __future__ import annotations

import asyncio

import pytest

from bot.scheduler import FairScheduler, QueueFull

A, B, C = 1, 2, 3


class Run:
    """Jobs that hold their slot until released, recording the order they started in."""

    def __init__(self, scheduler: FairScheduler) -> None:
        self.scheduler = scheduler
        self.started: list[int] = []
        self.release: dict[int, asyncio.Event] = {}
        self.positions: dict[int, list[int]] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}

    def submit(self, job_id: int, guild_id: int) -> None:
        self.scheduler.admit(job_id, guild_id)
        self.release[job_id] = asyncio.Event()
        self.positions[job_id] = []
        self.tasks[job_id] = asyncio.create_task(self._job(job_id, guild_id))

    async def _job(self, job_id: int, guild_id: int) -> None:
        async with self.scheduler.slot(job_id, guild_id, self.positions[job_id].append):
            self.started.append(job_id)
            await self.release[job_id].wait()

    async def settle(self) -> None:
        for _ in range(5):
            await asyncio.sleep(0)

    async def finish(self, job_id: int) -> None:
        self.release[job_id].set()
        async with asyncio.timeout(5):
            await self.tasks[job_id]
        await self.settle()

    async def close(self) -> None:
        for event in self.release.values():
            event.set()
        async with asyncio.timeout(5):
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)


async def test_scheduler_round_robin_between_guilds():
    """A busy guild's ten jobs do not hold back another guild's: starts alternate."""
    run = Run(FairScheduler(max_running=1, max_waiting=50))
    for job in range(1, 11):
        run.submit(job, A)
    await run.settle()
    run.submit(101, B)
    run.submit(102, B)
    run.submit(201, C)
    await run.settle()
    assert run.started == [1]
    order = [1]
    while len(run.started) < 13:
        await run.finish(run.started[-1])
        order = list(run.started)
    await run.close()
    # A's 1 ran first; then a round over A, B, C in turn order, then A's remaining jobs.
    assert order[:7] == [1, 2, 101, 201, 3, 102, 4]
    assert [j for j in order if j < 100] == list(range(1, 11)), "FIFO inside a guild"


async def test_scheduler_positions_count_down_to_one():
    """A waiting job is told its place; it only gets smaller, ending at 1 before it starts."""
    run = Run(FairScheduler(max_running=1, max_waiting=50))
    for job in range(1, 5):
        run.submit(job, A)
    await run.settle()
    assert run.scheduler.position(4) == 3
    assert run.scheduler.order() == [2, 3, 4]
    for job in range(1, 4):
        await run.finish(job)
    await run.close()
    assert run.positions[4] == [3, 2, 1]
    assert run.positions[1] == []  # started at once, never waited


async def test_scheduler_new_guild_jumps_a_long_line():
    """A guild arriving behind a long line of another is second in line, not eleventh."""
    run = Run(FairScheduler(max_running=1, max_waiting=50))
    for job in range(1, 11):
        run.submit(job, A)
    await run.settle()
    run.submit(101, B)
    await run.settle()
    assert run.scheduler.position(101) == 2
    await run.close()


async def test_scheduler_guild_limit_leaves_slots_to_others():
    """With a per-guild limit of 1, a guild's second job waits while another guild runs."""
    run = Run(FairScheduler(max_running=3, per_guild_running=1, max_waiting=10))
    run.submit(1, A)
    run.submit(2, A)
    run.submit(101, B)
    await run.settle()
    assert sorted(run.started) == [1, 101]
    assert run.scheduler.running == 2 and run.scheduler.waiting == 1
    await run.finish(1)
    assert 2 in run.started
    await run.close()


async def test_scheduler_queue_length_is_bounded_per_bot_and_guild():
    """Beyond the line's length new jobs are refused before they exist; per guild too."""
    scheduler = FairScheduler(max_running=1, max_waiting=3, per_guild_waiting=2)
    run = Run(scheduler)
    run.submit(1, A)  # runs
    run.submit(2, A)
    run.submit(3, A)  # A: 1 running + 2 waiting = its limit
    with pytest.raises(QueueFull) as full:
        run.submit(4, A)
    assert "server's" in full.value.user_message
    run.submit(101, B)  # the bot's line: 3 waiting
    with pytest.raises(QueueFull) as full:
        run.submit(201, C)
    assert "bot's" in full.value.user_message
    await run.settle()
    await run.finish(1)
    run.submit(201, C)  # a place freed up
    await run.close()


async def test_scheduler_cancelled_waiter_leaves_the_line():
    """A job cancelled while waiting gives its place up and never takes a slot."""
    run = Run(FairScheduler(max_running=1, max_waiting=10))
    run.submit(1, A)
    run.submit(2, A)
    run.submit(3, A)
    await run.settle()
    run.tasks[2].cancel()
    await run.settle()
    assert run.scheduler.order() == [3]
    assert run.positions[3][-1] == 1
    await run.finish(1)
    assert run.started == [1, 3]
    await run.close()
    assert run.scheduler.running == 0 and run.scheduler.waiting == 0


async def test_scheduler_never_exceeds_limits_under_load():
    """Two hundred jobs over five guilds: never more than the limits run at once."""
    scheduler = FairScheduler(max_running=4, per_guild_running=2, max_waiting=500)
    peak = {"all": 0}
    per_guild: dict[int, int] = {}

    async def job(job_id: int, guild: int) -> None:
        scheduler.admit(job_id, guild)
        async with scheduler.slot(job_id, guild):
            per_guild[guild] = per_guild.get(guild, 0) + 1
            peak["all"] = max(peak["all"], sum(per_guild.values()))
            assert per_guild[guild] <= 2
            await asyncio.sleep(0)
            per_guild[guild] -= 1

    async with asyncio.timeout(10):
        await asyncio.gather(*(job(i, i % 5) for i in range(200)))
    assert peak["all"] <= 4
    assert scheduler.running == 0 and scheduler.waiting == 0
