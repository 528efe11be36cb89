"""The fair line's rule: in which order waiting jobs start, and which may start now.

Pure functions over a :class:`~bot.storage.records.LineSnapshot`, the line of every process
sharing the database, so each process computes the same order from the same facts.

Order: each guild's waiting jobs in arrival order; between guilds, round-robin, each guild
getting one start per round, so a server that queues a hundred clips delays another server's
single clip by at most one start per busy guild, never by a hundred. The turn order of the
rounds is "least recently served first": the guild whose latest start is oldest (or that never
started one) goes first, ties by the guild's oldest waiting job. This is the in-memory
deque's "served guild goes to the back of the round" written without memory of its own, so
it survives restarts and needs no coordinator.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bot.storage.records import LineSnapshot, WaitingJob


@dataclass(frozen=True, slots=True)
class LinePlan:
    """What the line looks like now: who may start, and everybody's place."""

    start: tuple[int, ...]  # job ids that may take a slot now, in order
    order: tuple[int, ...]  # the rest of the line: index 0 starts next (position 1)
    _places: dict[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        places = {job_id: place for place, job_id in enumerate(self.order, start=1)}
        object.__setattr__(self, "_places", places)

    def position(self, job_id: int) -> int | None:
        """The job's place in line (1 starts next), None if it starts now or is not in line."""
        return self._places.get(job_id)


def fair_order(waiting: tuple[WaitingJob, ...], last_start: Mapping[int, datetime]) -> list[int]:
    """Job ids of the waiting line in the order they would start if slots freed one by one."""
    lines: dict[int, list[WaitingJob]] = {}
    for job in sorted(waiting, key=lambda j: (j.queued_at, j.job_id)):
        lines.setdefault(job.guild_id, []).append(job)

    def turn(guild_id: int) -> tuple[bool, datetime, datetime, int]:
        served = last_start.get(guild_id)
        first = lines[guild_id][0].queued_at
        return (served is not None, served or first, first, guild_id)

    turns = sorted(lines, key=turn)
    order: list[int] = []
    depth = 0
    while len(order) < len(waiting):
        order.extend(lines[g][depth].job_id for g in turns if depth < len(lines[g]))
        depth += 1
    return order


def plan(snapshot: LineSnapshot, *, max_running: int, per_guild_running: int) -> LinePlan:
    """Fill the free slots from the front of the fair order, skipping a guild at its own
    limit (it keeps its place for the next free slot)."""
    order = fair_order(snapshot.waiting, snapshot.last_start)
    guild_of = {job.job_id: job.guild_id for job in snapshot.waiting}
    running = Counter(snapshot.running)
    free = max_running - sum(running.values())
    start: list[int] = []
    for job_id in order:
        if free <= 0:
            break
        guild_id = guild_of[job_id]
        if running[guild_id] >= per_guild_running:
            continue
        start.append(job_id)
        running[guild_id] += 1
        free -= 1
    starting = set(start)
    return LinePlan(tuple(start), tuple(j for j in order if j not in starting))
