"""The fair queue in front of the provider: who runs now, who waits, and in which order.

Jobs beyond the bot's concurrency limit (``PIKABOT_MAX_CONCURRENT_JOBS``) or their guild's
(``PIKABOT_GUILD_CONCURRENCY``) wait instead of being refused. Waiting jobs form one FIFO per
guild, and free slots go round-robin between guilds: each guild with waiting jobs gets one
start per round, so a server that queues a hundred clips delays another server's single clip
by at most one start per busy guild, never by a hundred. A guild that reached its own limit
is skipped without losing its turn.

Admission is bounded before anything is reserved: :meth:`FairScheduler.admit` refuses with
:class:`QueueFull` when the line (``PIKABOT_MAX_QUEUE`` jobs beyond the running ones, and
``PIKABOT_GUILD_MAX_QUEUE`` for one guild) is full, so no single guild can fill the whole line.

A waiting job learns its place through a callback: position 1 starts next. The position is
the order in which the waiting jobs would start if slots freed one at a time (rounds over
the guilds in turn order, each guild's jobs in arrival order).

Everything here is synchronous state changed between awaits on one event loop, so no lock
is needed; the job service calls :meth:`admit` inside the transaction that reserves credits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import structlog

from bot.refusals import RequestRefused

log = structlog.get_logger(__name__)

PositionCallback = Callable[[int], None]


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
        *,
        max_running: int = 50,
        per_guild_running: int | None = None,
        max_waiting: int = 100,
        per_guild_waiting: int | None = None,
    ) -> None:
        if max_running < 1:
            raise ValueError("max_running must be at least 1")
        self.max_running = max_running
        self.per_guild_running = min(per_guild_running or max_running, max_running)
        self.max_waiting = max(max_waiting, 0)
        self.per_guild_waiting = min(
            self.max_waiting if per_guild_waiting is None else per_guild_waiting,
            self.max_waiting,
        )
        self._running: Counter[int] = Counter()
        self._admitted: dict[int, int] = {}  # job id -> guild id: accepted, not yet in line
        self._lines: dict[int, deque[_Ticket]] = {}
        self._turns: deque[int] = deque()  # guilds with waiting jobs, next to serve first
        self._tickets: dict[int, _Ticket] = {}

    # -- observation -----------------------------------------------------------------------

    @property
    def running(self) -> int:
        """Jobs holding a slot now."""
        return sum(self._running.values())

    def running_in(self, guild_id: int) -> int:
        """Jobs of one guild holding a slot now."""
        return self._running[guild_id]

    @property
    def waiting(self) -> int:
        """Jobs accepted and not started yet (in line, or about to join it)."""
        return len(self._admitted) + sum(len(line) for line in self._lines.values())

    def waiting_in(self, guild_id: int) -> int:
        """One guild's jobs accepted and not started yet."""
        admitted = sum(1 for g in self._admitted.values() if g == guild_id)
        return admitted + len(self._lines.get(guild_id, ()))

    def position(self, job_id: int) -> int | None:
        """The job's place in line (1 starts next), or None if it is not waiting."""
        ticket = self._tickets.get(job_id)
        return None if ticket is None or ticket.started.is_set() else ticket.position

    def order(self) -> list[int]:
        """Job ids of the waiting line in the order they would start."""
        order: list[int] = []
        depth = 0
        while True:
            found = False
            for guild_id in self._turns:
                line = self._lines[guild_id]
                if depth < len(line):
                    order.append(line[depth].job_id)
                    found = True
            if not found:
                return order
            depth += 1

    # -- admission -------------------------------------------------------------------------

    def check_room(self, guild_id: int) -> None:
        """Raise :class:`QueueFull` if a new job of this guild would have no place."""
        if self.running + self.waiting >= self.max_running + self.max_waiting:
            raise QueueFull(guild=False)
        guild_total = self._running[guild_id] + self.waiting_in(guild_id)
        if guild_total >= self.per_guild_running + self.per_guild_waiting:
            raise QueueFull(guild=True)

    def admit(self, job_id: int, guild_id: int) -> None:
        """Accept a new job (it joins the line when it runs), or raise :class:`QueueFull`."""
        self.check_room(guild_id)
        self._admitted[job_id] = guild_id

    def forget(self, job_id: int) -> None:
        """Drop an admission whose job was never created (its transaction failed)."""
        self._admitted.pop(job_id, None)

    # -- running ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def slot(
        self, job_id: int, guild_id: int, on_position: PositionCallback | None = None
    ) -> AsyncIterator[None]:
        """Wait in line for a slot, hold it for the ``async with`` body, then pass it on.

        Jobs resumed after a restart were never admitted in this process; they join the line
        without the length check (they were accepted before).
        """
        self._admitted.pop(job_id, None)
        ticket = _Ticket(job_id, guild_id, on_position)
        self._tickets[job_id] = ticket
        self._lines.setdefault(guild_id, deque()).append(ticket)
        if guild_id not in self._turns:
            self._turns.append(guild_id)
        self._dispatch()
        try:
            await ticket.started.wait()
        except BaseException:
            if ticket.started.is_set():
                self._release(ticket)
            else:
                self._leave_line(ticket)
            raise
        try:
            yield
        finally:
            self._release(ticket)

    def _leave_line(self, ticket: _Ticket) -> None:
        self._tickets.pop(ticket.job_id, None)
        line = self._lines.get(ticket.guild_id)
        if line is not None and ticket in line:
            line.remove(ticket)
            if not line:
                del self._lines[ticket.guild_id]
                self._turns.remove(ticket.guild_id)
        self._dispatch()

    def _release(self, ticket: _Ticket) -> None:
        self._tickets.pop(ticket.job_id, None)
        self._running[ticket.guild_id] -= 1
        if self._running[ticket.guild_id] <= 0:
            del self._running[ticket.guild_id]
        self._dispatch()

    def _dispatch(self) -> None:
        """Start waiting jobs while slots are free, round-robin over guilds; then tell the
        rest of the line their new positions."""
        while self.running < self.max_running:
            guild_id = next(
                (g for g in self._turns if self._running[g] < self.per_guild_running), None
            )
            if guild_id is None:
                break
            line = self._lines[guild_id]
            ticket = line.popleft()
            self._turns.remove(guild_id)
            if line:
                self._turns.append(guild_id)  # served: to the back of the round
            else:
                del self._lines[guild_id]
            self._running[guild_id] += 1
            ticket.position = None
            ticket.started.set()
            log.debug("queue.started", job_id=ticket.job_id, guild_id=guild_id)
        self._announce()

    def _announce(self) -> None:
        for place, job_id in enumerate(self.order(), start=1):
            ticket = self._tickets[job_id]
            if ticket.position != place:
                ticket.position = place
                if ticket.on_position is not None:
                    try:
                        ticket.on_position(place)
                    except Exception:
                        log.warning("queue.position_not_shown", job_id=job_id, exc_info=True)
