"""The fair queue in front of the provider, shared by every process on the database.

Jobs beyond the bot's concurrency limit (``PIKABOT_MAX_CONCURRENT_JOBS``) or their guild's
(``PIKABOT_GUILD_CONCURRENCY``) wait instead of being refused. Both limits count every process
sharing the database, and the order of the line (:mod:`bot.fair_line`: FIFO per guild,
round-robin between guilds) is the order of all their waiting jobs together. A job takes a
slot in the database (``jobs.slot_at``) when it leaves the line and holds it until it ends,
also through a restart or a takeover by another process, which carries it on without making
it wait again.

Each process runs one dispatcher while it has jobs waiting: under the bot-wide lock it reads
the line (:meth:`~bot.storage.base.JobRepo.line`), works out who may start now, takes the
slots of its own jobs among them and tells the others their place. It runs again the moment
one of its jobs joins or leaves the line, and every ``poll_every`` seconds for what other
processes did (a slot freed elsewhere, a job joining ahead). A slot freed by another process
is therefore used within that interval; a job that may start but belongs to another process
is left to that process, so a slot never goes to a job out of its turn.

Admission is bounded before anything is reserved: :meth:`FairScheduler.check_room` refuses
with :class:`QueueFull` when the line (``PIKABOT_MAX_QUEUE`` jobs beyond the running ones, and
``PIKABOT_GUILD_MAX_QUEUE`` for one guild) is full, so no single guild can fill the whole line.
It runs in the reserving unit, which holds the guild's lock: a guild's own bound is exact; the
bot-wide bound can be passed by requests of different guilds racing at the very edge (it
guards against floods, not money).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from bot.clock import utcnow
from bot.fair_line import LinePlan, plan
from bot.refusals import RequestRefused
from bot.storage.base import Storage, UnitOfWork

log = structlog.get_logger(__name__)

PositionCallback = Callable[[int], None]

POLL_EVERY = 1.0
"""Seconds between two looks at the shared line while this process has jobs in it."""


class QueueFull(RequestRefused):
    """Too many jobs are waiting already; nothing was reserved."""

    def __init__(self, *, guild: bool) -> None:
        whose = "this server's" if guild else "the bot's"
        super().__init__(
            f"The line for videos is full ({whose} queue). Please try again in a few minutes."
        )


@dataclass(eq=False)
class _Ticket:
    job_id: int
    guild_id: int
    on_position: PositionCallback | None = None
    position: int | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)


class FairScheduler:
    """Concurrency limits (whole bot, per guild) with a bounded, fair waiting line."""

    def __init__(
        self,
        storage: Storage,
        *,
        max_running: int = 50,
        per_guild_running: int | None = None,
        max_waiting: int = 100,
        per_guild_waiting: int | None = None,
        poll_every: float = POLL_EVERY,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if max_running < 1:
            raise ValueError("max_running must be at least 1")
        self._storage = storage
        self.max_running = max_running
        self.per_guild_running = min(per_guild_running or max_running, max_running)
        self.max_waiting = max(max_waiting, 0)
        self.per_guild_waiting = min(
            self.max_waiting if per_guild_waiting is None else per_guild_waiting,
            self.max_waiting,
        )
        self._poll_every = poll_every
        self._clock = clock
        self._tickets: dict[int, _Ticket] = {}
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self.last_plan = LinePlan((), ())
        """The line as this process saw it last (every process's jobs)."""

    # -- observation -----------------------------------------------------------------------

    @property
    def running(self) -> int:
        """This process's jobs past the line now (holding their slot)."""
        return sum(1 for t in self._tickets.values() if t.started.is_set())

    @property
    def waiting(self) -> int:
        """This process's jobs in line now."""
        return sum(1 for t in self._tickets.values() if not t.started.is_set())

    def position(self, job_id: int) -> int | None:
        """The job's place in line (1 starts next), or None if it is not waiting here."""
        ticket = self._tickets.get(job_id)
        return None if ticket is None or ticket.started.is_set() else ticket.position

    # -- admission -------------------------------------------------------------------------

    async def check_room(self, uow: UnitOfWork, guild_id: int) -> None:
        """Raise :class:`QueueFull` if a new job of this guild would have no place."""
        total, here = await uow.jobs.open_counts(guild_id)
        if total >= self.max_running + self.max_waiting:
            raise QueueFull(guild=False)
        if here >= self.per_guild_running + self.per_guild_waiting:
            raise QueueFull(guild=True)

    # -- running ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def slot(
        self, job_id: int, guild_id: int, on_position: PositionCallback | None = None
    ) -> AsyncIterator[None]:
        """Wait in line for a slot, then run the ``async with`` body.

        The slot is the job's until it ends (a terminal state frees it), so leaving the body
        without ending (suspended at shutdown, taken over) keeps it for whoever carries on.
        A job that holds one already (resumed past the line) runs at once.
        """
        ticket = _Ticket(job_id, guild_id, on_position)
        self._tickets[job_id] = ticket
        self._kick()
        try:
            await ticket.started.wait()
            yield
        finally:
            self._tickets.pop(job_id, None)
            self._kick()

    async def close(self) -> None:
        """Stop the dispatcher (the jobs waiting in it are being cancelled by their owner)."""
        task, self._dispatcher = self._dispatcher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _kick(self) -> None:
        self._wake.set()
        idle = self._dispatcher is None or self._dispatcher.done()
        if idle and self.waiting:
            self._dispatcher = asyncio.create_task(self._dispatch_loop())

    async def _dispatch_loop(self) -> None:
        while self.waiting:
            self._wake.clear()
            try:
                await self._dispatch()
            except Exception:  # the database is away: look again at the next round
                log.warning("queue.dispatch_failed", exc_info=True)
            if not self.waiting:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_every):
                    await self._wake.wait()

    async def _dispatch(self) -> None:
        """One look at the shared line: start this process's jobs whose turn it is."""
        now = self._clock()
        known = set(self._tickets)  # a job joining during the look waits for the next one
        async with self._storage.unit() as uow:
            await uow.lock_bot()
            snapshot = await uow.jobs.line(now)
            line = plan(
                snapshot, max_running=self.max_running, per_guild_running=self.per_guild_running
            )
            waiting = {job.job_id for job in snapshot.waiting}
            mine = [j for j in line.start if j in known and self._waiting_here(j)]
            await uow.jobs.take_slots(mine, now)
        self.last_plan = line
        for job_id in mine:
            self._start(job_id)
        for ticket in list(self._tickets.values()):
            if ticket.started.is_set() or ticket.job_id not in known:
                continue
            if ticket.job_id not in waiting:  # holds its slot already (resumed past the line)
                self._start(ticket.job_id)
            else:
                self._announce(ticket, line.position(ticket.job_id))

    def _waiting_here(self, job_id: int) -> bool:
        ticket = self._tickets.get(job_id)
        return ticket is not None and not ticket.started.is_set()

    def _start(self, job_id: int) -> None:
        ticket = self._tickets.get(job_id)
        if ticket is not None:
            ticket.position = None
            ticket.started.set()
            log.debug("queue.started", job_id=job_id, guild_id=ticket.guild_id)

    @staticmethod
    def _announce(ticket: _Ticket, place: int | None) -> None:
        if place is None or ticket.position == place:
            return
        ticket.position = place
        if ticket.on_position is not None:
            try:
                ticket.on_position(place)
            except Exception:
                log.warning("queue.position_not_shown", job_id=ticket.job_id, exc_info=True)
