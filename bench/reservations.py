"""Benchmark 6: credit reservations per second under contention, and proof of no overspend.

Many coroutines reserve credits against one guild through :class:`bot.quotas.Quotas` on a
real SQLite file (WAL, as the bot opens it), with more attempts than the allowance covers, so
the last ones must be refused. A watcher reads the balance throughout. Afterwards the ledger
is replayed row by row: the balance may never dip below zero and the successful reservations
may never add up to more than the allowance.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from decimal import Decimal

from bench.common import Config, Rows
from bot.config import Period
from bot.pricing import Quote
from bot.quotas import InsufficientCredits, Quotas
from bot.store import Store

NAME = "reservations"
TARGET = 2000.0
GUILD = 4242
COST = Quote(credits=20, usd=Decimal("0.20"))


async def run(cfg: Config) -> Rows:
    """Reserve from ``workers`` coroutines at once; report throughput and the overspend check."""
    rows = Rows()
    workers, attempts = (10, 20) if cfg.quick else (50, 100)
    fundable = workers * attempts * 4 // 5  # 80 % of the attempts can be paid for
    allowance = fundable * COST.credits
    path = cfg.workdir / "reservations.sqlite3"
    store = await Store.open(path)
    quotas = Quotas(store, default_allowance=allowance, default_period=Period.DAILY)
    granted: list[int] = []
    granted_at: list[float] = []
    refused = 0
    lowest_seen = allowance
    stop = asyncio.Event()

    async def reserver(worker: int) -> None:
        nonlocal refused
        for _ in range(attempts):
            try:
                reservation = await quotas.reserve(GUILD, 1000 + worker, COST)
            except InsufficientCredits:
                refused += 1
            else:
                granted.append(reservation.amount)
                granted_at.append(time.perf_counter())

    async def watcher() -> None:
        nonlocal lowest_seen
        while not stop.is_set():
            lowest_seen = min(lowest_seen, (await quotas.balance(GUILD)).remaining)
            await asyncio.sleep(0.005)

    try:
        await quotas.balance(GUILD)  # the guild row exists before the clock starts
        watching = asyncio.create_task(watcher())
        started = time.perf_counter()
        await asyncio.gather(*(reserver(w) for w in range(workers)))
        elapsed = time.perf_counter() - started
        stop.set()
        await watching
        final = await quotas.balance(GUILD)
    finally:
        await store.close()

    with sqlite3.connect(path) as db:
        amounts = [a for (a,) in db.execute("SELECT amount FROM ledger ORDER BY id")]
        held = db.execute("SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM reservations").fetchone()
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
        f"successful reservations/s ({workers} coroutines, one guild)",
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
    no_overspend = (
        spent <= allowance
        and lowest_replayed >= 0
        and lowest_seen >= 0
        and final.remaining >= 0
        and held == (len(granted), spent)
        and len(granted) == fundable
    )
    rows.add(
        NAME,
        "overspend check",
        f"granted {spent} of {allowance} credits, {refused} refused; lowest balance"
        f" {min(lowest_replayed, lowest_seen)}",
        "0 overspend",
        no_overspend,
    )
    return rows
