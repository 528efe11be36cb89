"""Benchmark 6: credit reservations per second on the path ``/pika`` takes, and no overspend.

Every ``/pika`` (and rerun, and ``pikabot generate``) reserves through
:meth:`bot.jobs.JobService.create`: price, the guild's rules and USD caps, the queue's room,
the reservation and the job row, in one transaction. This benchmark drives exactly that, on
services built as the bot builds them (:meth:`bot.services.Services.open`, a real SQLite file
in WAL mode), from many coroutines against one guild, with more attempts than the allowance
covers so the last ones must be refused. A watcher reads the balance throughout. Afterwards
the ledger is replayed row by row: the balance may never dip below zero, the successful
reservations may never add up to more than the allowance, and every reservation has its job.

Nothing is submitted to a provider: the jobs are created, not started (the provider URL points
at a closed loopback port to prove it).
"""

from __future__ import annotations

import asyncio
import time

from bench.common import Config, Rows
from bot.config import load_settings
from bot.models import GenerationRequest, Origin
from bot.refusals import RequestRefused
from bot.services import Services
from bot.storage.records import LedgerKind

NAME = "reservations"
TARGET = 2000.0
GUILD = 4242
CHANNEL = 4343
REQUEST = GenerationRequest(prompt="a benchmark clip", seed=1)  # 20 credits on fal's table


async def run(cfg: Config) -> Rows:
    """Create jobs from ``workers`` coroutines at once; report throughput and the overspend."""
    rows = Rows()
    workers, attempts = (10, 20) if cfg.quick else (50, 100)
    path = cfg.workdir / "reservations.sqlite3"
    settings = load_settings(
        need_discord=False,
        need_provider=True,
        FAL_KEY="bench-key",
        FAL_QUEUE_URL="http://127.0.0.1:9/",  # never called: jobs are created, not started
        PIKABOT_DATABASE=str(path),
        PIKABOT_LOG_LEVEL="WARNING",
        # The bot's own line must hold every job created here: only credits may refuse.
        PIKABOT_MAX_CONCURRENT_JOBS=str(workers * attempts),
        PIKABOT_MAX_QUEUE=str(workers * attempts),
    )
    services = await Services.open(settings)
    cost = services.jobs.quote(REQUEST).credits
    fundable = workers * attempts * 4 // 5  # 80 % of the attempts can be paid for
    allowance = fundable * cost
    granted: list[int] = []
    granted_at: list[float] = []
    refused = 0
    lowest_seen = allowance
    stop = asyncio.Event()

    async def reserver(worker: int) -> None:
        nonlocal refused
        origin = Origin(guild_id=GUILD, channel_id=CHANNEL, user_id=1000 + worker)
        for _ in range(attempts):
            try:
                job = await services.jobs.create(REQUEST, origin)
            except RequestRefused:
                refused += 1
            else:
                granted.append(job.cost)
                granted_at.append(time.perf_counter())

    async def watcher() -> None:
        nonlocal lowest_seen
        while not stop.is_set():
            lowest_seen = min(lowest_seen, (await services.moderation.balance(GUILD)).remaining)
            await asyncio.sleep(0.005)

    try:
        await services.moderation.set(GUILD, 0, allowance=allowance)  # as /quota set would
        watching = asyncio.create_task(watcher())
        started = time.perf_counter()
        await asyncio.gather(*(reserver(w) for w in range(workers)))
        elapsed = time.perf_counter() - started
        stop.set()
        await watching
        final = await services.moderation.balance(GUILD)
        amounts, held, jobs = await _replay(services)
    finally:
        await services.close()

    running, lowest_replayed = allowance, allowance
    for amount in amounts:
        running += amount
        lowest_replayed = min(lowest_replayed, running)
    spent = sum(granted)
    # Until the balance runs out every attempt succeeds; after it, every one is refused (and a
    # refusal takes the full transaction that explains it). Report the two phases apart.
    funded_for = granted_at[-1] - started
    rate = len(granted) / funded_for
    rows.add(
        NAME,
        f"jobs created/s via JobService.create ({workers} coroutines, one guild)",
        f"{rate:,.0f}/s ({len(granted)} in {funded_for:.2f} s)",
        f">= {TARGET:,.0f}/s",
        rate >= TARGET,
    )
    refusing_for = max(elapsed - funded_for, 1e-9)
    rows.add(NAME, "refusals/s once the balance is spent", f"{refused / refusing_for:,.0f}/s")
    rows.add(NAME, "attempts/s incl. refusals", f"{(len(granted) + refused) / elapsed:,.0f}/s")
    # The balance is one row of running totals (migration 0004), so a reservation should cost
    # the same with a full period as with an empty one: compare the first and last fifth.
    fifth = max(len(granted_at) // 5, 2)
    first = (fifth - 1) / (granted_at[fifth - 1] - started)
    last = (fifth - 1) / (granted_at[-1] - granted_at[-fifth])
    rows.add(
        NAME,
        "reservations/s, first vs last fifth of the period's ledger",
        f"{first:,.0f}/s (0-{fifth} rows) vs {last:,.0f}/s ({len(granted) - fifth}-{len(granted)})",
    )
    overspend = max(0, spent - allowance, -lowest_replayed, -lowest_seen, -final.remaining)
    consistent = held == (len(granted), spent) and jobs == (len(granted),)
    rows.add(
        NAME,
        "overspend (credits)",
        f"{overspend} (granted {spent} of {allowance}, {refused} refused, lowest balance"
        f" {min(lowest_replayed, lowest_seen)}, {len(granted)} of {fundable} fundable granted)",
        "0",
        overspend == 0 and consistent and len(granted) == fundable,
    )
    return rows


async def _replay(services: Services) -> tuple[list[int], tuple[int, int], tuple[int]]:
    """The guild's ledger amounts oldest first, its reservations (count, credits) and its jobs
    that hold one, read through the storage repositories."""
    everything = 1_000_000
    async with services.storage.read() as uow:
        entries, _ = await uow.ledger.page(GUILD, offset=0, limit=everything)
        reserved = []
        for entry in entries:
            if entry.kind is LedgerKind.RESERVE and entry.reservation_id is not None:
                reservation = await uow.ledger.reservation(entry.reservation_id)
                if reservation is not None:
                    reserved.append(reservation.amount)
        made = await uow.jobs.recent(GUILD, None, everything)
    amounts = [entry.amount for entry in reversed(entries)]
    with_reservation = sum(1 for job in made if job.reservation_id is not None)
    return amounts, (len(reserved), sum(reserved)), (with_reservation,)
